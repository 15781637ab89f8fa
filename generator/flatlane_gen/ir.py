"""Flatlane's intermediate representation: what the language templates will consume.

Everything here is a frozen dataclass built from flatc's reflection output (never from .fbs
text) and already validated. Names are fully qualified with dots, as flatc reports them
(`robot.Command`). Paths are absolute inside Python; the JSON form (`to_json`) writes them
relative to the root schema's directory so that dumps do not depend on the checkout location.
"""

from __future__ import annotations

import enum
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union as TUnion

IR_VERSION = 1

# FlatBuffers scalar type names, in reflection BaseType order (Bool .. Double).
SCALARS: tuple[str, ...] = (
    "bool", "byte", "ubyte", "short", "ushort", "int", "uint", "long", "ulong", "float", "double")
FLOAT_SCALARS = frozenset({"float", "double"})

# The marker table declared in schema/flatlane.fbs: "this channel has no reply".
VOID = "flatlane.Void"


class TypeKind(str, enum.Enum):
    SCALAR = "scalar"
    STRING = "string"
    ENUM = "enum"            # a scalar field typed with an enum: `scalar` is the underlying type
    STRUCT = "struct"
    TABLE = "table"
    UNION = "union"          # the value half of a union field (`u`)
    UNION_TYPE = "union_type"  # the discriminator half (`u_type`), a ubyte
    VECTOR = "vector"
    ARRAY = "array"          # fixed-length array, structs only


@dataclass(frozen=True)
class TypeRef:
    kind: TypeKind
    scalar: Optional[str] = None      # SCALAR, ENUM, UNION_TYPE
    name: Optional[str] = None        # ENUM, STRUCT, TABLE, UNION, UNION_TYPE: the definition
    element: Optional["TypeRef"] = None  # VECTOR, ARRAY
    length: int = 0                   # ARRAY

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value}
        if self.scalar is not None:
            out["scalar"] = self.scalar
        if self.name is not None:
            out["name"] = self.name
        if self.element is not None:
            out["element"] = self.element.to_json()
        if self.kind is TypeKind.ARRAY:
            out["length"] = self.length
        return out


Default = TUnion[int, float, None]


@dataclass(frozen=True)
class Field:
    name: str
    id: int
    type: TypeRef
    offset: int  # vtable slot for tables, byte offset for structs
    # Scalar table fields only: the default value (int for integers, bools and enums, float for
    # float/double); None for optional scalars (`= null`) and for every non-scalar field.
    default: Default = None
    optional: bool = False
    required: bool = False
    deprecated: bool = False
    key: bool = False
    attributes: Mapping[str, str] = field(default_factory=dict)
    documentation: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "id": self.id, "type": self.type.to_json(), "offset": self.offset,
            "default": _json_number(self.default), "optional": self.optional,
            "required": self.required, "deprecated": self.deprecated, "key": self.key,
            "attributes": dict(sorted(self.attributes.items())),
            "documentation": list(self.documentation),
        }


@dataclass(frozen=True)
class Table:
    name: str
    fields: tuple[Field, ...]  # sorted by id (declaration order)
    declaration_file: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)
    documentation: tuple[str, ...] = ()


@dataclass(frozen=True)
class Struct:
    name: str
    fields: tuple[Field, ...]  # sorted by id
    bytesize: int
    minalign: int
    declaration_file: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)
    documentation: tuple[str, ...] = ()


@dataclass(frozen=True)
class EnumValue:
    name: str
    value: int
    documentation: tuple[str, ...] = ()


@dataclass(frozen=True)
class Enum:
    name: str
    underlying: str  # a SCALARS integer name
    values: tuple[EnumValue, ...]  # sorted by value
    bit_flags: bool = False
    declaration_file: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)
    documentation: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnionMember:
    name: str
    value: int
    type: Optional[TypeRef]  # None for NONE (value 0)
    documentation: tuple[str, ...] = ()


@dataclass(frozen=True)
class Union:
    name: str
    members: tuple[UnionMember, ...]  # sorted by value, NONE first
    declaration_file: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)
    documentation: tuple[str, ...] = ()


Definition = TUnion[Table, Struct, Enum, Union]


@dataclass(frozen=True)
class Message:
    """A table that travels on a channel (or is the schema's root_type)."""

    table: Table
    type_hash: int        # 64-bit FNV-1a of `canonical` (docs/SCHEMA.md, "Type hash")
    canonical: str        # the canonical text the hash is computed over
    file_identifier: Optional[str] = None  # the schema's file_identifier if this is root_type

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def type_name(self) -> str:
        """What endpoints write into the segment header's `type_name` (PROTOCOL.md §3.5)."""
        return self.table.name

    @property
    def type_hash_hex(self) -> str:
        return f"0x{self.type_hash:016x}"


class ChannelKind(str, enum.Enum):
    TOPIC = "topic"        # publish/subscribe of one message type
    SERVICE = "service"    # request/reply, optionally a stream of replies
    PIPELINE = "pipeline"  # push/pull work distribution of one message type
    DUPLEX = "duplex"      # request modified in place and handed back


class Streaming(str, enum.Enum):
    NONE = "none"
    SERVER = "server"


class Overflow(str, enum.Enum):
    DROP_OLDEST = "drop_oldest"
    BLOCK = "block"
    FAIL = "fail"


class Wait(str, enum.Enum):
    BUSY_SPIN = "busy_spin"
    SPIN_THEN_SLEEP = "spin_then_sleep"
    BLOCKING = "blocking"


@dataclass(frozen=True)
class Channel:
    kind: ChannelKind
    service: str          # fully qualified rpc_service name
    name: str             # the method name
    # topic/pipeline: `message` is set, request/response are None.
    # service: request and response are set. duplex: request == response, message is None.
    message: Optional[str]
    request: Optional[str]
    response: Optional[str]
    streaming: Streaming
    max_message: int      # bytes; largest message a receiver accepts
    ring_capacity: int    # bytes; power of two, each ring of the channel
    chunk_size: int       # bytes incl. the 16-byte chunk header; 0 = runtime default
    overflow: Overflow
    wait: Wait
    declaration_file: str = ""
    documentation: tuple[str, ...] = ()

    @property
    def qualified_name(self) -> str:
        return f"{self.service}.{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value, "name": self.name, "qualified_name": self.qualified_name,
            "message": self.message, "request": self.request, "response": self.response,
            "streaming": self.streaming.value, "max_message": self.max_message,
            "ring_capacity": self.ring_capacity, "chunk_size": self.chunk_size,
            "overflow": self.overflow.value, "wait": self.wait.value,
            "documentation": list(self.documentation),
        }


@dataclass(frozen=True)
class Service:
    """One rpc_service: a group of channels sharing a pattern."""

    name: str
    pattern: ChannelKind
    channels: tuple[Channel, ...]  # declaration order of the methods
    declaration_file: str = ""
    documentation: tuple[str, ...] = ()


@dataclass(frozen=True)
class SchemaFile:
    path: str                     # absolute
    includes: tuple[str, ...] = ()  # absolute


@dataclass(frozen=True)
class Schema:
    """The IR of one root .fbs and its include closure."""

    root_file: str
    files: tuple[SchemaFile, ...]
    tables: tuple[Table, ...]
    structs: tuple[Struct, ...]
    enums: tuple[Enum, ...]
    unions: tuple[Union, ...]
    messages: tuple[Message, ...]
    services: tuple[Service, ...]
    root_table: Optional[str] = None
    file_identifier: str = ""
    file_extension: str = ""
    flatc_version: str = ""

    @property
    def channels(self) -> tuple[Channel, ...]:
        return tuple(c for s in self.services for c in s.channels)

    def definition(self, name: str) -> Optional[Definition]:
        for group in (self.tables, self.structs, self.enums, self.unions):
            for d in group:
                if d.name == name:
                    return d
        return None

    def message(self, name: str) -> Message:
        for m in self.messages:
            if m.name == name:
                return m
        raise KeyError(name)

    def service(self, name: str) -> Service:
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict. Stable: sorted keys are not needed, order is fixed here."""
        base = os.path.dirname(self.root_file)

        def rel(p: str) -> str:
            return os.path.relpath(p, base) if p else ""

        def common(d: Any) -> dict[str, Any]:
            return {"name": d.name, "declaration_file": rel(d.declaration_file),
                    "attributes": dict(sorted(d.attributes.items())),
                    "documentation": list(d.documentation)}

        return {
            "flatlane_ir_version": IR_VERSION,
            "flatc_version": self.flatc_version,
            "root_file": os.path.basename(self.root_file),
            "files": [{"path": rel(f.path), "includes": [rel(i) for i in f.includes]}
                      for f in self.files],
            "file_identifier": self.file_identifier,
            "file_extension": self.file_extension,
            "root_table": self.root_table,
            "tables": [{**common(t), "fields": [f.to_json() for f in t.fields]}
                       for t in self.tables],
            "structs": [{**common(s), "bytesize": s.bytesize, "minalign": s.minalign,
                         "fields": [f.to_json() for f in s.fields]} for s in self.structs],
            "enums": [{**common(e), "underlying": e.underlying, "bit_flags": e.bit_flags,
                       "values": [{"name": v.name, "value": v.value,
                                   "documentation": list(v.documentation)} for v in e.values]}
                      for e in self.enums],
            "unions": [{**common(u), "members": [
                {"name": m.name, "value": m.value,
                 "type": None if m.type is None else m.type.to_json(),
                 "documentation": list(m.documentation)} for m in u.members]}
                for u in self.unions],
            "messages": [{"name": m.name, "type_name": m.type_name,
                          "type_hash": m.type_hash_hex, "file_identifier": m.file_identifier,
                          "canonical": m.canonical} for m in self.messages],
            "services": [{"name": s.name, "pattern": s.pattern.value,
                          "declaration_file": rel(s.declaration_file),
                          "documentation": list(s.documentation),
                          "channels": [c.to_json() for c in s.channels]}
                         for s in self.services],
        }


def _json_number(v: Default) -> Any:
    # JSON has no inf/nan; spell them as strings so the dump stays strict JSON.
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v
