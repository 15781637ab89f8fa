"""The type hash: FNV-1a, the canonical text, stability and sensitivity."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from conftest import DATA, check_golden

from flatlane_gen import frontend
from flatlane_gen.typehash import fnv1a64

# Recorded values. If one changes, every deployed endpoint stops attaching to peers built from an
# older generator: change them only together with CANONICAL_VERSION_LINE (docs/SCHEMA.md).
ROBOT_COMMAND_HASH = 0xE09610E84F0FCA25
KITCHEN_SINK_HASH = 0xEE188A9CEBEDAD58
VOID_HASH = 0x41548898504D151D


@pytest.mark.parametrize("data,expected", [
    (b"", 0xCBF29CE484222325),          # published FNV-1a 64 test vectors
    (b"a", 0xAF63DC4C8601EC8C),
    (b"foobar", 0x85944171F73967E8),
])
def test_fnv1a64_vectors(data: bytes, expected: int) -> None:
    assert fnv1a64(data) == expected


def test_recorded_hashes(example_schema) -> None:
    assert example_schema.message("robot.Command").type_hash == ROBOT_COMMAND_HASH
    assert example_schema.message("flatlane.Void").type_hash == VOID_HASH
    assert example_schema.message("flatlane.Void").canonical == (
        "flatlane-typehash-v1\nroot flatlane.Void\ntable flatlane.Void\n")


def test_kitchen_sink_canonical_text() -> None:
    schema = frontend.load(str(DATA / "kitchen_sink.fbs"))
    sink = schema.message("ks.Sink")
    check_golden("kitchen_sink.Sink.typehash.txt", sink.canonical)
    assert sink.type_hash == KITCHEN_SINK_HASH == fnv1a64(sink.canonical.encode())


BASE = """
include "flatlane.fbs";
namespace t;

enum Color : byte { Red, Green }

table Inner { v:int; }

// a comment
table Msg {
  a:int;
  b:string;
  inner:Inner;
  color:Color = Green;
  ratio:double = 0.25;
}

rpc_service S (flatlane_pattern: "topic") { m(Msg): flatlane.Void; }
"""


@pytest.fixture
def msg_hash(write_schema: Callable[..., Path]) -> Callable[..., int]:
    counter = iter(range(1000))

    def compute(text: str, extra: dict[str, str] | None = None) -> int:
        d = f"s{next(counter)}"
        for name, body in (extra or {}).items():
            write_schema(f"{d}/{name}", body)
        path = write_schema(f"{d}/main.fbs", text)
        return frontend.load(str(path), [str(path.parent)]).message("t.Msg").type_hash

    return compute


def edit(old: str, new: str) -> str:
    assert old in BASE
    return BASE.replace(old, new, 1)


UNCHANGED = {
    "comments": edit("// a comment", "// another comment\n/// and a doc comment"),
    "field docs": edit("  a:int;", "  /// the a field\n  a:int;"),
    "channel settings": edit('(flatlane_pattern: "topic")',
                             '(flatlane_pattern: "topic", flatlane_ring_capacity: "64KiB")'),
    "unrelated table": BASE + "\ntable Unrelated { z:long; }\n",
    "declaration order of types": edit("table Inner { v:int; }\n", "").replace(
        "rpc_service", "table Inner { v:int; }\nrpc_service"),
    "explicit ids, same order": edit("  a:int;\n  b:string;", "  b:string (id: 1);\n  a:int (id: 0);")
    .replace("inner:Inner;", "inner:Inner (id: 2);").replace("= Green;", "= Green (id: 3);")
    .replace("= 0.25;", "= 0.25 (id: 4);"),
    "user attribute": edit("namespace t;", 'attribute "my_note";\nnamespace t;').replace(
        "  a:int;", '  a:int (my_note: "x");'),
    "default spelled differently": edit("= Green;", "= 1;"),
}

CHANGED = {
    "appended field": edit("  ratio:double = 0.25;", "  ratio:double = 0.25;\n  extra:int;"),
    "renamed field": edit("  a:int;", "  alpha:int;"),
    "field type": edit("  a:int;", "  a:long;"),
    "integer default": edit("  a:int;", "  a:int = 3;"),
    "float default": edit("= 0.25;", "= 0.5;"),
    "optional scalar": edit("  a:int;", "  a:int = null;"),
    "enum default": edit("= Green;", "= Red;"),
    "deprecated": edit("  a:int;", "  a:int (deprecated);"),
    "required": edit("  b:string;", "  b:string (required);"),
    "field order": edit("  a:int;\n  b:string;", "  b:string;\n  a:int;"),
    "nested table": edit("table Inner { v:int; }", "table Inner { v:int; w:int; }"),
    "enum value": edit("{ Red, Green }", "{ Red, Green, Blue }"),
    "enum underlying": edit("enum Color : byte", "enum Color : ubyte"),
    "namespace of a nested type": edit("table Inner { v:int; }", "").replace(
        "inner:Inner;", "inner:u.Inner;").replace(
        'include "flatlane.fbs";', 'include "flatlane.fbs";\nnamespace u;\ntable Inner { v:int; }'),
}


def test_unchanged_by(msg_hash: Callable[..., int]) -> None:
    base = msg_hash(BASE)
    for what, text in UNCHANGED.items():
        assert msg_hash(text) == base, what


def test_unchanged_by_moving_a_type_to_an_included_file(msg_hash: Callable[..., int]) -> None:
    moved = edit("table Inner { v:int; }", "").replace(
        'include "flatlane.fbs";', 'include "flatlane.fbs";\ninclude "inner.fbs";')
    assert msg_hash(moved, {"inner.fbs": "namespace t;\ntable Inner { v:int; }\n"}) \
        == msg_hash(BASE)


def test_changed_by(msg_hash: Callable[..., int]) -> None:
    base = msg_hash(BASE)
    seen = {base}
    for what, text in CHANGED.items():
        h = msg_hash(text)
        assert h != base, what
        seen.add(h)
    assert len(seen) == len(CHANGED) + 1  # and all different from each other
