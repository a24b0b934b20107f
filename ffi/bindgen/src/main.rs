//! Regenerates the checked-in interface files of `streamhub-ffi` — the C header
//! (cbindgen) and the Swift and Kotlin bindings (uniffi-bindgen, library mode) — or,
//! with `--check`, fails when any of them is stale.
//!
//! ```text
//! cargo run -p streamhub-bindgen            # write the files
//! cargo run -p streamhub-bindgen -- --check # exit 1 if a checked-in file differs
//! cargo run -p streamhub-bindgen -- --check --library target/debug/deps/libstreamhub_ffi.so
//! ```
//!
//! It builds `streamhub-ffi` (debug, unstripped: uniffi reads its metadata from the
//! library) first, unless `--library` names one already built: CI passes the one its
//! test build made, since `-p streamhub-ffi` alone resolves other features for the
//! core and would build the whole dependency tree a second time. The metadata does not
//! depend on the core's features.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use camino::Utf8PathBuf;
use uniffi_bindgen::bindings::{GenerateOptions, TargetLanguage, generate};

/// A generated file and where it is checked in.
struct Output {
    /// Path inside the repository.
    path: PathBuf,
    /// Its fresh contents.
    contents: Vec<u8>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.iter().any(|arg| arg == "--check");
    let library = args
        .iter()
        .position(|arg| arg == "--library")
        .map(|at| args.get(at + 1).map(PathBuf::from));
    let library = match library {
        Some(None) => {
            eprintln!("streamhub-bindgen: --library needs a path");
            return ExitCode::FAILURE;
        }
        Some(Some(path)) => Some(path),
        None => None,
    };
    match run(check, library.as_deref()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("streamhub-bindgen: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

fn run(check: bool, library: Option<&Path>) -> Result<bool> {
    let root = repo_root();
    let mut outputs = vec![header(&root)?];
    let library = match library {
        Some(path) => path.to_path_buf(),
        None => build_library(&root)?,
    };
    outputs.extend(foreign_bindings(&library)?);
    let mut fresh = true;
    for output in &outputs {
        let target = root.join(&output.path);
        let current = std::fs::read(&target).ok();
        if current.as_deref() == Some(output.contents.as_slice()) {
            println!("fresh    {}", output.path.display());
            continue;
        }
        if check {
            println!("STALE    {}", output.path.display());
            fresh = false;
        } else {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&target, &output.contents)
                .with_context(|| format!("writing {}", target.display()))?;
            println!("written  {}", output.path.display());
        }
    }
    if !fresh {
        eprintln!("generated files are stale: run `cargo run -p streamhub-bindgen` and commit");
    }
    Ok(fresh)
}

/// `ffi/include/streamhub.h` from the C ABI's source.
fn header(root: &Path) -> Result<Output> {
    let crate_dir = root.join("ffi");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .context("cbindgen")?;
    let mut contents = Vec::new();
    bindings.write(&mut contents);
    Ok(Output {
        path: PathBuf::from("ffi/include/streamhub.h"),
        contents,
    })
}

/// Builds `streamhub-ffi` (debug) and returns the library's path.
fn build_library(root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "streamhub-ffi", "--lib"])
        .current_dir(root)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build -p streamhub-ffi failed");
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target_dir.join("debug").join(library_file_name()))
}

/// The Swift and Kotlin bindings, from the built `library`'s uniffi metadata.
fn foreign_bindings(library: &Path) -> Result<Vec<Output>> {
    anyhow::ensure!(library.exists(), "{} does not exist", library.display());
    let out = tempfile_dir()?;
    generate(GenerateOptions {
        languages: vec![TargetLanguage::Kotlin, TargetLanguage::Swift],
        source: utf8(library)?,
        out_dir: utf8(&out)?,
        config_override: None,
        format: false,
        crate_filter: Some("streamhub_ffi".into()),
        metadata_no_deps: true,
    })
    .context("uniffi-bindgen")?;
    let read = |name: &str, path: &str| -> Result<Output> {
        let contents = find(&out, name)
            .and_then(|found| std::fs::read(&found).ok())
            .with_context(|| format!("uniffi-bindgen wrote no {name}"))?;
        Ok(Output {
            path: PathBuf::from(path),
            contents,
        })
    };
    let outputs = vec![
        read(
            "streamhub.kt",
            "bindings/kotlin/src/main/kotlin/dev/streamhub/ffi/streamhub.kt",
        )?,
        read(
            "StreamHub.swift",
            "bindings/swift/Sources/StreamHub/Generated/StreamHub.swift",
        )?,
        read(
            "streamhubFFI.h",
            "bindings/swift/Sources/streamhubFFI/include/streamhubFFI.h",
        )?,
        read(
            "streamhubFFI.modulemap",
            "bindings/swift/Sources/streamhubFFI/include/module.modulemap",
        )?,
    ];
    let _ = std::fs::remove_dir_all(&out);
    Ok(outputs)
}

fn library_file_name() -> &'static str {
    if cfg!(target_os = "macos") {
        "libstreamhub_ffi.dylib"
    } else if cfg!(target_os = "windows") {
        "streamhub_ffi.dll"
    } else {
        "libstreamhub_ffi.so"
    }
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("streamhub-bindgen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn utf8(path: &Path) -> Result<Utf8PathBuf> {
    Utf8PathBuf::from_path_buf(path.to_path_buf())
        .map_err(|p| anyhow::anyhow!("{} is not UTF-8", p.display()))
}

/// The file called `name` somewhere under `dir` (uniffi nests Kotlin by package).
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}
