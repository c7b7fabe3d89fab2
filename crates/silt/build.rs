//! Link settings of the `silt` binary.

fn main() {
    // Relative relocations packed (DT_RELR, glibc ≥ 2.36, binutils ≥ 2.38):
    // the dynamic loader reads a few KiB instead of a 2 MiB table at every
    // start. GNU ld packs them only when the C library it links against
    // supports it, and an older ld ignores the option with a warning.
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target == "x86_64-unknown-linux-gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
