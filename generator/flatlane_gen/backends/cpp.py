"""C++ back end: flatc's message headers for the whole include closure, plus one
`<schema>.flatlane.hpp` with message traits and channel structs for Flatlane's typed endpoints
(runtime/cpp/include/flatlane/typed/)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import Any

from .. import ir
from ..errors import FlatcError, SchemaError
from . import RenderContext, environment, rel_to_root, stem

LANGUAGE = "cpp"

# C++ keywords a schema method could be named after; such names get a trailing underscore.
_KEYWORDS = frozenset("""
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
char32_t class compl concept const consteval constexpr constinit const_cast continue co_await
co_return co_yield decltype default delete do double dynamic_cast else enum explicit export extern
false float for friend goto if inline int long mutable namespace new noexcept not not_eq nullptr
operator or or_eq private protected public register reinterpret_cast requires return short signed
sizeof static static_assert static_cast struct switch template this thread_local throw true try
typedef typeid typename union unsigned using virtual void volatile wchar_t while xor xor_eq
""".split())


def ident(name: str) -> str:
    return name + "_" if name in _KEYWORDS else name


def qualified(name: str) -> str:
    """`robot.Command` -> `::robot::Command` (flatc's C++ naming of a definition)."""
    return "::" + "::".join(ident(p) for p in name.split("."))


def namespace_of(name: str) -> str:
    """`robot.ArmTopics` -> `robot::ArmTopics`: each rpc_service becomes a namespace."""
    return "::".join(ident(p) for p in name.split("."))


def traits_guard(m: ir.Message) -> str:
    # The hash is part of the guard: two headers generated from different versions of a type
    # in one translation unit must not silently share one definition (they fail to compile).
    return f"FLATLANE_TRAITS_{m.name.replace('.', '_')}_{m.type_hash:016x}"


def flatc_header(fbs_path: str) -> str:
    return stem(fbs_path) + "_generated.h"


def endpoint_header(schema: ir.Schema) -> str:
    return stem(schema.root_file) + ".flatlane.hpp"


def outputs(schema: ir.Schema, out_dir: str) -> list[str]:
    names = [flatc_header(f.path) for f in schema.files] + [endpoint_header(schema)]
    return [os.path.join(out_dir, n) for n in names]


def _check_unique_stems(schema: ir.Schema) -> None:
    seen: dict[str, str] = {}
    for f in schema.files:
        other = seen.setdefault(flatc_header(f.path), f.path)
        if other != f.path:
            raise SchemaError(f"{schema.root_file}: {other} and {f.path} would both generate "
                              f"{flatc_header(f.path)}; rename one of them")


def _run_flatc(schema: ir.Schema, ctx: RenderContext) -> dict[str, str]:
    texts: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="flatlane-gen-cpp-") as tmp:
        for f in schema.files:
            cmd = [ctx.flatc, "--cpp", "--gen-mutable"]  # mutable views for in-place duplex servers
            for d in ctx.include_dirs:
                cmd += ["-I", d]
            cmd += ["-o", tmp, f.path]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            out = os.path.join(tmp, flatc_header(f.path))
            if proc.returncode != 0 or not os.path.isfile(out):
                raise FlatcError(f"flatc --cpp failed for {f.path}:\n"
                                 f"{(proc.stdout + proc.stderr).strip()}")
            with open(out, encoding="utf-8") as fh:
                texts[flatc_header(f.path)] = fh.read()
    return texts


def _channel_view(c: ir.Channel) -> dict[str, Any]:
    one_way = c.kind in (ir.ChannelKind.TOPIC, ir.ChannelKind.PIPELINE)
    return {
        "ir": c,
        "ident": ident(c.name),
        "one_way": one_way,
        "message": qualified(c.message) if c.message else None,
        "request": qualified(c.request) if c.request else None,
        "response": qualified(c.response) if c.response else None,
        "endpoints": {ir.ChannelKind.TOPIC: ("Publisher", "Subscriber"),
                      ir.ChannelKind.PIPELINE: ("Pusher", "Puller")}.get(c.kind, ()),
    }


def render(schema: ir.Schema, out_dir: str, ctx: RenderContext) -> dict[str, str]:
    _check_unique_stems(schema)
    files = {os.path.join(out_dir, n): t for n, t in _run_flatc(schema, ctx).items()}
    env = environment(LANGUAGE)
    text = env.get_template("endpoints.hpp.j2").render(
        schema=schema,
        source=rel_to_root(schema.root_file, schema.root_file),
        flatc_header=flatc_header(schema.root_file),
        messages=[{"ir": m, "cpp": qualified(m.name), "guard": traits_guard(m)}
                  for m in schema.messages],
        services=[{"ir": s, "namespace": namespace_of(s.name),
                   "channels": [_channel_view(c) for c in s.channels]}
                  for s in schema.services],
    )
    files[os.path.join(out_dir, endpoint_header(schema))] = text
    return files
