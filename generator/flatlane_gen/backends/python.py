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
import os
import re
import subprocess
import tempfile
from typing import Any, Iterable, Sequence

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
    env = environment(LANGUAGE)
    env.filters["pystr"] = pystr
    env.filters["docstring"] = docstring
    text = env.get_template("endpoints.py.j2").render(
        schema=schema,
        source=rel_to_root(schema.root_file, schema.root_file),
        imports=[{"module": flatc_module(n), "cls": n.split(".")[-1], "alias": a}
                 for n, a in sorted(aliases.items())],
        messages=[{"ir": m, "alias": aliases[m.name]} for m in schema.messages],
        services=[{"ir": s, "cls": service_names[s.name],
                   "channels": [_channel_view(c) for c in s.channels]}
                  for s in schema.services],
    )
    files[os.path.join(out_dir, endpoint_module(schema))] = text
    return files
