//! An extension built against `silt:datastore@0.0.9`, a version this silt
//! does not speak: it must be refused, naming both versions.

wit_bindgen::generate!({
    inline: "
        package silt:datastore@0.0.9;
        interface capabilities { describe: func() -> string; }
        world datastore-extension { export capabilities; }
    ",
    world: "silt:datastore/datastore-extension@0.0.9",
});

#[unsafe(link_section = "silt-extension")]
#[used]
static METADATA: [u8; include_bytes!("../silt-extension.toml").len()] =
    *include_bytes!("../silt-extension.toml");

struct WrongVersion;

impl exports::silt::datastore::capabilities::Guest for WrongVersion {
    fn describe() -> String {
        "wrong-version".into()
    }
}

export!(WrongVersion);
