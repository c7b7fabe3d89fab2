# A processor for rotel, the OpenTelemetry collector the telemetry tests run
# on 127.0.0.1 (tests/support/collector.rs). rotel decodes what silt exports
# over OTLP/HTTP and hands each batch to these hooks as Python objects; this
# writes every batch back as OTLP/JSON, one request per line, to
# $SILT_COLLECTOR_DIR/{traces,metrics}.jsonl: the layout `--trace-file` and
# the OpenTelemetry Collector's file exporter write, so one reader
# (tests/support/otlp.rs) checks both.
import json
import os

OUT = os.environ["SILT_COLLECTOR_DIR"]


def _plain(o, depth=0):
    """rotel's objects as plain values: ids as hex, lists as lists, tagged
    unions (MetricData_Sum, NumberDataPointValue_AsInt) as their content."""
    if depth > 30:
        return repr(o)
    if o is None or isinstance(o, (bool, int, float, str)):
        return o
    if isinstance(o, (bytes, bytearray)):
        return bytes(o).hex()
    kind = type(o)
    names = [k for k in dir(o) if not k.startswith("__")]
    if "_0" in names:
        inner = _plain(o._0, depth + 1)
        if isinstance(inner, dict) and "_" in kind.__name__:
            inner["_kind"] = kind.__name__.split("_", 1)[1]
        return inner
    if hasattr(o, "__len__") and hasattr(o, "__getitem__"):
        try:
            return [_plain(o[i], depth + 1) for i in range(len(o))]
        except BaseException:
            pass
    fields = {}
    for name in names:
        attr = getattr(kind, name, None)
        if isinstance(attr, kind) or isinstance(attr, type):
            continue  # enum variants, nested classes
        try:
            value = getattr(o, name)
        except BaseException:
            continue
        if callable(value):
            continue
        fields[name] = _plain(value, depth + 1)
    return fields if fields else str(o)


def _any_value(value):
    v = value.get("value") if isinstance(value, dict) else value
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": "" if v is None else str(v)}


def _attributes(items):
    return [{"key": kv["key"], "value": _any_value(kv.get("value"))} for kv in items or []]


def _resource(plain):
    return {"attributes": _attributes((plain.get("resource") or {}).get("attributes"))}


def _span(s):
    return {
        "traceId": s["trace_id"],
        "spanId": s["span_id"],
        "parentSpanId": s.get("parent_span_id", ""),
        "name": s["name"],
        "kind": s.get("kind", 0),
        "startTimeUnixNano": str(s.get("start_time_unix_nano", 0)),
        "endTimeUnixNano": str(s.get("end_time_unix_nano", 0)),
        "attributes": _attributes(s.get("attributes")),
        "status": {"code": (s.get("status") or {}).get("code", 0)},
    }


def _metric(m):
    data = m.get("data") or {}
    out = {"name": m["name"]}
    if data.get("_kind") == "Sum":
        points = []
        for p in data.get("data_points") or []:
            value = p.get("value")
            point = {"attributes": _attributes(p.get("attributes"))}
            if isinstance(value, float):
                point["asDouble"] = value
            elif isinstance(value, int):
                point["asInt"] = str(value)
            points.append(point)
        out["sum"] = {"dataPoints": points, "isMonotonic": bool(data.get("is_monotonic"))}
    return out


def _append(name, request):
    with open(os.path.join(OUT, name + ".jsonl"), "a") as f:
        f.write(json.dumps(request) + "\n")


def process_spans(resource_spans):
    plain = _plain(resource_spans)
    _append("traces", {"resourceSpans": [{
        "resource": _resource(plain),
        "scopeSpans": [{"spans": [_span(s) for s in scope.get("spans") or []]}
                       for scope in plain.get("scope_spans") or []],
    }]})


def process_metrics(resource_metrics):
    plain = _plain(resource_metrics)
    _append("metrics", {"resourceMetrics": [{
        "resource": _resource(plain),
        "scopeMetrics": [{"metrics": [_metric(m) for m in scope.get("metrics") or []]}
                         for scope in plain.get("scope_metrics") or []],
    }]})
