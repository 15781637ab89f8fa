"""User-facing errors. The CLI turns every SchemaError into exit code 1 and its text on stderr."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable, Optional


def display_path(path: str, start: Optional[str] = None) -> str:
    """A path as users want to read it: relative to the working directory when below it."""
    if not path:
        return "<unknown file>"
    start = os.getcwd() if start is None else start
    try:
        rel = os.path.relpath(path, start)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


@dataclass(frozen=True)
class Diagnostic:
    file: str     # absolute path of the .fbs declaring the element ("" if unknown)
    element: str  # e.g. "rpc_service robot.Control, method SetMode"
    message: str

    def format(self, path: Callable[[str], str] = display_path) -> str:
        return f"{path(self.file)}: {self.element}: {self.message}"


class SchemaError(Exception):
    """The schema cannot be turned into Flatlane IR (flatc failed or validation failed)."""


class FlatcError(SchemaError):
    """flatc is missing or rejected the schema; the text is flatc's own diagnostics."""


class ValidationError(SchemaError):
    """One or more Flatlane rules are broken. Carries every diagnostic, not just the first."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__(self.format())

    def format(self, path: Callable[[str], str] = display_path) -> str:
        n = len(self.diagnostics)
        head = f"{n} error{'s' if n != 1 else ''} in Flatlane schema:"
        return "\n".join([head] + [f"  {d.format(path)}" for d in self.diagnostics])


class Collector:
    """Collects diagnostics (deduplicated, in report order) so that users see all at once."""

    def __init__(self) -> None:
        self._items: dict[Diagnostic, None] = {}

    def error(self, file: str, element: str, message: str) -> None:
        self._items.setdefault(Diagnostic(file, element, message))

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        return tuple(self._items)

    def raise_if_any(self) -> None:
        if self._items:
            raise ValidationError(self._items)
