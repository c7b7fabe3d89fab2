//! `type/id` on the command line.

use crate::runtime::bindings::silt::datastore::types::ModelRef;

/// A model reference on the command line that is not one: what is wrong
/// and how to write it (a bad command line: exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidModelRef(String);

/// Whether `a` and `b` name the same model.
pub fn same_model(a: &ModelRef, b: &ModelRef) -> bool {
    a.model_type == b.model_type && a.model_id == b.model_id
}

/// `type/id`, as users write it (the inverse of [`parse_model`]), for
/// display: a model an extension listed can be named anything, so the
/// label is guest text, escaped and bounded (an ordinary name is unchanged).
pub fn model_label(model: &ModelRef) -> String {
    crate::runtime::guest_text(&format!("{}/{}", model.model_type, model.model_id))
}

/// Parses `vision/detector/m-42` into type `vision/detector`, id `m-42`,
/// checking each segment as every datastore does (so a bad reference is
/// refused here, the same way whichever extension runs).
///
/// # Errors
/// [`InvalidModelRef`] (exit 2) when there is no `/`, or a segment is empty,
/// `.`, `..`, holds `\` or a control character.
pub fn parse_model(text: &str) -> anyhow::Result<ModelRef> {
    let how = "write <type>/<id>, e.g. vision/detector/m-42 (the type may contain `/`)";
    let shown = crate::runtime::guest_text(text);
    let Some((model_type, model_id)) = text.rsplit_once('/') else {
        return Err(InvalidModelRef(format!("`{shown}` is not a model reference: {how}")).into());
    };
    let bad = |segment: &str| {
        segment.is_empty()
            || segment == "."
            || segment == ".."
            || segment.contains('\\')
            || segment.chars().any(char::is_control)
    };
    if model_type.split('/').chain([model_id]).any(bad) {
        return Err(InvalidModelRef(format!(
            "`{shown}` is not a model reference: each `/`-separated part must be non-empty, printable, without `\\`, and not `.` or `..`; {how}"
        ))
        .into());
    }
    Ok(ModelRef {
        model_type: model_type.to_owned(),
        model_id: model_id.to_owned(),
    })
}

/// Parses every `--model` argument.
///
/// # Errors
/// At the first that is not a model.
pub fn parse_models(texts: &[String]) -> anyhow::Result<Vec<ModelRef>> {
    texts.iter().map(|text| parse_model(text)).collect()
}
