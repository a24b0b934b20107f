#!/usr/bin/env python3
"""A syntax check of the Swift sources, for machines without a Swift compiler.

    target/peers-venv/bin/python bindings/swift/check_syntax.py [FILE.swift ...]

Without arguments it checks every .swift file under bindings/swift and examples/swift
(skipping hidden directories such as .build); with arguments, just those files. Each
file is parsed with tree-sitter-swift; every ERROR or MISSING node is reported as
file:line:col with the source line, and the exit status is 1 if there is any. The
venv comes from scripts/setup-peers.sh, which pins tree-sitter and tree-sitter-swift.

This is a weak check: it finds broken syntax, not type errors, and the grammar is not
the compiler. It misreads two constructs that are valid Swift and that the generated
bindings use; ALLOWED excuses exactly those, by the source line's exact text (and the
erroring node's text), wherever they are. Anything else is reported.
"""

import sys
from pathlib import Path

try:
    import tree_sitter
    import tree_sitter_swift
except ImportError as error:
    sys.exit(f"check_syntax: {error}: run scripts/setup-peers.sh and use target/peers-venv/bin/python")

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIRS = ("bindings/swift", "examples/swift")

# (erroring node's text, its line's text without surrounding whitespace, why): a
# tree-sitter-swift misreading of valid Swift, excused only where both match exactly.
ALLOWED = (
    (
        "@_documentation(visibility: private)",
        "@_documentation(visibility: private)",
        "the grammar does not know the @_documentation attribute's argument",
    ),
    (
        "()",
        "let writeReturn = { () }",
        "the grammar does not take `()` as the body of a closure",
    ),
)


def swift_files(args):
    if args:
        return [Path(arg).resolve() for arg in args]
    found = []
    for folder in DEFAULT_DIRS:
        for path in sorted((ROOT / folder).rglob("*.swift")):
            relative = path.relative_to(ROOT / folder).parts
            if not any(part.startswith(".") for part in relative):
                found.append(path)
    return found


def shown(path):
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def problems(tree):
    """ERROR and MISSING nodes, outermost first; an ERROR node's inside is not searched."""
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            yield node
            continue
        if node.has_error:
            stack.extend(reversed(node.children))


def allowance(node, lines):
    row = node.start_point[0]
    if node.is_missing or node.end_point[0] != row:
        return None
    text = node.text.decode("utf-8", "replace")
    line = lines[row].strip()
    for entry in ALLOWED:
        if (text, line) == entry[:2]:
            return entry
    return None


def main(args):
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_swift.language()))
    files = swift_files(args)
    if not files:
        print("check_syntax: no .swift files found", file=sys.stderr)
        return 1
    errors = 0
    total_lines = 0
    allowed = {entry: 0 for entry in ALLOWED}
    for path in files:
        try:
            source = path.read_bytes()
        except OSError as error:
            print(f"{shown(path)}: cannot read: {error}")
            errors += 1
            continue
        byte_lines = source.split(b"\n")
        lines = [line.decode("utf-8", "replace") for line in byte_lines]
        line_count = len(lines) - (lines[-1] == "")
        total_lines += line_count
        excused = 0
        found = 0
        for node in problems(parser.parse(source)):
            entry = allowance(node, lines)
            if entry:
                allowed[entry] += 1
                excused += 1
                continue
            found += 1
            row, col = node.start_point
            kind = f"MISSING {node.type}" if node.is_missing else "ERROR"
            # Columns are bytes in tree-sitter; count characters for the caret.
            col_chars = len(byte_lines[row][:col].decode("utf-8", "replace"))
            print(f"{shown(path)}:{row + 1}:{col_chars + 1}: {kind}")
            print(f"    {lines[row]}")
            print(f"    {' ' * col_chars}^")
        errors += found
        note = f", {excused} allow-listed" if excused else ""
        status = "ok  " if found == 0 else "FAIL"
        print(f"{status} {shown(path)} ({line_count} lines{note})")
    plural = "" if len(files) == 1 else "s"
    print(f"{len(files)} file{plural}, {total_lines} lines parsed: {errors} syntax errors, "
          f"{sum(allowed.values())} allow-listed")
    for (text, line, why), count in allowed.items():
        if count:
            print(f"  allow-listed {count}x `{line}`: {why}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
