//! `type/id` on the command line.

use crate::runtime::bindings::silt::datastore::types::ModelRef;

/// `type/id`, as users write it (the inverse of [`parse_model`]), for
/// display: a model an extension listed can be named anything, so the
/// label is guest text, escaped and bounded (an ordinary name is unchanged).
pub fn model_label(model: &ModelRef) -> String {
    crate::runtime::guest_text(&format!("{}/{}", model.model_type, model.model_id))
}

/// Parses `vision/detector/m-42` into type `vision/detector`, id `m-42`.
///
/// # Errors
/// When there is no `/`, or a part is empty.
pub fn parse_model(text: &str) -> anyhow::Result<ModelRef> {
    match text.rsplit_once('/') {
        Some((model_type, model_id)) if !model_type.is_empty() && !model_id.is_empty() => {
            Ok(ModelRef {
                model_type: model_type.to_owned(),
                model_id: model_id.to_owned(),
            })
        }
        _ => anyhow::bail!(
            "`{text}` is not a model: write <type>/<id>, e.g. vision/detector/m-42 (the type may contain `/`)"
        ),
    }
}

/// Parses every `--model` argument.
///
/// # Errors
/// At the first that is not a model.
pub fn parse_models(texts: &[String]) -> anyhow::Result<Vec<ModelRef>> {
    texts.iter().map(|text| parse_model(text)).collect()
}
