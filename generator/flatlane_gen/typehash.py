"""The type hash: a 64-bit identity of a message type's exact definition.

Endpoints write it (with the type name) into a channel segment's header and refuse to attach to a
segment whose creator used another definition (PROTOCOL.md §3.5, `type_mismatch`). The generator
computes it once and emits it as a constant into every language, so C++, Python and C# agree by
construction; the canonical text is nevertheless specified exactly (docs/SCHEMA.md, "Type hash")
so that any other tool can recompute it from a schema.

Canonical text, version 1 (UTF-8, every line ends with "\\n", tokens separated by one space):

    flatlane-typehash-v1
    root <root table name>
    <definition>...            every table/struct/enum/union reachable from the root, including
                               the root, sorted by fully qualified name (byte order)

    table <name>
    field <id> <name> <type>[ default=<d>][ deprecated][ required][ key]   one per field, by id
    struct <name> size=<bytesize> align=<minalign>
    field <id> <name> <type> offset=<offset>[ deprecated][ required][ key]
    enum <name> <underlying scalar>
    value <name> <integer>                                                 one per value, by value
    union <name>
    value <name> <integer> <type>           NONE's type is `none`

    <type>: a scalar name (bool byte ubyte short ushort int uint long ulong float double),
            `string`, a definition's fully qualified name (enum-typed scalars, structs, tables,
            unions), `utype(<union name>)` for a union's `_type` field, `[<type>]` for vectors,
            `[<type>:<n>]` for fixed-length arrays.
    default=<d> appears on table fields whose type is a scalar or an enum: `null` for optional
            scalars, the decimal integer for integers, bools (0/1) and enums, and for float/double
            `0x` + 16 lowercase hex digits of the IEEE-754 binary64 bit pattern flatc stored.

Not part of the text, so changing them keeps the hash: comments and `///` docs, attributes other
than the ones listed (`id` shows as the field id, `force_align` as `align`), the file a type is
declared in, declaration order when ids are explicit.
"""

from __future__ import annotations

import struct
from typing import Callable, Iterator, Optional

from .ir import Definition, Enum, Field, Struct, Table, TypeKind, TypeRef, Union

CANONICAL_VERSION_LINE = "flatlane-typehash-v1"

FNV64_OFFSET = 0xCBF29CE484222325
FNV64_PRIME = 0x100000001B3


def fnv1a64(data: bytes) -> int:
    h = FNV64_OFFSET
    for b in data:
        h = ((h ^ b) * FNV64_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


Lookup = Callable[[str], Optional[Definition]]


def render_type(t: TypeRef) -> str:
    if t.kind is TypeKind.SCALAR:
        assert t.scalar is not None
        return t.scalar
    if t.kind is TypeKind.STRING:
        return "string"
    if t.kind is TypeKind.UNION_TYPE:
        return f"utype({t.name})"
    if t.kind is TypeKind.VECTOR:
        assert t.element is not None
        return f"[{render_type(t.element)}]"
    if t.kind is TypeKind.ARRAY:
        assert t.element is not None
        return f"[{render_type(t.element)}:{t.length}]"
    assert t.name is not None  # ENUM, STRUCT, TABLE, UNION
    return t.name


def render_default(f: Field) -> Optional[str]:
    if f.type.kind not in (TypeKind.SCALAR, TypeKind.ENUM):
        return None
    if f.optional or f.default is None:
        return "null"
    if f.type.scalar in ("float", "double"):
        bits = struct.unpack(">Q", struct.pack(">d", float(f.default)))[0]
        return f"0x{bits:016x}"
    return str(int(f.default))


def _flags(f: Field) -> str:
    return "".join(f" {n}" for n, on in
                   (("deprecated", f.deprecated), ("required", f.required), ("key", f.key)) if on)


def _refs(t: TypeRef) -> Iterator[str]:
    if t.name is not None:
        yield t.name
    if t.element is not None:
        yield from _refs(t.element)


def _definition_lines(d: Definition) -> list[str]:
    if isinstance(d, Table):
        lines = [f"table {d.name}"]
        for f in d.fields:
            dflt = render_default(f)
            lines.append(f"field {f.id} {f.name} {render_type(f.type)}"
                         + ("" if dflt is None else f" default={dflt}") + _flags(f))
        return lines
    if isinstance(d, Struct):
        lines = [f"struct {d.name} size={d.bytesize} align={d.minalign}"]
        lines += [f"field {f.id} {f.name} {render_type(f.type)} offset={f.offset}{_flags(f)}"
                  for f in d.fields]
        return lines
    if isinstance(d, Enum):
        return [f"enum {d.name} {d.underlying}"] + [f"value {v.name} {v.value}" for v in d.values]
    return [f"union {d.name}"] + [
        f"value {m.name} {m.value} {'none' if m.type is None else render_type(m.type)}"
        for m in d.members]


def closure(root: str, lookup: Lookup) -> list[Definition]:
    """Every definition reachable from `root` (root included), sorted by name."""
    seen: dict[str, Definition] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        d = lookup(name)
        if d is None:
            raise KeyError(f"type hash: unknown type {name!r}")
        seen[name] = d
        if isinstance(d, (Table, Struct)):
            for f in d.fields:
                todo.extend(_refs(f.type))
        elif isinstance(d, Union):
            for m in d.members:
                if m.type is not None:
                    todo.extend(_refs(m.type))
    return [seen[n] for n in sorted(seen, key=lambda s: s.encode("utf-8"))]


def canonical_text(root: str, lookup: Lookup) -> str:
    lines = [CANONICAL_VERSION_LINE, f"root {root}"]
    for d in closure(root, lookup):
        lines += _definition_lines(d)
    return "".join(line + "\n" for line in lines)


def type_hash(root: str, lookup: Lookup) -> tuple[int, str]:
    """(hash, canonical text) of the type named `root`."""
    text = canonical_text(root, lookup)
    return fnv1a64(text.encode("utf-8")), text

