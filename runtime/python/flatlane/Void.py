"""``flatlane.Void`` (schema/flatlane.fbs): the table with no fields that marks "no data".

In Python the namespace ``flatlane`` is this package, so ``flatlane-gen --lang python`` does not
write flatc's module for the framework schema (it would shadow the runtime); this module offers
the same names flatc 2.0.8 generates for a table, so generated code that imports
``from flatlane.Void import Void`` (a service request or reply without data) works unchanged.
"""

from __future__ import annotations

from typing import Any

import flatbuffers


class Void:
    """Reader of a ``flatlane.Void`` table (it has no fields to read)."""

    __slots__ = ["_tab"]

    @classmethod
    def GetRootAs(cls, buf: Any, offset: int = 0) -> "Void":
        n = flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, offset)
        x = Void()
        x.Init(buf, n + offset)
        return x

    @classmethod
    def GetRootAsVoid(cls, buf: Any, offset: int = 0) -> "Void":
        return cls.GetRootAs(buf, offset)

    def Init(self, buf: Any, pos: int) -> None:
        self._tab = flatbuffers.table.Table(buf, pos)


def VoidStart(builder: flatbuffers.Builder) -> None:
    builder.StartObject(0)


def Start(builder: flatbuffers.Builder) -> None:
    VoidStart(builder)


def VoidEnd(builder: flatbuffers.Builder) -> int:
    return builder.EndObject()


def End(builder: flatbuffers.Builder) -> int:
    return VoidEnd(builder)
