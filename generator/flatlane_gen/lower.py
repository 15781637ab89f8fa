"""Lowering of flatc's reflection model (bfbs.py) to Flatlane's IR type definitions (ir.py).

Reflection refers to types by index into the schema's sorted `objects`/`enums` arrays; the IR
refers to them by fully qualified name, which is what templates and the type hash need.
"""

from __future__ import annotations

import os
from typing import Optional

from . import ir
from .bfbs import BaseType, REnum, RField, RObject, RSchema, RType

_SCALAR_NAMES: dict[BaseType, str] = {
    bt: name for bt, name in zip(
        (BaseType.BOOL, BaseType.BYTE, BaseType.UBYTE, BaseType.SHORT, BaseType.USHORT,
         BaseType.INT, BaseType.UINT, BaseType.LONG, BaseType.ULONG, BaseType.FLOAT,
         BaseType.DOUBLE), ir.SCALARS)
}


def fs_path(bfbs_filename: str) -> str:
    """Map a .bfbs file name to a filesystem path.

    The frontend runs flatc with `--bfbs-filenames /`, so flatc writes every path relative to the
    filesystem root behind its `//` root marker: `//home/u/x.fbs` is `/home/u/x.fbs`.
    """
    if bfbs_filename.startswith("//"):
        return os.path.normpath("/" + bfbs_filename[2:])
    return bfbs_filename


class Lowering:
    def __init__(self, schema: RSchema) -> None:
        self.schema = schema

    def type_ref(self, t: RType) -> ir.TypeRef:
        return self._ref(t.base_type, t.index, t.element, t.fixed_length)

    def _ref(self, base: BaseType, index: int, element: BaseType = BaseType.NONE,
             length: int = 0) -> ir.TypeRef:
        if base is BaseType.VECTOR:
            return ir.TypeRef(ir.TypeKind.VECTOR, element=self._ref(element, index))
        if base is BaseType.ARRAY:
            return ir.TypeRef(ir.TypeKind.ARRAY, element=self._ref(element, index), length=length)
        if base in _SCALAR_NAMES:
            scalar = _SCALAR_NAMES[base]
            if index >= 0:  # an integer typed with an enum
                return ir.TypeRef(ir.TypeKind.ENUM, scalar=scalar, name=self._enum(index).name)
            return ir.TypeRef(ir.TypeKind.SCALAR, scalar=scalar)
        if base is BaseType.STRING:
            return ir.TypeRef(ir.TypeKind.STRING)
        if base is BaseType.OBJ:
            obj = self._object(index)
            kind = ir.TypeKind.STRUCT if obj.is_struct else ir.TypeKind.TABLE
            return ir.TypeRef(kind, name=obj.name)
        if base is BaseType.UNION:
            return ir.TypeRef(ir.TypeKind.UNION, name=self._enum(index).name)
        if base is BaseType.UTYPE:
            return ir.TypeRef(ir.TypeKind.UNION_TYPE, scalar="ubyte", name=self._enum(index).name)
        raise ValueError(f"unsupported reflection base type {base.name} (index {index})")

    def _object(self, index: int) -> RObject:
        if not 0 <= index < len(self.schema.objects):
            raise ValueError(f"object index {index} out of range")
        return self.schema.objects[index]

    def _enum(self, index: int) -> REnum:
        if not 0 <= index < len(self.schema.enums):
            raise ValueError(f"enum index {index} out of range")
        return self.schema.enums[index]

    def field(self, f: RField, in_struct: bool) -> ir.Field:
        ref = self.type_ref(f.type)
        default: ir.Default = None
        if not in_struct and ref.kind in (ir.TypeKind.SCALAR, ir.TypeKind.ENUM) and not f.optional:
            default = f.default_real if ref.scalar in ir.FLOAT_SCALARS else f.default_integer
        return ir.Field(
            name=f.name, id=f.id, type=ref, offset=f.offset, default=default,
            # flatc sets `optional` on every non-scalar; only the scalar meaning (`= null`) is
            # information, so the IR keeps it for scalars only.
            optional=f.optional and ref.kind in (ir.TypeKind.SCALAR, ir.TypeKind.ENUM),
            required=f.required, deprecated=f.deprecated, key=f.key,
            attributes=dict(f.attributes), documentation=f.documentation)

    def table(self, o: RObject) -> ir.Table:
        return ir.Table(
            name=o.name, fields=self._fields(o), declaration_file=fs_path(o.declaration_file),
            attributes=dict(o.attributes), documentation=o.documentation)

    def struct(self, o: RObject) -> ir.Struct:
        return ir.Struct(
            name=o.name, fields=self._fields(o), bytesize=o.bytesize, minalign=o.minalign,
            declaration_file=fs_path(o.declaration_file), attributes=dict(o.attributes),
            documentation=o.documentation)

    def _fields(self, o: RObject) -> tuple[ir.Field, ...]:
        # flatc sorts fields by name; ids give declaration (and wire) order.
        return tuple(self.field(f, o.is_struct) for f in sorted(o.fields, key=lambda f: f.id))

    def enum(self, e: REnum) -> ir.Enum:
        underlying = _SCALAR_NAMES.get(e.underlying_type.base_type)
        if underlying is None:
            raise ValueError(f"enum {e.name}: unsupported underlying type")
        return ir.Enum(
            name=e.name, underlying=underlying,
            values=tuple(ir.EnumValue(v.name, v.value, v.documentation)
                         for v in sorted(e.values, key=lambda v: v.value)),
            bit_flags="bit_flags" in e.attributes,
            declaration_file=fs_path(e.declaration_file), attributes=dict(e.attributes),
            documentation=e.documentation)

    def union(self, e: REnum) -> ir.Union:
        members = []
        for v in sorted(e.values, key=lambda v: v.value):
            t: Optional[ir.TypeRef] = None
            if v.union_type is not None and v.union_type.base_type is not BaseType.NONE:
                t = self.type_ref(v.union_type)
            members.append(ir.UnionMember(v.name, v.value, t, v.documentation))
        return ir.Union(
            name=e.name, members=tuple(members), declaration_file=fs_path(e.declaration_file),
            attributes=dict(e.attributes), documentation=e.documentation)


def lower_types(schema: RSchema) -> tuple[tuple[ir.Table, ...], tuple[ir.Struct, ...],
                                          tuple[ir.Enum, ...], tuple[ir.Union, ...]]:
    lw = Lowering(schema)
    tables = tuple(lw.table(o) for o in schema.objects if not o.is_struct)
    structs = tuple(lw.struct(o) for o in schema.objects if o.is_struct)
    enums = tuple(lw.enum(e) for e in schema.enums if not e.is_union)
    unions = tuple(lw.union(e) for e in schema.enums if e.is_union)
    return tables, structs, enums, unions
