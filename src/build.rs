//! Build script: lays the extension out so that what a worker runs sits first, when the linker is
//! lld.
//!
//! `src/hot_symbols.txt` (written by `benches/hot_symbols.py`) lists the functions that serve
//! requests; lld's `--symbol-ordering-file` places them together at the start of `.text`, so a
//! worker keeps a few hundred KiB of the extension's code resident instead of most of it.
//! `src/layout.ld` moves the sections it never reads (crypto tables, unwind tables) from in front
//! of the code to after it. Only lld has these options (rustc links with it on x86_64 Linux since
//! 1.90), so the script first links an empty library with them and leaves the build alone when
//! that fails: the layout is an optimisation, never a requirement.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn main() {
    let src = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("src");
    let (order, script) = (src.join("hot_symbols.txt"), src.join("layout.ld"));
    for input in [&order, &script] {
        println!("cargo:rerun-if-changed={}", input.display());
    }
    println!("cargo:rerun-if-changed=src/build.rs");
    let args = [
        format!("-Wl,--symbol-ordering-file={}", order.display()),
        // Names from another toolchain or version are skipped without a word.
        "-Wl,--no-warn-symbol-ordering".to_owned(),
        format!("-Wl,-T,{}", script.display()),
    ];
    if order.is_file() && links_with(&args) {
        for arg in args {
            println!("cargo:rustc-cdylib-link-arg={arg}");
        }
    }
}

/// Whether rustc, with this build's target and flags, links an empty cdylib given `args`.
fn links_with(args: &[String]) -> bool {
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let mut probe = Command::new(rustc);
    probe
        .args(["--crate-type", "cdylib", "--crate-name", "layout_probe", "--target"])
        .arg(env::var("TARGET").unwrap())
        .arg("--out-dir")
        .arg(&out)
        .args(flags.split('\x1f').filter(|flag| !flag.is_empty()))
        .args(env::var("RUSTC_LINKER").map(|linker| format!("-Clinker={linker}")))
        .args(args.iter().flat_map(|arg| ["-C".to_owned(), format!("link-arg={arg}")]))
        .arg("-")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    probe.status().is_ok_and(|status| status.success())
}
