//! The Swift package's syntax check (`bindings/swift/check_syntax.py`, tree-sitter-swift
//! in the venv of `scripts/setup-peers.sh`): no Swift compiler runs on Linux, so this is
//! what CI can check of the Swift sources. Also shows that the check does fail, on a
//! broken snippet, and that its allow-list excuses only the exact lines it names.

use std::path::Path;
use std::process::{Command, Output};

use streamhub_test_support::aiortc::peers_python;
use streamhub_test_support::workspace_root;

/// Runs the checker with `args`; panics with a clear message when the venv is missing.
fn check_syntax(args: &[&Path]) -> Output {
    let root = workspace_root();
    // The venv of scripts/setup-peers.sh also holds tree-sitter and tree-sitter-swift;
    // a missing venv fails the test, naming scripts/test.sh.
    let python = peers_python();
    Command::new(&python)
        .arg(root.join("bindings/swift/check_syntax.py"))
        .args(args)
        .current_dir(&root)
        .output()
        .expect("running check_syntax.py")
}

fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn swift_sources_parse_without_syntax_errors() {
    let output = check_syntax(&[]);
    let text = printed(&output);
    println!("{text}");
    assert!(output.status.success(), "Swift syntax errors:\n{text}");
    // The walk found the files it is meant to check.
    for file in [
        "bindings/swift/Package.swift",
        "bindings/swift/Sources/StreamHub/Generated/StreamHub.swift",
        "bindings/swift/Sources/StreamHub/StreamHub+Async.swift",
        "bindings/swift/Tests/StreamHubTests/StreamHubTests.swift",
        "examples/swift/Broadcast.swift",
    ] {
        assert!(
            text.contains(&format!("ok   {file} (")),
            "{file} was not checked:\n{text}"
        );
    }
}

#[test]
fn the_check_fails_on_broken_swift_and_excuses_only_the_listed_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, source: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, source).expect("write a Swift file");
        path
    };

    let broken = write(
        "broken.swift",
        "import Foundation\n\nfunc broken(a: Int {\n    let x = \n}\n",
    );
    let output = check_syntax(&[&broken]);
    let text = printed(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "broken Swift passed:\n{text}"
    );
    assert!(
        text.contains("broken.swift:3:"),
        "no file:line:col:\n{text}"
    );
    assert!(text.contains("FAIL"), "{text}");

    // The two constructs tree-sitter-swift misreads, as the generated bindings write
    // them: valid Swift, excused.
    let known = write(
        "known.swift",
        "public struct S {\n#if swift(>=5.8)\n    @_documentation(visibility: private)\n#endif\n    \
         public init() {}\n}\n\nfunc f() {\n    let writeReturn = { () }\n    writeReturn()\n}\n",
    );
    let output = check_syntax(&[&known]);
    let text = printed(&output);
    assert!(
        output.status.success(),
        "the known misreadings failed:\n{text}"
    );
    assert!(text.contains("2 allow-listed"), "{text}");

    // The same misreading on a line the allow-list does not name is reported: it
    // matches lines, not constructs.
    let other = write(
        "other.swift",
        "func f() {\n    let w = { () }\n    w()\n}\n",
    );
    let output = check_syntax(&[&other]);
    let text = printed(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("other.swift:2:"), "{text}");
}
