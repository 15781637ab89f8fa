"""Language back ends. Each one turns the validated IR of one root schema into files.

A back end is a module with
    LANGUAGE: str
    outputs(schema, out_dir) -> list[str]         # every file it writes, computed from the IR
    render(schema, out_dir, ctx) -> dict[str, str]  # path -> content
Templates (one folder per language under `templates/`) only ever see the IR.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

from jinja2 import Environment, PackageLoader, StrictUndefined

from .. import __version__


@dataclass(frozen=True)
class RenderContext:
    """What a back end may need beyond the IR: how to run flatc for the closure."""

    flatc: str
    include_dirs: Sequence[str] = field(default_factory=tuple)  # absolute, framework dir last


def environment(language: str) -> Environment:
    env = Environment(loader=PackageLoader("flatlane_gen", f"templates/{language}"),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True, autoescape=False)
    env.globals["generator_version"] = __version__
    env.filters["bytes"] = human_bytes
    return env


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} B"


def stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def rel_to_root(schema_root: str, path: str) -> str:
    """Paths in generated text are relative to the root schema's directory: output must not
    depend on where the checkout lives."""
    return os.path.relpath(path, os.path.dirname(schema_root))


def get(language: str):  # -> module
    if language == "cpp":
        from . import cpp
        return cpp
    if language == "python":
        from . import python
        return python
    if language == "csharp":
        from . import csharp
        return csharp
    return None


def first_line(doc: Sequence[str]) -> Optional[str]:
    return doc[0].strip() if doc else None
