//! An extension that exports `capabilities` and nothing else, so silt must
//! refuse it for missing exports.

wit_bindgen::generate!({
    inline: "package test:partial; world partial { export silt:datastore/capabilities@0.7.4; }",
    path: "../../../wit",
    world: "test:partial/partial",
});

use exports::silt::datastore::capabilities;

#[unsafe(link_section = "silt-extension")]
#[used]
static METADATA: [u8; include_bytes!("../silt-extension.toml").len()] =
    *include_bytes!("../silt-extension.toml");

struct Partial;

impl capabilities::Guest for Partial {
    fn describe() -> capabilities::Description {
        capabilities::Description {
            name: "partial".into(),
            version: "0.1.0".into(),
            features: capabilities::Features::empty(),
        }
    }
}

export!(Partial);
