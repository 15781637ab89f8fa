"""Runtime support for the FlatBuffers builders and verifiers that ``flatlane-gen --lang python``
writes into ``x_flatlane.py`` (``build_<Table>`` and the verifiers behind ``MessageTraits``).

Why not flatc's Python API alone: python3-flatbuffers 2.0.8's ``Builder`` places every scalar,
offset and padding byte through several Python calls (a 64-byte message costs 10-20 us), and it
has no verifier. The generator knows each table's layout, so a generated builder writes a whole
table (vtable, offsets, scalars) with one ``struct.pack_into`` and its strings and vectors with one
slice assignment each; a generated verifier checks every offset and size of a message before a
reader touches it. Both work on flatc's buffers: a builder writes into a ``flatbuffers.Builder``
(any, including the ring-frame builders of ``flatlane.typed``) through its public state
(``Bytes``, ``head``, ``minalign``, ``nested``, ``growByteBuffer``), so generated and flatc's
calls can be mixed in one message, and what it writes is standard FlatBuffers that flatc's
readers, C++ and C# read.

Offsets are what flatc's Python API uses: bytes from the end of the buffer (``Builder.Offset()``).
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Optional

__all__ = ["VerifyError", "reserve", "string", "vector", "struct_vector", "offset_vector", "string_vector",
           "finish", "Verifier", "root_offset", "verify_message"]

_U32 = struct.Struct("<I")
_pack_u32 = _U32.pack_into
_ZEROS = bytes(256)


def reserve(b: Any, size: int, align: int, skew: int = 0) -> int:
    """Makes room for ``size`` bytes in front of the builder's head and returns the new head ``h``
    (where the bytes start): ``h + skew`` lies ``align``-aligned as counted from the buffer's end,
    as ``Builder.Prep`` aligns. The padding between ``h + size`` and the old head is zeroed (a ring
    frame holds earlier messages' bytes). Grows the buffer through ``growByteBuffer`` like Prep."""
    if b.nested:
        raise ValueError("flatlane: a generated builder was called while a flatc table, vector or "
                         "string is being built (finish it first)")
    if align > b.minalign:
        b.minalign = align
    head = b.head
    buf = b.Bytes
    end = len(buf)
    pad = (head - size + skew - end) & (align - 1)
    h = head - size - pad
    while h < 0:  # as Builder.Prep: grow, and the used tail moves to the new end
        b.growByteBuffer()
        buf = b.Bytes
        head += len(buf) - end
        end = len(buf)
        b.head = head
        pad = (head - size + skew - end) & (align - 1)
        h = head - size - pad
    if pad:
        buf[head - pad:head] = _ZEROS[:pad] if pad <= 256 else bytes(pad)
    b.head = h
    return h


def _raw(v: Any) -> Optional[memoryview]:
    """A byte view of a C-contiguous buffer (bytes, bytearray, memoryview, NumPy array), else None."""
    if v.__class__ is bytes or v.__class__ is bytearray:
        return memoryview(v)
    try:
        m = memoryview(v)
    except TypeError:
        return None
    if not m.c_contiguous:
        return None
    return m.cast("B") if m.format != "B" or m.ndim != 1 else m


def string(b: Any, s: Any) -> int:
    """A string (``str``: UTF-8; or bytes-like) in the buffer; its offset. An ``int`` is taken as
    the offset of a string built before and returned as it is."""
    if s.__class__ is int:
        return s
    if s.__class__ is str:
        s = s.encode()
    elif s.__class__ is not bytes:
        m = _raw(s)
        if m is None:
            raise TypeError(f"flatlane: a string field takes str, bytes-like or an offset, not {type(s).__name__}")
        s = m
    n = len(s)
    h = reserve(b, n + 5, 4)
    buf = b.Bytes
    _pack_u32(buf, h, n)
    buf[h + 4:h + 4 + n] = s
    buf[h + 4 + n] = 0
    return len(buf) - h


# Scalar vector element codes and the buffer formats whose bytes are already that code's bytes.
_SIGNED = frozenset("bhilq")
_UNSIGNED = frozenset("BHILQ")
_FLOAT = frozenset("efd")


def _same_bytes(fmt: str, code: str, itemsize: int, size: int) -> bool:
    if itemsize != size:
        return False
    c = fmt[-1:]
    if fmt[:-1] not in ("", "<", "=", "@"):
        return False
    if size == 1:  # bytes are bytes: bool, byte, ubyte and char buffers all copy as they are
        return c in "bBc?"
    if code in _SIGNED:
        return c in _SIGNED
    if code in _UNSIGNED:
        return c in _UNSIGNED
    return c in _FLOAT


def vector(b: Any, v: Any, code: str, size: int) -> int:
    """A vector of scalars (``code``: a ``struct`` format letter of ``size`` bytes); its offset.
    ``v``: a buffer whose elements already have that layout (bytes for ``[ubyte]``, a NumPy array of
    the element type: copied as it is), or any sequence of numbers; an ``int`` is the offset of a
    vector built before."""
    if v.__class__ is int:
        return v
    if v.__class__ is bytes and size == 1:  # the common [ubyte] case, without a memoryview
        n = len(v)
        h = reserve(b, 4 + n, 4, 4)
        buf = b.Bytes
        _pack_u32(buf, h, n)
        buf[h + 4:h + 4 + n] = v
        return len(buf) - h
    m = None
    if v.__class__ is not list and v.__class__ is not tuple:
        try:
            m = memoryview(v)
        except TypeError:
            m = None
        if m is not None and not (m.c_contiguous and _same_bytes(m.format, code, m.itemsize, size)):
            m = None
    if m is not None:
        nbytes = m.nbytes
        h = reserve(b, 4 + nbytes, size if size > 4 else 4, 4)
        buf = b.Bytes
        _pack_u32(buf, h, nbytes // size)
        if nbytes:
            buf[h + 4:h + 4 + nbytes] = m.cast("B") if (m.format != "B" or m.ndim != 1) else m
        return len(buf) - h
    n = len(v)
    h = reserve(b, 4 + n * size, size if size > 4 else 4, 4)
    buf = b.Bytes
    try:
        struct.pack_into(f"<I{n}{code}", buf, h, n, *v)
    except struct.error as e:
        raise ValueError(f"flatlane: vector element out of range for '{code}': {e}") from None
    return len(buf) - h


def struct_vector(b: Any, v: Any, size: int, align: int, pack: Callable[[Any, int, Any], None]) -> int:
    """A vector of structs; its offset. ``v``: a sequence of tuples (one per struct, as the struct's
    ``pack`` takes them), or a buffer of packed structs (``len`` a multiple of ``size``); an ``int``
    is the offset of a vector built before."""
    if v.__class__ is int:
        return v
    a = align if align > 4 else 4
    if v.__class__ is not list and v.__class__ is not tuple:
        m = _raw(v)
        if m is not None:
            if m.nbytes % size:
                raise ValueError(f"flatlane: {m.nbytes} bytes are no whole number of {size}-byte structs")
            h = reserve(b, 4 + m.nbytes, a, 4)
            buf = b.Bytes
            _pack_u32(buf, h, m.nbytes // size)
            buf[h + 4:h + 4 + m.nbytes] = m
            return len(buf) - h
    n = len(v)
    h = reserve(b, 4 + n * size, a, 4)
    buf = b.Bytes
    _pack_u32(buf, h, n)
    p = h + 4
    for item in v:
        pack(buf, p, item)
        p += size
    return len(buf) - h


def offset_vector(b: Any, offsets: Any) -> int:
    """A vector of tables: ``offsets`` of tables built before (a sequence of ints); its offset. An
    ``int`` is the offset of a vector built before."""
    if offsets.__class__ is int:
        return offsets
    n = len(offsets)
    h = reserve(b, 4 + 4 * n, 4, 4)
    buf = b.Bytes
    end = len(buf)
    p = h + 4
    struct.pack_into(f"<I{n}I", buf, h, n, *[end - o - (p + 4 * i) for i, o in enumerate(offsets)])
    return end - h


def string_vector(b: Any, items: Any) -> int:
    """A vector of strings (each ``str``, bytes-like or the offset of a string built before); its
    offset. An ``int`` is the offset of a vector built before."""
    if items.__class__ is int:
        return items
    # Built last to first, so the strings lie in the buffer in the vector's order.
    offsets = [string(b, s) for s in reversed(items)]
    offsets.reverse()
    return offset_vector(b, offsets)


def finish(b: Any, root: int, file_identifier: Optional[bytes]) -> int:
    """``Builder.Finish`` in two writes: the root offset (and the file identifier after it), aligned
    to the buffer's largest alignment. Returns the head (where the finished message starts)."""
    size = 8 if file_identifier is not None else 4
    align = b.minalign if b.minalign > 4 else 4
    h = reserve(b, size, align)
    buf = b.Bytes
    _pack_u32(buf, h, len(buf) - root - h)
    if file_identifier is not None:
        buf[h + 4:h + 8] = file_identifier
    b.finished = True
    return h


class VerifyError(ValueError):
    """A message failed verification; the text says where (``Type.field``) and what."""


_MAX_DEPTH = 64
_MAX_TABLES = 1_000_000


class Verifier:
    """State of one verification: the message, and the depth and table budget a hostile message
    could otherwise exhaust (FlatBuffers' C++ Verifier limits: depth 64, 1,000,000 tables)."""

    __slots__ = ("buf", "n", "tables")

    def __init__(self, buf: Any, n: int) -> None:
        self.buf = buf
        self.n = n
        self.tables = 0

    def fail(self, where: str, what: str) -> VerifyError:
        return VerifyError(f"{where}: {what}")

    def table(self, pos: int, where: str, depth: int, count: int) -> "tuple[int, tuple[int, ...]]":
        """Checks the table at ``pos`` and its vtable; returns the table's size and its first
        ``count`` vtable slots (field offsets, 0 where absent or beyond the vtable). The caller
        checks each field against the size."""
        n = self.n
        if depth > _MAX_DEPTH:
            raise self.fail(where, f"tables nested deeper than {_MAX_DEPTH}")
        self.tables += 1
        if self.tables > _MAX_TABLES:
            raise self.fail(where, f"more than {_MAX_TABLES} tables")
        if pos & 3 or pos < 0 or pos + 4 > n:
            raise self.fail(where, f"table at {pos} outside the message of {n} bytes or misaligned")
        buf = self.buf
        vt = pos - _I32_from(buf, pos)[0]
        if vt & 1 or vt < 0 or vt + 4 > n:
            raise self.fail(where, f"vtable at {vt} outside the message or misaligned")
        vsize, tsize = _HH_from(buf, vt)
        if vsize & 1 or vsize < 4 or vt + vsize > n:
            raise self.fail(where, f"vtable of {vsize} bytes at {vt} runs past the message or is malformed")
        if tsize < 4 or pos + tsize > n:
            raise self.fail(where, f"table of {tsize} bytes at {pos} runs past the message")
        have = (vsize - 4) >> 1
        if have >= count:
            return tsize, _slots(count)(buf, vt + 4)
        return tsize, _slots(have)(buf, vt + 4) + (0,) * (count - have)

    def bad_field(self, where: str, off: int, size: int, tsize: int, pos: int, align: int) -> VerifyError:
        if off + size > tsize:
            return self.fail(where, f"field at table offset {off} ({size} bytes) runs past its table of {tsize} bytes")
        return self.fail(where, f"field at {pos + off} not {align}-aligned")

    def ref(self, fpos: int, where: str) -> int:
        """Follows the uoffset at ``fpos`` (4-aligned); the target's position."""
        if fpos & 3:
            raise self.fail(where, f"offset at {fpos} misaligned")
        target = fpos + _U32_from(self.buf, fpos)[0]
        if target >= self.n:
            raise self.fail(where, f"offset points to {target}, outside the message of {self.n} bytes")
        return target

    def vector(self, pos: int, elem: int, align: int, where: str) -> int:
        """Checks a vector's length and bytes; its element count."""
        n = self.n
        if pos & 3 or pos + 4 > n:
            raise self.fail(where, f"vector at {pos} outside the message or misaligned")
        count = _U32_from(self.buf, pos)[0]
        if pos + 4 + count * elem > n:
            raise self.fail(where, f"vector of {count} x {elem} bytes at {pos} runs past the message of {n} bytes")
        if align > 4 and (pos + 4) & (align - 1):
            raise self.fail(where, f"vector data at {pos + 4} not {align}-aligned")
        return count

    def string(self, pos: int, where: str) -> None:
        n = self.n
        if pos & 3 or pos + 4 > n:
            raise self.fail(where, f"string at {pos} outside the message or misaligned")
        length = _U32_from(self.buf, pos)[0]
        end = pos + 4 + length
        if end >= n:
            raise self.fail(where, f"string of {length} bytes at {pos} runs past the message of {n} bytes")
        if self.buf[end] != 0:
            raise self.fail(where, f"string at {pos} has no terminating zero")

    def strings(self, pos: int, where: str) -> None:
        count = self.vector(pos, 4, 4, where)
        for i in range(count):
            p = pos + 4 + 4 * i
            self.string(self.ref(p, where), f"{where}[{i}]")

    def table_vector(self, pos: int, where: str, depth: int, verify: Callable[..., None]) -> None:
        count = self.vector(pos, 4, 4, where)
        for i in range(count):
            p = pos + 4 + 4 * i
            verify(self, self.ref(p, where), depth)

    def struct(self, pos: int, size: int, where: str) -> None:
        if pos + size > self.n:
            raise self.fail(where, f"struct of {size} bytes at {pos} runs past the message")

    def nested(self, pos: int, count: int, where: str, verify: Callable[..., None], depth: int) -> None:
        """A ``nested_flatbuffer`` vector: its bytes are a FlatBuffer of its own, verified as one."""
        if not count:
            return
        sub = Verifier(self.buf[pos + 4:pos + 4 + count], count)
        sub.tables = self.tables
        sub.root(verify, where, None, depth)
        self.tables = sub.tables

    def root(self, verify: Callable[..., None], where: str, file_identifier: Optional[bytes], depth: int = 0) -> int:
        """Checks the root offset (and the file identifier), then the root table; its position."""
        root = root_offset(self.buf, self.n, file_identifier)
        if root.__class__ is not int:
            raise self.fail(where, root)
        verify(self, root, depth)
        return root


def root_offset(buf: Any, n: int, file_identifier: Optional[bytes]) -> Any:
    """The root table's position (an int) when the root offset of the message of ``n`` bytes lies
    inside it, 4-aligned, and the file identifier matches; else why not (a str)."""
    if n < 8:
        return f"{n} bytes, too short for a FlatBuffer"
    root = _U32_from(buf, 0)[0]
    if root & 3 or root < 4 or root > n - 4:
        return f"root offset {root} outside the message of {n} bytes or misaligned"
    if file_identifier is not None and buf[4:8] != file_identifier:
        return f"file identifier {bytes(buf[4:8])!r}, expected {file_identifier!r}"
    return root


_SLOTS = [struct.Struct(f"<{k}H").unpack_from for k in range(65)]


def _slots(count: int) -> Callable[..., "tuple[int, ...]"]:
    """unpack_from for ``count`` vtable slots (precompiled for tables of up to 64 fields)."""
    return _SLOTS[count] if count <= 64 else struct.Struct(f"<{count}H").unpack_from


_I32_from = struct.Struct("<i").unpack_from
_U32_from = _U32.unpack_from
_H_from = struct.Struct("<H").unpack_from
_HH_from = struct.Struct("<HH").unpack_from


def verify_message(verify: Callable[..., None], type_name: str, buf: Any, n: int,
                   file_identifier: Optional[bytes]) -> int:
    """Verifies a whole message of ``n`` bytes; the root table's position. Raises VerifyError."""
    return Verifier(buf, n).root(verify, type_name, file_identifier)

