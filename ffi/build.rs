//! Link settings for the shipped library.

fn main() {
    // Packed relative relocations (DT_RELR) shrink the relocation table of the shared
    // library by about 0.6 MiB. glibc 2.36+ and binutils 2.38+ on Linux; Android's
    // linker and lld also support it (API 28+), Apple's platforms do not use ELF.
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,pack-relative-relocs");
    }
}
