//! Link settings of the `silt` binary.

fn main() {
    // Relative relocations packed (DT_RELR, glibc ≥ 2.36, binutils ≥ 2.38):
    // the dynamic loader reads a few KiB instead of a 2 MiB table at every
    // start. Only where the target is Linux with GNU ld.
    let target = std::env::var("TARGET").unwrap_or_default();
    if target == "x86_64-unknown-linux-gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
