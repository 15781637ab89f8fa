"""A small reader of FlatBuffers binary schemas (.bfbs), the output of `flatc -b --schema`.

Why this exists: flatc is Flatlane's only schema parser, and it hands us the parsed schema as a
FlatBuffer of the reflection schema (reflection.fbs). Debian's python3-flatbuffers 2.0.8 ships no
`flatbuffers.reflection` module and no distribution ships reflection.fbs, so we read the
reflection tables ourselves with the runtime's `Table` helper.

The result is a plain, fully decoded model (frozen dataclasses) that mirrors reflection.fbs
one to one; turning it into Flatlane's IR is `lower.py`'s and `validate.py`'s job.

Field ids below are those of reflection.fbs as of FlatBuffers 2.0.8. The vtable slot of field id
`n` is `4 + 2 * n`; the tests check every slot against the `VT_*` constants of the installed
/usr/include/flatbuffers/reflection_generated.h.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Mapping, Optional, TypeVar

from flatbuffers import number_types as N
from flatbuffers.table import Table

BFBS_IDENTIFIER = b"BFBS"

T = TypeVar("T")


class BfbsError(Exception):
    """The bytes are not a readable binary schema."""


class BaseType(enum.IntEnum):
    """reflection.BaseType (values are part of the .bfbs format)."""

    NONE = 0
    UTYPE = 1
    BOOL = 2
    BYTE = 3
    UBYTE = 4
    SHORT = 5
    USHORT = 6
    INT = 7
    UINT = 8
    LONG = 9
    ULONG = 10
    FLOAT = 11
    DOUBLE = 12
    STRING = 13
    VECTOR = 14
    OBJ = 15
    UNION = 16
    ARRAY = 17


# Field ids of the reflection tables (reflection.fbs declaration order, no explicit ids there).
class TypeF:
    BASE_TYPE, ELEMENT, INDEX, FIXED_LENGTH, BASE_SIZE, ELEMENT_SIZE = range(6)


class KeyValueF:
    KEY, VALUE = range(2)


class EnumValF:
    # id 2 is the deprecated `object:Object`.
    NAME, VALUE, OBJECT_DEPRECATED, UNION_TYPE, DOCUMENTATION = range(5)


class EnumF:
    NAME, VALUES, IS_UNION, UNDERLYING_TYPE, ATTRIBUTES, DOCUMENTATION, DECLARATION_FILE = range(7)


class FieldF:
    (NAME, TYPE, ID, OFFSET, DEFAULT_INTEGER, DEFAULT_REAL, DEPRECATED, REQUIRED, KEY, ATTRIBUTES,
     DOCUMENTATION, OPTIONAL, PADDING) = range(13)


class ObjectF:
    (NAME, FIELDS, IS_STRUCT, MINALIGN, BYTESIZE, ATTRIBUTES, DOCUMENTATION,
     DECLARATION_FILE) = range(8)


class RPCCallF:
    NAME, REQUEST, RESPONSE, ATTRIBUTES, DOCUMENTATION = range(5)


class ServiceF:
    NAME, CALLS, ATTRIBUTES, DOCUMENTATION, DECLARATION_FILE = range(5)


class SchemaFileF:
    FILENAME, INCLUDED_FILENAMES = range(2)


class SchemaF:
    (OBJECTS, ENUMS, FILE_IDENT, FILE_EXT, ROOT_TABLE, SERVICES, ADVANCED_FEATURES,
     FBS_FILES) = range(8)


def vtable_slot(field_id: int) -> int:
    """Byte offset of a field's entry in a vtable (two u16 header entries come first)."""
    return 4 + 2 * field_id


# ---------------------------------------------------------------------------------------------
# Decoded model. Attribute maps keep flatc's strings as they are (a valueless attribute is "0").


@dataclass(frozen=True)
class RType:
    base_type: BaseType
    element: BaseType = BaseType.NONE
    index: int = -1
    fixed_length: int = 0
    base_size: int = 4
    element_size: int = 0


@dataclass(frozen=True)
class REnumVal:
    name: str
    value: int
    union_type: Optional[RType]
    documentation: tuple[str, ...] = ()


@dataclass(frozen=True)
class REnum:
    name: str
    values: tuple[REnumVal, ...]
    is_union: bool
    underlying_type: RType
    attributes: Mapping[str, str] = field(default_factory=dict)
    documentation: tuple[str, ...] = ()
    declaration_file: str = ""


@dataclass(frozen=True)
class RField:
    name: str
    type: RType
    id: int
    offset: int
    default_integer: int = 0
    default_real: float = 0.0
    deprecated: bool = False
    required: bool = False
    key: bool = False
    attributes: Mapping[str, str] = field(default_factory=dict)
    documentation: tuple[str, ...] = ()
    optional: bool = False
    padding: int = 0


@dataclass(frozen=True)
class RObject:
    name: str
    fields: tuple[RField, ...]
    is_struct: bool
    minalign: int
    bytesize: int
    attributes: Mapping[str, str] = field(default_factory=dict)
    documentation: tuple[str, ...] = ()
    declaration_file: str = ""


@dataclass(frozen=True)
class RRPCCall:
    name: str
    request: str  # fully qualified object name (the .bfbs embeds the Object table itself)
    response: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    documentation: tuple[str, ...] = ()


@dataclass(frozen=True)
class RService:
    name: str
    calls: tuple[RRPCCall, ...]
    attributes: Mapping[str, str] = field(default_factory=dict)
    documentation: tuple[str, ...] = ()
    declaration_file: str = ""


@dataclass(frozen=True)
class RSchemaFile:
    filename: str
    included_filenames: tuple[str, ...] = ()


@dataclass(frozen=True)
class RSchema:
    objects: tuple[RObject, ...]
    enums: tuple[REnum, ...]
    file_ident: str = ""
    file_ext: str = ""
    root_table: Optional[str] = None
    services: tuple[RService, ...] = ()
    advanced_features: int = 0
    fbs_files: tuple[RSchemaFile, ...] = ()

    def object_named(self, name: str) -> Optional[RObject]:
        return next((o for o in self.objects if o.name == name), None)


# ---------------------------------------------------------------------------------------------
# Low-level access on top of flatbuffers.table.Table.


class _Tab:
    """A reflection table at `pos` in `buf`, addressed by field id."""

    __slots__ = ("_t",)

    def __init__(self, buf: bytes, pos: int) -> None:
        self._t = Table(buf, pos)

    def _off(self, fid: int) -> int:
        return self._t.Offset(vtable_slot(fid))

    def scalar(self, fid: int, flags: type, default: T) -> T:
        o = self._off(fid)
        return self._t.Get(flags, self._t.Pos + o) if o else default  # type: ignore[no-any-return]

    def boolean(self, fid: int) -> bool:
        return bool(self.scalar(fid, N.BoolFlags, False))

    def string(self, fid: int) -> Optional[str]:
        o = self._off(fid)
        return self._t.String(self._t.Pos + o).decode("utf-8") if o else None

    def table(self, fid: int) -> Optional["_Tab"]:
        o = self._off(fid)
        if not o:
            return None
        return _Tab(self._t.Bytes, self._t.Indirect(self._t.Pos + o))

    def _vector(self, fid: int) -> tuple[int, int]:
        o = self._off(fid)
        if not o:
            return 0, 0
        return self._t.Vector(o), self._t.VectorLen(o)

    def tables(self, fid: int) -> list["_Tab"]:
        start, n = self._vector(fid)
        return [_Tab(self._t.Bytes, self._t.Indirect(start + 4 * i)) for i in range(n)]

    def strings(self, fid: int) -> tuple[str, ...]:
        start, n = self._vector(fid)
        return tuple(self._t.String(start + 4 * i).decode("utf-8") for i in range(n))


def _required(value: Optional[T], what: str) -> T:
    if value is None:
        raise BfbsError(f"required field missing: {what}")
    return value


def _attributes(t: _Tab, fid: int) -> dict[str, str]:
    out: dict[str, str] = {}
    for kv in t.tables(fid):
        out[_required(kv.string(KeyValueF.KEY), "KeyValue.key")] = kv.string(KeyValueF.VALUE) or ""
    return out


def _type(t: Optional[_Tab]) -> Optional[RType]:
    if t is None:
        return None
    return RType(
        base_type=BaseType(t.scalar(TypeF.BASE_TYPE, N.Int8Flags, 0)),
        element=BaseType(t.scalar(TypeF.ELEMENT, N.Int8Flags, 0)),
        index=t.scalar(TypeF.INDEX, N.Int32Flags, -1),
        fixed_length=t.scalar(TypeF.FIXED_LENGTH, N.Uint16Flags, 0),
        base_size=t.scalar(TypeF.BASE_SIZE, N.Uint32Flags, 4),
        element_size=t.scalar(TypeF.ELEMENT_SIZE, N.Uint32Flags, 0),
    )


def _field(t: _Tab) -> RField:
    name = _required(t.string(FieldF.NAME), "Field.name")
    return RField(
        name=name,
        type=_required(_type(t.table(FieldF.TYPE)), f"Field.type of {name}"),
        id=t.scalar(FieldF.ID, N.Uint16Flags, 0),
        offset=t.scalar(FieldF.OFFSET, N.Uint16Flags, 0),
        default_integer=t.scalar(FieldF.DEFAULT_INTEGER, N.Int64Flags, 0),
        default_real=t.scalar(FieldF.DEFAULT_REAL, N.Float64Flags, 0.0),
        deprecated=t.boolean(FieldF.DEPRECATED),
        required=t.boolean(FieldF.REQUIRED),
        key=t.boolean(FieldF.KEY),
        attributes=_attributes(t, FieldF.ATTRIBUTES),
        documentation=t.strings(FieldF.DOCUMENTATION),
        optional=t.boolean(FieldF.OPTIONAL),
        padding=t.scalar(FieldF.PADDING, N.Uint16Flags, 0),
    )


def _object(t: _Tab) -> RObject:
    return RObject(
        name=_required(t.string(ObjectF.NAME), "Object.name"),
        fields=tuple(_field(f) for f in t.tables(ObjectF.FIELDS)),
        is_struct=t.boolean(ObjectF.IS_STRUCT),
        minalign=t.scalar(ObjectF.MINALIGN, N.Int32Flags, 0),
        bytesize=t.scalar(ObjectF.BYTESIZE, N.Int32Flags, 0),
        attributes=_attributes(t, ObjectF.ATTRIBUTES),
        documentation=t.strings(ObjectF.DOCUMENTATION),
        declaration_file=t.string(ObjectF.DECLARATION_FILE) or "",
    )


def _enum_val(t: _Tab) -> REnumVal:
    return REnumVal(
        name=_required(t.string(EnumValF.NAME), "EnumVal.name"),
        value=t.scalar(EnumValF.VALUE, N.Int64Flags, 0),
        union_type=_type(t.table(EnumValF.UNION_TYPE)),
        documentation=t.strings(EnumValF.DOCUMENTATION),
    )


def _enum(t: _Tab) -> REnum:
    name = _required(t.string(EnumF.NAME), "Enum.name")
    return REnum(
        name=name,
        values=tuple(_enum_val(v) for v in t.tables(EnumF.VALUES)),
        is_union=t.boolean(EnumF.IS_UNION),
        underlying_type=_required(_type(t.table(EnumF.UNDERLYING_TYPE)),
                                  f"Enum.underlying_type of {name}"),
        attributes=_attributes(t, EnumF.ATTRIBUTES),
        documentation=t.strings(EnumF.DOCUMENTATION),
        declaration_file=t.string(EnumF.DECLARATION_FILE) or "",
    )


def _object_name(t: Optional[_Tab], what: str) -> str:
    return _required(_required(t, what).string(ObjectF.NAME), f"{what}.name")


def _call(t: _Tab) -> RRPCCall:
    name = _required(t.string(RPCCallF.NAME), "RPCCall.name")
    return RRPCCall(
        name=name,
        request=_object_name(t.table(RPCCallF.REQUEST), f"RPCCall.request of {name}"),
        response=_object_name(t.table(RPCCallF.RESPONSE), f"RPCCall.response of {name}"),
        attributes=_attributes(t, RPCCallF.ATTRIBUTES),
        documentation=t.strings(RPCCallF.DOCUMENTATION),
    )


def _service(t: _Tab) -> RService:
    return RService(
        name=_required(t.string(ServiceF.NAME), "Service.name"),
        calls=tuple(_call(c) for c in t.tables(ServiceF.CALLS)),
        attributes=_attributes(t, ServiceF.ATTRIBUTES),
        documentation=t.strings(ServiceF.DOCUMENTATION),
        declaration_file=t.string(ServiceF.DECLARATION_FILE) or "",
    )


def _schema_file(t: _Tab) -> RSchemaFile:
    return RSchemaFile(
        filename=_required(t.string(SchemaFileF.FILENAME), "SchemaFile.filename"),
        included_filenames=t.strings(SchemaFileF.INCLUDED_FILENAMES),
    )


def read(data: bytes) -> RSchema:
    """Decode a whole .bfbs. Raises BfbsError if the bytes are not a binary schema.

    There is no verifier in the Python runtime; the input is flatc's own output from a private
    temporary directory, so bounds are only guarded (any decode failure becomes BfbsError).
    """
    if len(data) < 8 or data[4:8] != BFBS_IDENTIFIER:
        raise BfbsError("not a binary schema (missing 'BFBS' file identifier)")
    buf = bytes(data)
    try:
        root = _Tab(buf, struct.unpack_from("<I", buf, 0)[0])
        root_table = root.table(SchemaF.ROOT_TABLE)
        return RSchema(
            objects=tuple(_object(o) for o in root.tables(SchemaF.OBJECTS)),
            enums=tuple(_enum(e) for e in root.tables(SchemaF.ENUMS)),
            file_ident=root.string(SchemaF.FILE_IDENT) or "",
            file_ext=root.string(SchemaF.FILE_EXT) or "",
            root_table=None if root_table is None else root_table.string(ObjectF.NAME),
            services=tuple(_service(s) for s in root.tables(SchemaF.SERVICES)),
            advanced_features=root.scalar(SchemaF.ADVANCED_FEATURES, N.Uint64Flags, 0),
            fbs_files=tuple(_schema_file(f) for f in root.tables(SchemaF.FBS_FILES)),
        )
    except (struct.error, IndexError, ValueError, UnicodeDecodeError) as e:
        raise BfbsError(f"malformed binary schema: {e}") from e


def read_file(path: str) -> RSchema:
    with open(path, "rb") as f:
        return read(f.read())

