//! Traces and metrics (docs/telemetry.md): the span tree of one `silt
//! run`, written to `--trace-file` and exported over OTLP/HTTP to a real
//! OpenTelemetry Collector on 127.0.0.1; nothing exported without the
//! standard variables; a dead collector costs one warning, never the
//! command.

use std::collections::BTreeMap;

use crate::support;

use support::collector::Collector;
use support::otlp::{self, Span};
use support::project::{Backend, Project};

/// `silt run` on `t/m` that writes one file (committed when it ends).
const RUN: [&str; 7] = [
    "run",
    "--model",
    "t/m",
    "--",
    "sh",
    "-c",
    "echo hello > \"$SILT_MODEL_DIR/out.txt\"",
];

/// The spans of one `silt run`, checked as a tree: one trace, rooted at the
/// command; the lease taken, the output committed and the lease released
/// by extension calls whose store requests are their children.
fn assert_run_tree(spans: &[Span]) {
    let by_id: BTreeMap<&str, &Span> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let children = |parent: &Span| -> Vec<&Span> {
        spans
            .iter()
            .filter(|s| s.parent == parent.span_id)
            .collect()
    };
    let roots: Vec<&Span> = spans.iter().filter(|s| s.parent.is_empty()).collect();
    assert_eq!(roots.len(), 1, "one root: {roots:#?}");
    let root = roots[0];
    assert_eq!(root.name, "silt run");
    assert_eq!(root.attr("silt.command"), "run");
    assert_eq!(root.attr("silt.exit_code"), "0");
    assert!(!root.error);
    for span in spans {
        assert_eq!(span.trace_id, root.trace_id, "one trace: {span:?}");
        assert!(
            span.parent.is_empty() || by_id.contains_key(span.parent.as_str()),
            "a span whose parent was never exported: {span:?}"
        );
    }

    // Beneath the command: the lease, taken and released, each by an
    // extension call that asked the store.
    let under_root = children(root);
    let named = |name: &str| -> Vec<&Span> {
        under_root
            .iter()
            .copied()
            .filter(|s| s.name == name)
            .collect()
    };
    let acquire = named("lease.acquire");
    assert_eq!(acquire.len(), 1, "{under_root:#?}");
    assert_eq!(acquire[0].attr("silt.lease.scope"), "model t/m");
    assert_eq!(acquire[0].attr("silt.lease.tries"), "1");
    let release = named("lease.release");
    assert_eq!(release.len(), 1, "{under_root:#?}");
    for (span, export) in [(acquire[0], "locks.acquire"), (release[0], "locks.release")] {
        let calls = children(span);
        assert_eq!(calls.len(), 1, "{span:?}: {calls:#?}");
        assert_eq!(calls[0].name, "extension.call");
        assert_eq!(calls[0].attr("silt.export"), export);
        assert!(
            children(calls[0]).iter().any(|s| s.name == "store.request"),
            "{export} made no store request"
        );
    }

    // The command silt ran: beneath the root, ended with 0.
    let command = named("run.command");
    assert_eq!(command.len(), 1, "{under_root:#?}");
    assert_eq!(command[0].attr("silt.run.exit_code"), "0");
    // In process the host loads the component (its artifact cached at
    // setup); out of process a worker does, and starting one is a span
    // beneath the call that needed it.
    let calls: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == "extension.call")
        .collect();
    if calls
        .iter()
        .all(|call| call.attr("silt.execution") == "in-process")
    {
        assert_eq!(named("extension.load").len(), 1, "{under_root:#?}");
        assert_eq!(named("extension.load")[0].attr("silt.artifact"), "cached");
    } else {
        let spawns: Vec<&Span> = spans.iter().filter(|s| s.name == "worker.spawn").collect();
        assert!(!spawns.is_empty(), "no worker.spawn: {spans:#?}");
        for spawn in spawns {
            assert_eq!(by_id[spawn.parent.as_str()].name, "extension.call");
            assert!(!spawn.attr("silt.sandbox.driver").is_empty(), "{spawn:?}");
        }
    }

    // Every extension call says what it was and how it ended.
    for call in &calls {
        assert_eq!(call.attr("silt.extension"), "partitioned-datastore");
        assert_eq!(call.attr("silt.outcome"), "ok", "{call:?}");
        assert!(!call.attr("silt.export").is_empty());
        assert!(
            ["in-process", "out-of-process"].contains(&call.attr("silt.execution")),
            "{call:?}"
        );
    }
    // The output was committed: a put of its 6 bytes beneath a call that
    // is beneath the command.
    let upload = spans
        .iter()
        .find(|s| {
            s.name == "store.request"
                && s.attr("silt.store.op") == "put"
                && s.attr("silt.store.bytes") == "6"
        })
        .unwrap_or_else(|| panic!("no put of out.txt's 6 bytes: {spans:#?}"));
    let mut ancestors = Vec::new();
    let mut at = upload;
    while let Some(parent) = by_id.get(at.parent.as_str()) {
        ancestors.push(parent.name.as_str());
        at = parent;
    }
    assert!(ancestors.contains(&"extension.call"), "{ancestors:?}");
    assert_eq!(ancestors.last(), Some(&"silt run"), "{ancestors:?}");

    // Every store request says what, where, how it ended, what it moved.
    for request in spans.iter().filter(|s| s.name == "store.request") {
        assert!(
            ["get", "head", "put", "delete", "list"].contains(&request.attr("silt.store.op")),
            "{request:?}"
        );
        assert!(!request.attr("silt.store.status").is_empty(), "{request:?}");
        assert!(!request.attr("silt.store.bytes").is_empty(), "{request:?}");
        assert!(request.attributes.contains_key("silt.store.key_prefix"));
    }
}

#[test]
fn a_trace_file_holds_the_span_tree_of_one_run() {
    let project = Project::new(Backend::Dir, "");
    let trace = project.path().join("trace.jsonl");
    let trace_arg = trace.to_str().unwrap();
    let mut args = vec!["-q", "--trace-file", trace_arg];
    args.extend_from_slice(&RUN);
    project.ok(&args);
    let text = std::fs::read_to_string(&trace).unwrap();
    let spans = otlp::spans(&text);
    assert_run_tree(&spans);
    let resource = otlp::resource(&text);
    assert_eq!(
        resource.get("service.name").map(String::as_str),
        Some("silt")
    );
    assert_eq!(
        resource.get("service.version").map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_trace_file_that_cannot_be_created_stops_the_command_before_it_starts() {
    let project = Project::new(Backend::Dir, "");
    let input = project.write_input("in.txt", "x\n");
    let missing = project.path().join("no/such/dir/trace.jsonl");
    let (code, _, stderr) = project.run(&[
        "--trace-file",
        missing.to_str().unwrap(),
        "data",
        "put",
        "t/m",
        "f.txt",
        &input,
    ]);
    assert_eq!(code, 73, "{stderr}");
    assert!(stderr.contains("cannot write the trace file"), "{stderr}");
    assert!(project.file_names("t/m").is_empty(), "the command ran");

    // A link where the trace file goes (planted in a working copy, say)
    // is refused, and what it points at is neither emptied nor written.
    let elsewhere = project.path().join("precious.txt");
    std::fs::write(&elsewhere, "keep me\n").unwrap();
    let planted = project.path().join("trace.jsonl");
    std::os::unix::fs::symlink(&elsewhere, &planted).unwrap();
    let (code, _, stderr) = project.run(&[
        "--trace-file",
        planted.to_str().unwrap(),
        "data",
        "list",
        "t/m",
    ]);
    assert_eq!(code, 73, "{stderr}");
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "keep me\n");
}

/// `silt ARGS` in `project`, exporting over OTLP to `endpoint`.
fn exporting_to(project: &Project, endpoint: &str, args: &[&str]) -> std::process::Command {
    let mut command = project.silt();
    command
        .args(args)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
    command
}

/// The total of counter `name` over all its attributes.
fn total(counters: &BTreeMap<String, BTreeMap<String, f64>>, name: &str) -> f64 {
    counters
        .get(name)
        .map_or(0.0, |points| points.values().sum())
}

#[test]
fn otlp_export_to_a_collector_carries_the_run_tree_and_its_counters() {
    let collector = Collector::start();
    let project = Project::new(Backend::Dir, "");
    let (code, _, stderr) = support::output(&mut exporting_to(&project, &collector.endpoint, &RUN));
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("could not export"), "{stderr}");
    // The command flushed its exports before it exited; once a marker sent
    // now is written, so is everything it sent.
    assert!(collector.settle(), "{}", collector.log());
    let traces = collector.received("traces.jsonl");
    let spans = otlp::spans(&traces);
    assert_run_tree(&spans);
    assert_eq!(
        otlp::resource(&traces)
            .get("service.name")
            .map(String::as_str),
        Some("silt"),
        "{}",
        collector.log()
    );

    // The counters agree with the spans they count.
    let metrics = collector.wait_for("metrics.jsonl", |text| {
        otlp::counters(text).contains_key("silt.extension.calls")
    });
    let counters = otlp::counters(&metrics);
    let count = |name: &str| spans.iter().filter(|s| s.name == name).count() as f64;
    assert_eq!(
        total(&counters, "silt.store.requests"),
        count("store.request")
    );
    assert_eq!(
        total(&counters, "silt.extension.calls"),
        count("extension.call")
    );
    let bytes: f64 = spans
        .iter()
        .filter(|s| s.name == "store.request")
        .map(|s| s.attr("silt.store.bytes").parse::<f64>().unwrap())
        .sum();
    assert_eq!(total(&counters, "silt.store.bytes"), bytes);
    assert!(
        counters["silt.extension.calls"]
            .keys()
            .any(|attributes| attributes.contains("export=locks.acquire")
                && attributes.contains("outcome=ok")),
        "{counters:?}"
    );
}

#[test]
fn without_an_endpoint_nothing_is_exported_even_to_the_default_port() {
    // OTLP/HTTP's default endpoint: silt must not fall back to it when no
    // endpoint is set (a collector someone runs there is not asking).
    let listener = match std::net::TcpListener::bind("127.0.0.1:4318") {
        Ok(listener) => listener,
        // A collector of the developer's own: this check needs the port.
        Err(err) if std::env::var_os("CI").is_none() => {
            eprintln!("skipped: 127.0.0.1:4318 is taken ({err}); CI runs this check");
            return;
        }
        Err(err) => panic!("port 4318 (OTLP/HTTP's default) is taken: {err}"),
    };
    listener.set_nonblocking(true).unwrap();
    let project = Project::new(Backend::Dir, "");
    let (code, _, stderr) = support::output(
        project
            .silt()
            .arg("-q")
            .args(RUN)
            // Everything but an endpoint.
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
            .env("OTEL_SERVICE_NAME", "silt-test"),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr, "", "nothing to say when nothing is exported");
    assert!(
        listener.accept().is_err(),
        "silt connected to 127.0.0.1:4318 without being asked to"
    );
}

#[test]
fn a_dead_collector_costs_one_warning_per_signal_and_never_the_command() {
    // A port nothing listens on: connections are refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let project = Project::new(Backend::Dir, "");
    let input = project.write_input("in.txt", "kept\n");
    let with_dead_collector = |args: &[&str]| {
        support::output(exporting_to(&project, &endpoint, args).env(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer s3cr3t-token",
        ))
    };
    let (code, _, stderr) = with_dead_collector(&["data", "put", "t/m", "f.txt", &input]);
    assert_eq!(code, 0, "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("silt: warning: could not export"))
        .collect();
    assert_eq!(warnings.len(), 2, "one per signal: {stderr}");
    // Traces first, whichever exporter failed first.
    assert!(
        warnings[0].contains(&format!("traces to {endpoint}/v1/traces")),
        "{stderr}"
    );
    assert!(
        warnings[1].contains(&format!("metrics to {endpoint}/v1/metrics")),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cr3t"), "a header was printed: {stderr}");
    // The write landed all the same, and `-q` keeps the warnings to itself.
    assert_eq!(
        project.ok(&["data", "get", "t/m", "f.txt", "-o", "-"]),
        "kept\n"
    );
    let (code, stdout, stderr) = with_dead_collector(&["-q", "data", "list", "t/m"]);
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (0, "", ""));
}

#[test]
fn grpc_is_refused_with_a_warning_and_the_command_runs() {
    let collector = Collector::start();
    let project = Project::new(Backend::Dir, "");
    let (code, _, stderr) = support::output(
        exporting_to(&project, &collector.endpoint, &["data", "list", "t/m"])
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("silt exports OTLP over HTTP only") && stderr.contains("4318"),
        "{stderr}"
    );
    // Exports are flushed before silt exits: once a marker sent now is
    // written, nothing of silt's had arrived.
    assert!(collector.settle(), "{}", collector.log());
    assert_eq!(collector.received("traces.jsonl"), "");
    assert_eq!(collector.received("metrics.jsonl"), "");
}

#[test]
fn the_trace_continues_from_traceparent_and_into_the_command_run() {
    let project = Project::new(Backend::Dir, "");
    let trace = project.path().join("trace.jsonl");
    // A CI job's trace, as the OpenTelemetry environment carrier gives it.
    let (parent_trace, parent_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let (code, _, stderr) = support::output(
        project
            .silt()
            .args(["-q", "--trace-file", trace.to_str().unwrap()])
            .args(["run", "--model", "t/m", "--", "sh", "-c"])
            .arg("printf %s \"$TRACEPARENT\" > \"$SILT_MODEL_DIR/traceparent\"")
            .env("TRACEPARENT", format!("00-{parent_trace}-{parent_span}-01")),
    );
    assert_eq!(code, 0, "{stderr}");
    let spans = otlp::spans(&std::fs::read_to_string(&trace).unwrap());
    let root = spans
        .iter()
        .find(|s| s.name == "silt run")
        .expect("a root span");
    assert_eq!(
        (root.trace_id.as_str(), root.parent.as_str()),
        (parent_trace, parent_span)
    );
    assert!(spans.iter().all(|s| s.trace_id == parent_trace));
    // The command silt ran was handed its own span as parent.
    let command = spans
        .iter()
        .find(|s| s.name == "run.command")
        .expect("run.command");
    let seen = std::fs::read_to_string(project.model_dir("t/m").join("traceparent")).unwrap();
    assert_eq!(seen, format!("00-{parent_trace}-{}-01", command.span_id));

    // Without spans recorded, an inherited TRACEPARENT passes through as is.
    let (code, _, stderr) = support::output(
        project
            .silt()
            .args(["-q", "run", "--model", "t/m", "--", "sh", "-c"])
            .arg("printf %s \"$TRACEPARENT\" > \"$SILT_MODEL_DIR/traceparent\"")
            .env(
                "TRACEPARENT",
                "00-11111111111111111111111111111111-2222222222222222-01",
            ),
    );
    assert_eq!(code, 0, "{stderr}");
    let seen = std::fs::read_to_string(project.model_dir("t/m").join("traceparent")).unwrap();
    assert_eq!(
        seen,
        "00-11111111111111111111111111111111-2222222222222222-01"
    );
}

#[test]
fn a_failed_command_is_an_error_in_the_trace() {
    let project = Project::new(Backend::Dir, "");
    let trace = project.path().join("trace.jsonl");
    let (code, _, stderr) = project.run(&[
        "-q",
        "--trace-file",
        trace.to_str().unwrap(),
        "run",
        "--model",
        "t/m",
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(code, 3, "{stderr}");
    let spans = otlp::spans(&std::fs::read_to_string(&trace).unwrap());
    let root = spans
        .iter()
        .find(|s| s.name == "silt run")
        .expect("a root span");
    assert!(root.error, "{root:?}");
    assert_eq!(root.attr("silt.exit_code"), "3");
    let command = spans
        .iter()
        .find(|s| s.name == "run.command")
        .expect("run.command");
    assert!(
        command.error && command.attr("silt.run.exit_code") == "3",
        "{command:?}"
    );
    // The lease was still released, and nothing else failed.
    assert!(spans.iter().any(|s| s.name == "lease.release" && !s.error));
    let failed: Vec<&Span> = spans.iter().filter(|s| s.error).collect();
    assert_eq!(failed.len(), 2, "{failed:#?}");
}
