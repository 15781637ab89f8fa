"""C# back end: span-based FlatBuffers types and typed endpoints, generated from the IR alone.

flatc 2.0.8's C# output needs the `FlatBuffers` runtime of that version (the NuGet package
Google.FlatBuffers renamed its namespace and dropped `FLATBUFFERS_2_0_8`), and its ByteBuffer is
built on `byte[]`, so it cannot read or build in shared memory. This back end therefore emits its
own code over the runtime's `Flatlane.FlatBuffers` (runtime/csharp/Flatlane/FlatBuffers):

- `OUT/<f>_generated.cs` for every file f of the include closure that declares types (the framework
  file's only type, `flatlane.Void`, ships with the runtime): enums, blittable structs with the
  exact FlatBuffers layout, and per table a `readonly ref struct` view over a `ReadOnlySpan<byte>`
  (bounds-checked accessors), a verifier, and a builder writing through `FbBuilder`. Every table
  implements `Flatlane.Typed.IFlatlaneMessage<T>` (type name and hash, as in C++ and Python).
- `OUT/<schema>.flatlane.cs`: one static class per rpc_service, one nested class per channel with
  its `ChannelSpec` and endpoint classes (topic: Publisher/Subscriber, pipeline: Pusher/Puller,
  service: Client/Server, duplex: Client/Server over the runtime's TypedDuplexClient/Server)
  deriving from the runtime's typed endpoints. Every table also gets a `Mutable` view over a
  writable span (in-place writes of fields present in the buffer, for duplex servers).

Writing one types file per schema file lets a project generate several schemas that share an
include into one folder: the shared file is the same text whoever writes it.
"""

from __future__ import annotations

import math
import os
import re
import struct
from typing import Any, Iterable, Optional, Sequence

from .. import ir, typehash
from ..errors import SchemaError
from . import RenderContext, environment, rel_to_root, stem

LANGUAGE = "csharp"

# C# keywords (reserved); contextual keywords are valid identifiers.
KEYWORDS = frozenset("""
abstract as base bool break byte case catch char checked class const continue decimal default
delegate do double else enum event explicit extern false finally fixed float for foreach goto if
implicit in int interface internal is lock long namespace new null object operator out override
params private protected public readonly ref return sbyte sealed short sizeof stackalloc static
string struct switch this throw true try typeof uint ulong unchecked unsafe ushort using virtual
void volatile while
""".split())

FRAMEWORK_NAMESPACE = "flatlane"
RUNTIME_PROVIDED = frozenset({ir.VOID})

# FlatBuffers scalar -> (C# type, size)
SCALARS = {
    "bool": ("bool", 1), "byte": ("sbyte", 1), "ubyte": ("byte", 1), "short": ("short", 2),
    "ushort": ("ushort", 2), "int": ("int", 4), "uint": ("uint", 4), "long": ("long", 8),
    "ulong": ("ulong", 8), "float": ("float", 4), "double": ("double", 8),
}
_SUFFIX = {"uint": "U", "long": "L", "ulong": "UL", "float": "f", "double": "d"}

# Members every table view has; a field whose C# name would be one of them gets a trailing `_`.
TABLE_MEMBERS = frozenset({
    "Builder", "Vector", "TypeName", "TypeHash", "FileIdentifier", "GetRoot", "Verify",
    "VerifyTable", "Build", "IsPresent", "Equals", "GetHashCode", "ToString", "GetType",
    "FieldCount", "Mutable"})
STRUCT_MEMBERS = frozenset({"Size", "Alignment", "CreateOffset", "Equals", "GetHashCode",
                            "ToString", "GetType"})
BUILDER_MEMBERS = frozenset({"End", "Equals", "GetHashCode", "ToString", "GetType"})
# Members of a table's `Mutable` view (in-place writes: duplex requests).
MUTABLE_MEMBERS = frozenset({"View", "GetRoot", "IsPresent", "Equals", "GetHashCode", "ToString",
                             "GetType"})


def ident(name: str) -> str:
    """A C# identifier: keywords are escaped with `@`."""
    return "@" + name if name in KEYWORDS else name


def pascal(name: str) -> str:
    """`joint_positions` -> `JointPositions`, `u8` -> `U8`, `SetMode` -> `SetMode`."""
    parts = [p for p in name.split("_") if p]
    if not parts:
        return "_"
    out = "".join(p[:1].upper() + p[1:] for p in parts)
    return ("_" + out) if out[:1].isdigit() else out


def qualified(name: str) -> str:
    """`ks.inner.Aligned` -> `global::ks.inner.Aligned`."""
    return "global::" + ".".join(ident(p) for p in name.split("."))


def split_name(name: str) -> tuple[str, str]:
    ns, _, short = name.rpartition(".")
    return ns, short


def csstr(text: str) -> str:
    out = []
    for ch in text:
        if ch in "\\\"":
            out.append("\\" + ch)
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else
                       "".join(f"\\u{u:04x}" for u in struct.unpack("<2H", ch.encode("utf-16-le"))))
    return '"' + "".join(out) + '"'


def xml_doc(doc: Sequence[str], indent: int, fallback: Optional[str] = None) -> str:
    lines = [line[1:] if line.startswith(" ") else line for line in doc]
    if not lines:
        if fallback is None:
            return ""
        lines = [fallback]
    esc = [line.rstrip().replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
           for line in lines]
    pad = " " * indent
    body = "\n".join(f"{pad}/// {line}".rstrip() for line in esc)
    return f"{pad}/// <summary>\n{body}\n{pad}/// </summary>\n"


def literal(scalar: str, value: Any) -> str:
    """A C# literal of FlatBuffers scalar type `scalar`."""
    cs = SCALARS[scalar][0]
    if scalar == "bool":
        return "true" if value else "false"
    if scalar in ir.FLOAT_SCALARS:
        v = float(value if value is not None else 0.0)
        if math.isnan(v):
            return f"{cs}.NaN"
        if math.isinf(v):
            return f"{cs}.PositiveInfinity" if v > 0 else f"{cs}.NegativeInfinity"
        text = repr(v) if scalar == "double" else _shortest_float32(v)
        if "e" not in text and "." not in text:
            text += ".0"
        return text + _SUFFIX[scalar]
    v = int(value or 0)
    if scalar in ("byte", "ubyte", "short", "ushort"):
        return f"({cs}){v}" if v >= 0 else f"({cs})({v})"
    if scalar == "long" and v == -(1 << 63):
        return "long.MinValue"
    if scalar == "int" and v == -(1 << 31):
        return "int.MinValue"
    return f"{v}{_SUFFIX.get(scalar, '')}"


def _shortest_float32(v: float) -> str:
    """The shortest decimal text that reads back as the same float32 (`0.1`, not `0.10000000149`)."""
    f32 = struct.unpack("<f", struct.pack("<f", v))[0]
    for digits in range(1, 10):
        text = f"{f32:.{digits}g}"
        if struct.unpack("<f", struct.pack("<f", float(text)))[0] == f32:
            return text
    return repr(f32)


def _definitions(schema: ir.Schema) -> Iterable[Any]:
    for group in (schema.tables, schema.structs, schema.enums, schema.unions):
        yield from group


def _emitted(schema: ir.Schema, d: Any) -> bool:
    return d.name not in RUNTIME_PROVIDED


def _check(schema: ir.Schema) -> None:
    for d in _definitions(schema):
        if d.name.split(".")[0] == FRAMEWORK_NAMESPACE and d.name not in RUNTIME_PROVIDED:
            raise SchemaError(
                f"{rel_to_root(schema.root_file, d.declaration_file)}: {d.name}: the namespace "
                f"'{FRAMEWORK_NAMESPACE}' holds the framework types only (its flatlane.Void ships "
                f"with the C# runtime); declare schema types in another namespace")


def types_file(fbs_path: str) -> str:
    return stem(fbs_path) + "_generated.cs"


def endpoint_file(schema: ir.Schema) -> str:
    return stem(schema.root_file) + ".flatlane.cs"


def _files_with_types(schema: ir.Schema) -> list[str]:
    declared = {d.declaration_file for d in _definitions(schema) if _emitted(schema, d)}
    return [f.path for f in schema.files if f.path in declared]


def outputs(schema: ir.Schema, out_dir: str) -> list[str]:
    return [os.path.join(out_dir, types_file(p)) for p in _files_with_types(schema)] + [
        os.path.join(out_dir, endpoint_file(schema))]


# ---------------------------------------------------------------------------------------------
# views for the templates

def _type_name(schema: ir.Schema, t: ir.TypeRef) -> str:
    if t.kind is ir.TypeKind.SCALAR:
        return SCALARS[t.scalar][0]
    if t.kind in (ir.TypeKind.ENUM, ir.TypeKind.UNION_TYPE, ir.TypeKind.STRUCT,
                  ir.TypeKind.TABLE):
        return qualified(t.name)
    raise AssertionError(t)


def _elem_size_align(schema: ir.Schema, t: ir.TypeRef) -> tuple[int, int]:
    if t.kind in (ir.TypeKind.SCALAR, ir.TypeKind.ENUM, ir.TypeKind.UNION_TYPE):
        n = SCALARS[t.scalar][1]
        return n, n
    if t.kind is ir.TypeKind.STRUCT:
        s = schema.definition(t.name)
        return s.bytesize, s.minalign
    return 4, 4  # offsets


def _unique(names: list[str], reserved: set[str]) -> list[str]:
    taken = set(reserved)
    out = []
    for n in names:
        while n in taken:
            n += "_"
        taken.add(n)
        out.append(n)
    return out


def _table_view(schema: ir.Schema, t: ir.Table, file_identifier: Optional[str]) -> dict[str, Any]:
    ns, short = split_name(t.name)
    live = [f for f in t.fields if not f.deprecated]
    reserved = set(TABLE_MEMBERS) | {short}
    names = _unique([pascal(f.name) for f in live], reserved)
    fields = []
    by_name = {f.name: n for f, n in zip(live, names)}
    builder_names = dict(zip([f.name for f in live],
                             _unique([by_name[f.name] for f in live], set(BUILDER_MEMBERS))))
    for f, name in zip(live, names):
        k = f.type.kind
        v: dict[str, Any] = {"ir": f, "name": name, "bname": builder_names[f.name], "id": f.id,
                             "kind": k.value, "required": "true" if f.required else "false",
                             "doc": f.documentation}
        if k in (ir.TypeKind.SCALAR, ir.TypeKind.ENUM, ir.TypeKind.UNION_TYPE):
            size = SCALARS[f.type.scalar][1]
            under = SCALARS[f.type.scalar][0]
            v.update(size=size, under=under, cs=_type_name(schema, f.type),
                     is_bool=f.type.scalar == "bool", optional=f.optional)
            if k is ir.TypeKind.SCALAR:
                v["default"] = literal(f.type.scalar, f.default)
                v["under_default"] = v["default"]
            else:
                v["default"] = f"({v['cs']}){literal(f.type.scalar, f.default)}"
                v["under_default"] = literal(f.type.scalar, f.default)
            if f.type.scalar == "bool":
                v["under"] = "byte"
                v["under_default"] = "(byte)1" if f.default else "(byte)0"
        elif k is ir.TypeKind.STRUCT:
            s = schema.definition(f.type.name)
            v.update(cs=_type_name(schema, f.type), size=s.bytesize, align=s.minalign)
        elif k is ir.TypeKind.TABLE:
            v.update(cs=_type_name(schema, f.type))
        elif k is ir.TypeKind.UNION:
            u = schema.definition(f.type.name)
            type_field = next(x for x in t.fields if x.id == f.id - 1)
            members = []
            mnames = _unique([name + "As" + pascal(m.name) for m in u.members if m.type],
                             set(names) | reserved)
            for m, mname in zip([m for m in u.members if m.type], mnames):
                mv = {"name": mname, "value": m.value, "enum": ident(m.name),
                      "kind": m.type.kind.value, "cs": _type_name(schema, m.type)}
                if m.type.kind is ir.TypeKind.STRUCT:
                    s = schema.definition(m.type.name)
                    mv.update(size=s.bytesize, align=s.minalign)
                members.append(mv)
            v.update(cs=qualified(u.name), members=members, type_id=type_field.id,
                     type_name=by_name.get(type_field.name, pascal(type_field.name)))
        elif k is ir.TypeKind.STRING:
            pass
        elif k is ir.TypeKind.VECTOR:
            e = f.type.element
            v["elem_kind"] = e.kind.value
            size, align = _elem_size_align(schema, e)
            v.update(elem_size=size, elem_align=align)
            if e.kind in (ir.TypeKind.SCALAR, ir.TypeKind.ENUM, ir.TypeKind.STRUCT,
                          ir.TypeKind.UNION_TYPE, ir.TypeKind.TABLE):
                v["elem_cs"] = _type_name(schema, e)
            elif e.kind is ir.TypeKind.UNION:
                # [U] is two fields: `f_type:[U]` (the member of each element, the field before)
                # and `f:[U]` (an offset per element); elements are read per member.
                u = schema.definition(e.name)
                type_field = next(x for x in t.fields if x.id == f.id - 1)
                members = []
                mnames = _unique([name + "As" + pascal(m.name) for m in u.members if m.type],
                                 set(names) | reserved)
                for m, mname in zip([m for m in u.members if m.type], mnames):
                    mv = {"name": mname, "value": m.value, "enum": ident(m.name),
                          "kind": m.type.kind.value, "cs": _type_name(schema, m.type)}
                    if m.type.kind is ir.TypeKind.STRUCT:
                        s = schema.definition(m.type.name)
                        mv.update(size=s.bytesize, align=s.minalign)
                    members.append(mv)
                v.update(members=members, type_id=type_field.id,
                         type_name=by_name.get(type_field.name, pascal(type_field.name)),
                         length_name=_unique([name + "Length"], set(names) | reserved | set(mnames))[0])
            nested = f.attributes.get("nested_flatbuffer")
            if nested:
                # Resolved like flatc: in the table's namespace first, then as written.
                cand = f"{ns}.{nested}" if ns else nested
                target = cand if isinstance(schema.definition(cand), ir.Table) else nested
                if not isinstance(schema.definition(target), ir.Table):
                    raise SchemaError(f"{t.name}.{f.name}: nested_flatbuffer '{nested}' is no table")
                v["nested"] = qualified(target)
        else:  # arrays only occur in structs
            raise SchemaError(f"{t.name}.{f.name}: unsupported field type {k.value}")
        fields.append(v)
    _mutable_names(fields)
    field_count = max((f.id for f in t.fields), default=-1) + 1
    return {"ir": t, "ns": ns, "short": ident(short), "fields": fields,
            "field_count": field_count, "type_hash": typehash.type_hash(t.name, schema.definition)[0],
            "file_identifier": file_identifier, "doc": t.documentation}


def _mutable_names(fields: list[dict[str, Any]]) -> None:
    """Names in the table's `Mutable` view: `Mutate<Field>` for scalars, enums and structs, a
    writable span `<Field>` for vectors of scalars, enums and structs, `<Field>Utf8` for strings,
    `<Field>` (the sub-table's Mutable) for tables. Unions and vectors of tables / strings have none."""
    wanted = []
    for v in fields:
        k = v["kind"]
        if k in ("scalar", "enum", "struct"):
            wanted.append((v, "Mutate" + v["name"]))
        elif k == "vector" and v["elem_kind"] not in ("string", "table", "union"):
            wanted.append((v, v["name"]))
        elif k == "string":
            wanted.append((v, v["name"] + "Utf8"))
        elif k == "table":
            wanted.append((v, v["name"]))
    for (v, _), name in zip(wanted, _unique([n for _, n in wanted], set(MUTABLE_MEMBERS))):
        v["mname"] = name


def _struct_view(schema: ir.Schema, s: ir.Struct) -> dict[str, Any]:
    ns, short = split_name(s.name)
    names = _unique([pascal(f.name) for f in s.fields], set(STRUCT_MEMBERS) | {short})
    fields = []
    for f, name in zip(s.fields, names):
        t = f.type
        v: dict[str, Any] = {"name": name, "offset": f.offset, "doc": f.documentation}
        if t.kind is ir.TypeKind.ARRAY:
            e = t.element
            ecs = "byte" if (e.kind is ir.TypeKind.SCALAR and e.scalar == "bool") else \
                _type_name(schema, e)
            v.update(kind="array", cs=ecs, length=t.length, is_bool=e.scalar == "bool",
                     private="_" + name[:1].lower() + name[1:] + "0")
        elif t.kind is ir.TypeKind.SCALAR and t.scalar == "bool":
            v.update(kind="bool", private="_" + name[:1].lower() + name[1:])
        else:
            v.update(kind="plain", cs=_type_name(schema, t))
        fields.append(v)
    return {"ir": s, "ns": ns, "short": ident(short), "fields": fields, "doc": s.documentation}


def _enum_view(e: ir.Enum) -> dict[str, Any]:
    ns, short = split_name(e.name)
    return {"ir": e, "ns": ns, "short": ident(short), "under": SCALARS[e.underlying][0],
            "values": [{"name": ident(x.name), "value": literal(e.underlying, x.value),
                        "doc": x.documentation} for x in e.values],
            "flags": e.bit_flags, "doc": e.documentation}


def _union_view(u: ir.Union) -> dict[str, Any]:
    ns, short = split_name(u.name)
    return {"ir": u, "ns": ns, "short": ident(short), "under": "byte", "flags": False,
            "values": [{"name": ident(m.name), "value": f"(byte){m.value}", "doc": m.documentation}
                       for m in u.members], "doc": u.documentation}


def _namespaces(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Groups views by namespace, in first-appearance order."""
    order: dict[str, list[dict[str, Any]]] = {}
    for it in items:
        order.setdefault(it["ns"], []).append(it)
    return [{"name": ".".join(ident(p) for p in ns.split(".")) if ns else "", "items": v}
            for ns, v in order.items()]


_KIND = {ir.ChannelKind.TOPIC: "Topic", ir.ChannelKind.SERVICE: "Service",
         ir.ChannelKind.PIPELINE: "Pipeline", ir.ChannelKind.DUPLEX: "Duplex"}
_OVERFLOW = {ir.Overflow.DROP_OLDEST: "DropOldest", ir.Overflow.BLOCK: "Block",
             ir.Overflow.FAIL: "Fail"}
_WAIT = {ir.Wait.BUSY_SPIN: "BusySpin", ir.Wait.SPIN_THEN_SLEEP: "SpinThenSleep",
         ir.Wait.BLOCKING: "Blocking"}
_ENDPOINTS = {ir.ChannelKind.TOPIC: ("Publisher", "Subscriber"),
              ir.ChannelKind.PIPELINE: ("Pusher", "Puller"),
              ir.ChannelKind.SERVICE: ("Client", "Server")}


def _service_views(schema: ir.Schema) -> list[dict[str, Any]]:
    type_names = {d.name for d in _definitions(schema)}
    out = []
    for s in schema.services:
        ns, short = split_name(s.name)
        cls = pascal(short) if short[:1].islower() else short
        if (f"{ns}.{cls}" if ns else cls) in type_names:
            cls += "Service"
        # A nested class may not share its enclosing class's name: `Samples.samples` -> SamplesChannel.
        chan_names = _unique([pascal(c.name) + ("Channel" if pascal(c.name) == cls else "")
                              for c in s.channels], {cls})
        channels = []
        for c, cname in zip(s.channels, chan_names):
            channels.append({
                "ir": c, "cls": ident(cname), "kind": _KIND[c.kind],
                "overflow": _OVERFLOW[c.overflow], "wait": _WAIT[c.wait],
                "streaming": "true" if c.streaming is ir.Streaming.SERVER else "false",
                "endpoints": _ENDPOINTS.get(c.kind, ()),
                "message": qualified(c.message) if c.message else None,
                "request": qualified(c.request) if c.request else None,
                "response": qualified(c.response) if c.response else None,
            })
        out.append({"ir": s, "ns": ns, "cls": ident(cls), "channels": channels,
                    "doc": s.documentation})
    return out


def render(schema: ir.Schema, out_dir: str, ctx: RenderContext) -> dict[str, str]:
    del ctx  # no flatc run: everything comes from the IR
    _check(schema)
    env = environment(LANGUAGE)
    env.filters["csstr"] = csstr
    env.filters["doc"] = xml_doc
    env.filters["hex64"] = lambda v: f"0x{v:016x}UL"
    files: dict[str, str] = {}
    template = env.get_template("types.cs.j2")
    root_identifier = schema.file_identifier or None
    for path in _files_with_types(schema):
        here = [d for group in (schema.enums, schema.unions, schema.structs, schema.tables)
                for d in group if d.declaration_file == path and _emitted(schema, d)]
        views = []
        for d in here:
            if isinstance(d, ir.Enum):
                views.append({"what": "enum", **_enum_view(d)})
            elif isinstance(d, ir.Union):
                views.append({"what": "enum", **_union_view(d)})
            elif isinstance(d, ir.Struct):
                views.append({"what": "struct", **_struct_view(schema, d)})
            else:
                ident_ = (root_identifier if d.name == schema.root_table
                          and path == schema.root_file else None)
                views.append({"what": "table", **_table_view(schema, d, ident_)})
        files[os.path.join(out_dir, types_file(path))] = template.render(
            source=rel_to_root(schema.root_file, path), namespaces=_namespaces(views))
    services = _service_views(schema)
    files[os.path.join(out_dir, endpoint_file(schema))] = env.get_template(
        "endpoints.cs.j2").render(source=rel_to_root(schema.root_file, schema.root_file),
                                  namespaces=_namespaces(services))
    return files
