"""The front end: .fbs -> flatc -> .bfbs -> validated IR.

flatc is the only schema parser (a hand-written .fbs parser would drift from flatc's grammar and
from the code flatc generates for the same schema). We ask it for a binary schema with builtin
attributes (`streaming`, `required`, ...) and doc comments, and with file names rooted at `/` so
that the include closure comes back as absolute paths (depfiles, error locations).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
import tempfile
from importlib import resources
from typing import Optional, Sequence

from . import bfbs, ir
from .errors import FlatcError, SchemaError
from .lower import fs_path, lower_types
from .typehash import type_hash
from .validate import validate

log = logging.getLogger("flatlane.gen")

FLATC_ENV = "FLATLANE_FLATC"


def framework_include_dir() -> str:
    """Directory holding the packaged copy of flatlane.fbs; appended to every include path."""
    return str(resources.files("flatlane_gen") / "schema")


def find_flatc(flatc: Optional[str] = None) -> str:
    """flatc to use: the argument, then $FLATLANE_FLATC, then PATH."""
    candidate = flatc or os.environ.get(FLATC_ENV) or "flatc"
    found = shutil.which(candidate)
    if found is None:
        raise FlatcError(f"flatc not found ({candidate!r}); install flatbuffers-compiler 2.0.8, "
                         f"or pass --flatc / set {FLATC_ENV}")
    return found


@functools.lru_cache(maxsize=None)
def flatc_version(flatc: str) -> str:
    out = subprocess.run([flatc, "--version"], capture_output=True, text=True, check=False)
    m = re.search(r"(\d+\.\d+\.\d+)", out.stdout + out.stderr)
    return m.group(1) if m else ""


_USAGE_RE = re.compile(r"^Usage: flatc.*?\[-- BINARY_FILE\.\.\.\]\s*$", re.S | re.M)


def _clean_flatc_output(text: str) -> str:
    """flatc prints its whole usage after some errors; keep only the diagnostics."""
    text = _USAGE_RE.sub("", text)
    lines = [ln.rstrip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln.strip() and ln.strip() not in ("flatc:", "error:",
                                                                     "warning:")]
    return "\n".join(ln.strip() for ln in lines)


def compile_bfbs(schema_path: str, include_dirs: Sequence[str] = (),
                 flatc: Optional[str] = None) -> bytes:
    """Run flatc on one schema; return the .bfbs bytes. Raises FlatcError with flatc's text."""
    exe = find_flatc(flatc)
    schema_path = os.path.abspath(schema_path)
    if not os.path.isfile(schema_path):
        raise FlatcError(f"{schema_path}: no such schema file")
    includes = [os.path.abspath(d) for d in include_dirs] + [framework_include_dir()]
    with tempfile.TemporaryDirectory(prefix="flatlane-gen-") as tmp:
        cmd = [exe, "-b", "--schema", "--bfbs-builtins", "--bfbs-comments",
               "--bfbs-filenames", "/"]
        for d in includes:
            cmd += ["-I", d]
        cmd += ["-o", tmp, schema_path]
        log.debug("running %s", " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        diagnostics = _clean_flatc_output(proc.stdout + proc.stderr)
        out = os.path.join(tmp, os.path.splitext(os.path.basename(schema_path))[0] + ".bfbs")
        if proc.returncode != 0 or not os.path.isfile(out):
            raise FlatcError(f"flatc rejected {schema_path}:\n{diagnostics}".rstrip())
        for line in diagnostics.splitlines():
            log.warning("flatc: %s", line)
        with open(out, "rb") as f:
            return f.read()


def build_ir(rschema: bfbs.RSchema, root_file: str, flatc_version_text: str = "") -> ir.Schema:
    """Validate a decoded binary schema and build the IR (raises ValidationError)."""
    services = validate(rschema)
    tables, structs, enums, unions = lower_types(rschema)
    by_name: dict[str, ir.Definition] = {d.name: d for group in (tables, structs, enums, unions)
                                         for d in group}

    names: dict[str, None] = {}
    for s in services:
        for c in s.channels:
            for n in (c.message, c.request, c.response):
                if n is not None:
                    names[n] = None
    messages = []
    for name in sorted(names):
        table = by_name[name]
        assert isinstance(table, ir.Table)
        h, text = type_hash(name, by_name.get)
        # FlatBuffers has one file_identifier per schema, for its root_type only.
        ident = (rschema.file_ident or None) if name == rschema.root_table else None
        messages.append(ir.Message(table=table, type_hash=h, canonical=text,
                                   file_identifier=ident))

    files = tuple(ir.SchemaFile(fs_path(f.filename),
                                tuple(fs_path(i) for i in f.included_filenames))
                  for f in rschema.fbs_files)
    return ir.Schema(
        # flatc reports files by real path (symlinks resolved); match it so paths relate.
        root_file=os.path.realpath(root_file), files=files, tables=tables, structs=structs,
        enums=enums, unions=unions, messages=tuple(messages), services=services,
        root_table=rschema.root_table, file_identifier=rschema.file_ident,
        file_extension=rschema.file_ext, flatc_version=flatc_version_text)


def load(schema_path: str, include_dirs: Sequence[str] = (),
         flatc: Optional[str] = None) -> ir.Schema:
    """The whole front end for one root schema."""
    exe = find_flatc(flatc)
    data = compile_bfbs(schema_path, include_dirs, exe)
    try:
        rschema = bfbs.read(data)
    except bfbs.BfbsError as e:
        raise SchemaError(f"{schema_path}: cannot read flatc's binary schema: {e}") from e
    schema = build_ir(rschema, schema_path, flatc_version(exe))
    log.info("%s: %d file(s), %d message type(s), %d channel(s)", schema_path, len(schema.files),
             len(schema.messages), len(schema.channels))
    return schema
