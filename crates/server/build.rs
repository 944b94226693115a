//! Link settings for the `ruleiq` executable.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(packed_relocations)");
    let env = |key: &str| std::env::var(key).unwrap_or_default();
    // Pack the executable's relative relocations (DT_RELR). Every pointer in a static
    // table needs one, and as 24-byte RELA entries they fill 4.6 MB of the file that the
    // loader reads at start and that then stay resident for the life of the process;
    // packed, they take 60 kB. (Issue 8's audit pack is held to 100 MB resident.)
    // It needs GNU ld 2.38 and, where the program runs, glibc 2.36 (Debian 12 and our
    // container images have both), so it is used only for a native build on such a
    // glibc; elsewhere the executable is linked as before.
    let native = env("HOST") == env("TARGET");
    if native && env("CARGO_CFG_TARGET_OS") == "linux" && env("CARGO_CFG_TARGET_ENV") == "gnu" {
        if glibc_at_least(2, 36) {
            println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
            // For the test that checks it.
            println!("cargo:rustc-cfg=packed_relocations");
        } else {
            println!(
                "cargo:warning=glibc older than 2.36: relocations not packed (4.6 MB more resident)"
            );
        }
    }
}

/// The build machine's glibc, from `getconf GNU_LIBC_VERSION` ("glibc 2.36").
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.trim().trim_start_matches("glibc ");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}
