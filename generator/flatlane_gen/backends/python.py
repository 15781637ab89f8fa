"""Python back end: flatc's Python modules for the whole include closure, plus one
`<schema>_flatlane.py` with message traits, channel specs and typed endpoint classes over
the runtime's `flatlane.typed` module (runtime/python/flatlane/typed.py).

flatc 2.0.8 (`--python`) writes one module per definition, `<namespace as dirs>/<Name>.py`, and an
empty `__init__.py` in every namespace directory; its modules import each other absolutely
(`from common.Pose import Pose`), so the output directory itself is a `sys.path` root, not a
package. The endpoint module sits next to them and imports them the same way.

The namespace `flatlane` is the runtime package in Python: `flatlane.Void`, the only type of
`flatlane.fbs`, ships with it (runtime/python/flatlane/Void.py), so flatc's output for the
framework schema is not written (it would shadow the runtime), and no other schema may declare
types in that namespace.
"""

from __future__ import annotations

import keyword
import math
import os
import re
import struct
import subprocess
import tempfile
from typing import Any, Iterable, Optional, Sequence

from .. import ir
from ..errors import FlatcError, SchemaError
from . import RenderContext, environment, rel_to_root, stem

LANGUAGE = "python"

# The runtime package's name; its namespace holds the framework types only.
RUNTIME_NAMESPACE = "flatlane"
# Framework definitions the runtime package provides as flatc-compatible modules.
RUNTIME_PROVIDED = frozenset({ir.VOID})
# Names the endpoint module defines itself; a service class may not take them.
_MODULE_NAMES = frozenset({"MESSAGES", "CHANNELS", "GENERATOR_VERSION", "SCHEMA", "annotations"})


def ident(name: str) -> str:
    """A Python identifier for a schema name: keywords get a trailing `_`."""
    return name + "_" if keyword.iskeyword(name) else name


def module_stem(schema: ir.Schema) -> str:
    """`robot_cell.fbs` -> `robot_cell_flatlane`; characters a module name cannot hold become `_`
    so that `import robot_cell_flatlane` works for any schema file name."""
    s = re.sub(r"\W", "_", stem(schema.root_file), flags=re.ASCII)
    return ("_" + s if s[:1].isdigit() else s) + "_flatlane"


def endpoint_module(schema: ir.Schema) -> str:
    return module_stem(schema) + ".py"


def flatc_module(name: str) -> str:
    """The module flatc writes a definition into: `robot.Command` -> `robot.Command` (file
    `robot/Command.py`); the class inside has the definition's short name."""
    return name


def _definitions(schema: ir.Schema) -> Iterable[Any]:
    for group in (schema.tables, schema.structs, schema.enums, schema.unions):
        yield from group


def _in_runtime_namespace(name: str) -> bool:
    return name.split(".")[0] == RUNTIME_NAMESPACE


def _check_runtime_namespace(schema: ir.Schema) -> None:
    for d in _definitions(schema):
        if _in_runtime_namespace(d.name) and d.name not in RUNTIME_PROVIDED:
            raise SchemaError(
                f"{rel_to_root(schema.root_file, d.declaration_file)}: {d.name}: the namespace "
                f"'{RUNTIME_NAMESPACE}' is the Flatlane runtime package in Python; declare "
                f"schema types in another namespace")


def _flatc_files(schema: ir.Schema) -> list[str]:
    """Paths (relative to the output directory) of the modules flatc writes for the closure,
    framework files excluded, in a stable order."""
    paths: list[str] = []
    for d in _definitions(schema):
        if _in_runtime_namespace(d.name):
            continue
        parts = d.name.split(".")
        for depth in range(1, len(parts)):
            paths.append(os.path.join(*parts[:depth], "__init__.py"))
        paths.append(os.path.join(*parts) + ".py")
    return sorted(set(paths))


def outputs(schema: ir.Schema, out_dir: str) -> list[str]:
    return [os.path.join(out_dir, p) for p in _flatc_files(schema)] + [
        os.path.join(out_dir, endpoint_module(schema))]


def _runs_flatc(schema: ir.Schema, f: ir.SchemaFile) -> bool:
    # Files that declare only framework types (flatlane.fbs) are provided by the runtime; files
    # that declare nothing (services only) make flatc write nothing, so running it is harmless.
    declared = [d for d in _definitions(schema) if d.declaration_file == f.path]
    return not declared or not all(_in_runtime_namespace(d.name) for d in declared)


def _run_flatc(schema: ir.Schema, ctx: RenderContext) -> dict[str, str]:
    texts: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="flatlane-gen-py-") as tmp:
        for f in schema.files:
            if not _runs_flatc(schema, f):
                continue
            cmd = [ctx.flatc, "--python"]
            for d in ctx.include_dirs:
                cmd += ["-I", d]
            cmd += ["-o", tmp, f.path]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise FlatcError(f"flatc --python failed for {f.path}:\n"
                                 f"{(proc.stdout + proc.stderr).strip()}")
        for dirpath, _, names in os.walk(tmp):
            for n in names:
                full = os.path.join(dirpath, n)
                with open(full, encoding="utf-8") as fh:
                    texts[os.path.relpath(full, tmp)] = fh.read()
    return texts


def _import_aliases(names: Iterable[str]) -> dict[str, str]:
    """A private, collision-free module-level alias per imported class: `robot.Command` ->
    `_robot_Command`."""
    aliases: dict[str, str] = {}
    taken: set[str] = set()
    for n in sorted(set(names)):
        base = "_" + n.replace(".", "_")
        alias, k = base, 2
        while alias in taken:
            alias, k = f"{base}_{k}", k + 1
        taken.add(alias)
        aliases[n] = alias
    return aliases


def _service_names(services: Iterable[ir.Service]) -> dict[str, str]:
    """Class name per service: its short name, or the full name joined with `_` where two
    services of the closure share a short name (or it would shadow a module-level name)."""
    services = list(services)
    short = [ident(s.name.split(".")[-1]) for s in services]
    out: dict[str, str] = {}
    for s, n in zip(services, short):
        if short.count(n) > 1 or n in _MODULE_NAMES:
            n = ident("_".join(s.name.split(".")))
        out[s.name] = n
    return out


def _channel_view(c: ir.Channel) -> dict[str, Any]:
    return {
        "ir": c,
        "ident": ident(c.name),
        "one_way": c.kind in (ir.ChannelKind.TOPIC, ir.ChannelKind.PIPELINE),
        "endpoints": {ir.ChannelKind.TOPIC: ("Publisher", "Subscriber"),
                      ir.ChannelKind.PIPELINE: ("Pusher", "Puller")}.get(c.kind, ()),
        "kind": c.kind.name,
        "overflow": c.overflow.name,
        "wait": c.wait.name,
    }


def pystr(text: str) -> str:
    """A Python string literal (double-quoted, escaped) for any text."""
    return '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'


def docstring(doc: Sequence[str], indent: int, fallback: str) -> str:
    """A docstring from `///` lines (flatc keeps the space after the slashes), or the fallback."""
    lines = [line[1:] if line.startswith(" ") else line for line in doc] or [fallback]
    lines = [line.rstrip().replace("\\", "\\\\").replace('"""', '\\"\\"\\"') for line in lines]
    pad = " " * indent
    if len(lines) == 1:
        # A final quote would merge with the closing ones: close on the next line instead.
        return f'"""{lines[0]}\n{pad}"""' if lines[0].endswith('"') else f'"""{lines[0]}"""'
    body = "\n".join(pad + line if line else "" for line in lines[1:])
    return f'"""{lines[0]}\n{body}\n{pad}"""'


def render(schema: ir.Schema, out_dir: str, ctx: RenderContext) -> dict[str, str]:
    _check_runtime_namespace(schema)
    written = _run_flatc(schema, ctx)
    expected = _flatc_files(schema)
    if sorted(written) != expected:
        # The list of outputs is computed from the IR (--list-outputs needs it without running
        # flatc); a flatc that writes something else must not go unnoticed.
        raise FlatcError(f"flatc --python wrote {sorted(written)}, expected {expected} "
                         f"(is flatc {schema.flatc_version or 'the right version'}?)")
    files = {os.path.join(out_dir, p): t for p, t in written.items()}

    aliases = _import_aliases(m.name for m in schema.messages)
    service_names = _service_names(schema.services)
    fb = builders_view(schema, set(_MODULE_NAMES) | set(service_names.values()))
    env = environment(LANGUAGE)
    env.filters["pystr"] = pystr
    env.filters["docstring"] = docstring
    text = env.get_template("endpoints.py.j2").render(
        schema=schema,
        source=rel_to_root(schema.root_file, schema.root_file),
        imports=[{"module": flatc_module(n), "cls": n.split(".")[-1], "alias": a}
                 for n, a in sorted(aliases.items())],
        messages=[{"ir": m, "alias": aliases[m.name], "builder": fb["builders"].get(m.name),
                   "verifier": fb["verifiers"][m.name]} for m in schema.messages],
        fb=fb,
        services=[{"ir": s, "cls": service_names[s.name],
                   "channels": [_channel_view(c) for c in s.channels]}
                  for s in schema.services],
    )
    files[os.path.join(out_dir, endpoint_module(schema))] = text
    return files


# ---------------------------------------------------------------------------------------------
# Generated builders and verifiers (runtime support: runtime/python/flatlane/_fbgen.py)
#
# Every table gets `build_<Table>(b, <fields>)`, writing the table with one struct.pack_into at a
# layout fixed here (every field has its place; absent ones have vtable slot 0), and a verifier
# `_verify_<alias>(v, pos, depth)` checking each field the way FlatBuffers' C++ Verifier does.

# FlatBuffers scalar -> struct format letter (little-endian, standard sizes).
CODES = {"bool": "?", "byte": "b", "ubyte": "B", "short": "h", "ushort": "H", "int": "i",
         "uint": "I", "long": "q", "ulong": "Q", "float": "f", "double": "d"}
SIZES = {"bool": 1, "byte": 1, "ubyte": 1, "short": 2, "ushort": 2, "int": 4, "uint": 4,
         "long": 8, "ulong": 8, "float": 4, "double": 8}
_SCALAR_KINDS = (ir.TypeKind.SCALAR, ir.TypeKind.ENUM, ir.TypeKind.UNION_TYPE)
# Names a generated builder uses for itself; a field named so gets a trailing `_`.
_BUILDER_LOCALS = frozenset({"b", "h", "buf", "end", "t", "e", "_fb", "_reserve", "_struct", "_NAN", "_INF"})


def _alias(name: str) -> str:
    return name.replace(".", "_")


def _py_default(f: ir.Field) -> str:
    if f.optional or f.type.kind not in _SCALAR_KINDS:
        return "None"
    v = f.default
    if f.type.scalar == "bool":
        return "True" if v else "False"
    if f.type.scalar in ir.FLOAT_SCALARS:
        v = float(v or 0.0)
        if math.isnan(v):
            return "_NAN"
        if math.isinf(v):
            return "_INF" if v > 0 else "-_INF"
        return repr(v)
    return str(int(v or 0))


def _doc_default(f: ir.Field) -> str:
    return {"_NAN": "nan", "_INF": "inf", "-_INF": "-inf"}.get(_py_default(f), _py_default(f))


def _struct_leaves(schema: ir.Schema, s: ir.Struct, base: int, expr: str) -> list[tuple[int, str, str]]:
    """(offset, format letter, value expression) of every scalar inside struct `s` (nested structs
    and arrays flattened), for a value given as a tuple in field order (nested structs as tuples,
    arrays as sequences)."""
    out: list[tuple[int, str, str]] = []
    for i, f in enumerate(s.fields):
        t, off, e = f.type, base + f.offset, f"{expr}[{i}]"
        if t.kind is ir.TypeKind.ARRAY:
            el = t.element
            if el.kind is ir.TypeKind.STRUCT:
                inner = schema.definition(el.name)
                for k in range(t.length):
                    out += _struct_leaves(schema, inner, off + k * inner.bytesize, f"{e}[{k}]")
            else:
                for k in range(t.length):
                    out.append((off + k * SIZES[el.scalar], CODES[el.scalar], f"{e}[{k}]"))
        elif t.kind is ir.TypeKind.STRUCT:
            out += _struct_leaves(schema, schema.definition(t.name), off, e)
        else:
            out.append((off, CODES[t.scalar], e))
    return out


def _format(leaves: list[tuple[int, str, str]], total: int) -> str:
    """A struct format writing every leaf at its offset, zero padding between, `total` bytes."""
    fmt, at = "<", 0
    for off, code, _ in sorted(leaves):
        if off > at:
            fmt += f"{off - at}x"
        fmt += code
        at = off + struct.calcsize("<" + code)
    if total > at:
        fmt += f"{total - at}x"
    assert struct.calcsize(fmt) == total, (fmt, total)
    return fmt


def _struct_view(schema: ir.Schema, s: ir.Struct) -> dict[str, Any]:
    leaves = _struct_leaves(schema, s, 0, "v")
    return {"ir": s, "alias": _alias(s.name), "format": _format(leaves, s.bytesize),
            "args": ", ".join(e for _, _, e in sorted(leaves)), "size": s.bytesize,
            "align": s.minalign,
            "fields": ", ".join(f.name for f in s.fields)}


def _inline(schema: ir.Schema, f: ir.Field) -> tuple[int, int]:
    """Bytes and alignment a field takes inside its table."""
    if f.type.kind in _SCALAR_KINDS:
        n = SIZES[f.type.scalar]
        return n, n
    if f.type.kind is ir.TypeKind.STRUCT:
        s = schema.definition(f.type.name)
        return s.bytesize, s.minalign
    return 4, 4  # uoffset: string, vector, table, union value


def _place(items: list[tuple[ir.Field, int, int]]) -> dict[int, int]:
    """Table offsets per field id: most aligned first, each at the lowest aligned place after the
    vtable offset (bytes 0-3) that overlaps nothing placed before (fills the holes)."""
    taken: list[tuple[int, int]] = [(0, 4)]
    where: dict[int, int] = {}
    for f, size, align in sorted(items, key=lambda x: (-x[2], -x[1], x[0].id)):
        off = 4
        while True:
            off = (off + align - 1) & ~(align - 1)
            clash = [e for s, e in taken if off < e and s < off + size]
            if not clash:
                break
            off = max(clash)
        taken.append((off, off + size))
        where[f.id] = off
    return where


def _vector_elem(schema: ir.Schema, e: ir.TypeRef) -> tuple[int, int]:
    if e.kind in _SCALAR_KINDS:
        n = SIZES[e.scalar]
        return n, n
    if e.kind is ir.TypeKind.STRUCT:
        s = schema.definition(e.name)
        return s.bytesize, s.minalign
    return 4, 4


def _table_build_view(schema: ir.Schema, t: ir.Table, fn: Optional[str], verify_fn: dict[str, str],
                      struct_alias: dict[str, str]) -> dict[str, Any]:
    live = [f for f in t.fields if not f.deprecated]
    count = max((f.id for f in t.fields), default=-1) + 1
    items = [(f, *_inline(schema, f)) for f in live]
    offsets = _place(items)
    tsize = max([offsets[f.id] + size for f, size, _ in items], default=4)
    talign = max([4] + [a for _, _, a in items])
    vsize = 4 + 2 * count
    taken = {"b"} | set(_BUILDER_LOCALS)
    params = {}
    for f in live:
        p = ident(f.name)
        while p in taken:
            p += "_"
        taken.add(p)
        params[f.id] = p
    where = {f.id: f"{t.name}.{f.name}" for f in live}

    prep: list[str] = []          # children first: strings and vectors built from values
    leaves: list[tuple[int, str, str]] = [(0, "i", str(vsize))]  # table bytes: the vtable offset
    post: list[str] = []          # structs, packed after the table
    slots: list[str] = []
    checks: list[dict[str, Any]] = []  # what the verifier checks, per field
    by_id = {f.id: f for f in live}
    for i in range(count):
        f = by_id.get(i)
        if f is None:
            slots.append("0")
            continue
        p, off, k = params[f.id], offsets[f.id], f.type.kind
        size, align = _inline(schema, f)
        w = where[f.id]
        always = (k in _SCALAR_KINDS and not f.optional) or f.required
        slots.append(str(off) if always else f"({off} if {p} is not None else 0)")
        if f.required:
            prep.append(f"if {p} is None:\n        raise ValueError({pystr('flatlane: ' + w + ' is required')})")
        test = "" if f.required else f"if {p} is not None:\n        "
        check = {"slot": i, "off": off, "size": size, "align": align, "where": w,
                 "required": f.required, "kind": k.value, "then": None,
                 "nested": None}
        if k in _SCALAR_KINDS:
            leaves.append((off, CODES[f.type.scalar], p if always else f"(0 if {p} is None else {p})"))
        elif k is ir.TypeKind.STRUCT:
            leaves.append((off, f"{size}x", ""))
            post.append(f"if {p} is not None:\n            _pack_{struct_alias[f.type.name]}(buf, t + {off}, {p})")
        else:
            leaves.append((off, "I", f"end - {p} - t - {off}" if f.required else
                           f"(end - {p} - t - {off} if {p} is not None else 0)"))
            if k is ir.TypeKind.STRING:
                prep.append(f"{test}{p} = _fb.string(b, {p})")
                check["then"] = "string"
            elif k is ir.TypeKind.VECTOR:
                e = f.type.element
                esize, ealign = _vector_elem(schema, e)
                check.update(esize=esize, ealign=ealign)
                if e.kind in _SCALAR_KINDS:
                    prep.append(f"{test}{p} = _fb.vector(b, {p}, "
                                f"{pystr(CODES[e.scalar])}, {esize})")
                    check["then"] = "vector"
                    nested = f.attributes.get("nested_flatbuffer")
                    if nested:
                        ns = t.name.rpartition(".")[0]
                        cand = f"{ns}.{nested}" if ns else nested
                        target = cand if isinstance(schema.definition(cand), ir.Table) else nested
                        if isinstance(schema.definition(target), ir.Table):
                            check["nested"] = verify_fn[target]
                elif e.kind is ir.TypeKind.STRUCT:
                    prep.append(f"{test}{p} = _fb.struct_vector(b, {p}, {esize}, "
                                f"{ealign}, _pack_{struct_alias[e.name]})")
                    check["then"] = "vector"
                elif e.kind is ir.TypeKind.STRING:
                    prep.append(f"{test}{p} = _fb.string_vector(b, {p})")
                    check["then"] = "strings"
                elif e.kind is ir.TypeKind.TABLE:
                    prep.append(f"{test}{p} = _fb.offset_vector(b, {p})")
                    check["then"] = "tables"
                    check["verify"] = verify_fn[e.name]
                else:  # vectors of unions: offsets only, verified as a vector of offsets
                    check["then"] = "vector"
            elif k is ir.TypeKind.TABLE:
                check["then"] = "table"
                check["verify"] = verify_fn[f.type.name]
            elif k is ir.TypeKind.UNION:
                u = schema.definition(f.type.name)
                type_field = next(x for x in t.fields if x.id == f.id - 1)
                check["then"] = "union"
                check["type_slot"] = type_field.id
                members = []
                for m in u.members:
                    if m.type is None:
                        continue
                    if m.type.kind is ir.TypeKind.TABLE:
                        members.append({"value": m.value, "kind": "table", "verify": verify_fn[m.type.name]})
                    elif m.type.kind is ir.TypeKind.STRUCT:
                        s = schema.definition(m.type.name)
                        members.append({"value": m.value, "kind": "struct", "size": s.bytesize})
                    else:
                        members.append({"value": m.value, "kind": "string"})
                check["members"] = members
        checks.append(check)
    fmt = "<HH" + "H" * count
    table_fmt, at = "", 0
    args = [str(vsize), str(tsize)] + slots
    for off, code, e in sorted(leaves, key=lambda x: x[0]):
        if off > at:
            table_fmt += f"{off - at}x"
        table_fmt += code
        at = off + struct.calcsize("<" + code)
        if e:
            args.append(e)
    if tsize > at:
        table_fmt += f"{tsize - at}x"
    fmt += table_fmt
    assert struct.calcsize(fmt) == vsize + tsize, (t.name, fmt)
    fields = [{"name": params[f.id], "default": _py_default(f), "ir": f,
               "doc": _value_doc(schema, f)} for f in live]
    return {"ir": t, "fn": fn, "alias": _alias(t.name), "verify": verify_fn[t.name],
            "format": fmt, "args": args, "prep": prep, "post": post, "count": count,
            "vsize": vsize, "tsize": tsize, "size": vsize + tsize, "align": talign,
            "fields": fields, "checks": checks}


def _value_doc(schema: ir.Schema, f: ir.Field) -> str:
    """What a builder's parameter takes, for its docstring."""
    t = f.type
    if t.kind is ir.TypeKind.SCALAR:
        return t.scalar + (" or None (absent)" if f.optional else f" (default {_doc_default(f)})")
    if t.kind is ir.TypeKind.ENUM:
        return f"{t.name} ({t.scalar})" + (" or None (absent)" if f.optional else f" (default {_doc_default(f)})")
    if t.kind is ir.TypeKind.UNION_TYPE:
        return f"{t.name} member number (ubyte)"
    if t.kind is ir.TypeKind.STRUCT:
        s = schema.definition(t.name)
        return f"{t.name} as a tuple ({', '.join(x.name for x in s.fields)})"
    if t.kind is ir.TypeKind.STRING:
        return "str (UTF-8) or bytes"
    if t.kind is ir.TypeKind.TABLE:
        return f"offset of a {t.name} built before (build_... returns it)"
    if t.kind is ir.TypeKind.UNION:
        return f"offset of the {t.name} member built before"
    e = t.element
    if e.kind in _SCALAR_KINDS:
        return f"[{e.scalar}]: a buffer of that element type (bytes, NumPy array: copied as it is) or a sequence"
    if e.kind is ir.TypeKind.STRUCT:
        return f"[{e.name}]: a sequence of tuples, or a buffer of packed structs"
    if e.kind is ir.TypeKind.STRING:
        return "[string]: a sequence of str or bytes"
    if e.kind is ir.TypeKind.TABLE:
        return f"[{e.name}]: a sequence of offsets of tables built before"
    return "offset of a vector built before"


def _builder_names(schema: ir.Schema, reserved: set[str]) -> dict[str, str]:
    """`build_<Table>` per table of the closure, or `build_<ns>_<Table>` where two tables share a
    short name."""
    tables = [t for t in schema.tables if not _in_runtime_namespace(t.name)]
    short = [t.name.rpartition(".")[2] for t in tables]
    out = {}
    for t, s in zip(tables, short):
        n = "build_" + (s if short.count(s) == 1 else _alias(t.name))
        while n in reserved:
            n += "_"
        out[t.name] = n
    return out


def builders_view(schema: ir.Schema, reserved: set[str]) -> dict[str, Any]:
    """Structs' pack functions, and per table its builder (none for the runtime's own types) and
    verifier."""
    names = _builder_names(schema, reserved)
    verify_fn = {t.name: "_verify_" + _alias(t.name) for t in schema.tables}
    struct_alias = {s.name: _alias(s.name) for s in schema.structs}
    return {
        "structs": [_struct_view(schema, s) for s in schema.structs],
        "tables": [_table_build_view(schema, t, names.get(t.name), verify_fn, struct_alias)
                   for t in schema.tables],
        "builders": names,
        "verifiers": verify_fn,
    }
