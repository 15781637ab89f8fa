"""The self-describing header of the untyped API (``flatlane.Publisher`` & co.) and its codecs.

Every message an untyped endpoint sends starts with a small header that says how the payload
after it is encoded (docs/PYTHON.md, "Untyped messages: the header"). All integers little-endian:

====== ===== ===============================================================================
offset type  field
====== ===== ===============================================================================
0      u8    magic ``0xF1``
1      u8    version ``1``
2      u8    codec: 0 raw bytes, 1 pickle, 2 msgpack, 3 NumPy ndarray
3      u8    flags, 0 (reserved)
4      u32   header length: where the payload starts (a multiple of 8; 16 for an ndarray)
====== ===== ===============================================================================

An ndarray adds, at offset 8: ``ndim`` u8 (0..32), ``typestr_len`` u8, 6 reserved zero bytes,
``ndim`` u64 dimensions (C order), then the NumPy array-interface type string (ASCII, e.g.
``<f4``), zero padding to a multiple of 16; the array's bytes follow, C-contiguous.

This module has no I/O: it packs headers into a loaned slot and reads them back from a view.
"""

from __future__ import annotations

import pickle
import struct
import sys
from typing import Any, Callable, Optional, Tuple

MAGIC = 0xF1
VERSION = 1

CODEC_RAW = 0
CODEC_PICKLE = 1
CODEC_MSGPACK = 2
CODEC_NDARRAY = 3

CODEC_NAMES = {CODEC_RAW: "raw", CODEC_PICKLE: "pickle", CODEC_MSGPACK: "msgpack", CODEC_NDARRAY: "ndarray"}

BASE_HEADER = struct.Struct("<BBBBI")
HEADER_SIZE = 8  # raw, pickle, msgpack
NDARRAY_FIXED = struct.Struct("<BB6x")  # at offset 8
MAX_NDIM = 32

_RAW_HEADER = BASE_HEADER.pack(MAGIC, VERSION, CODEC_RAW, 0, HEADER_SIZE)
_PICKLE_HEADER = BASE_HEADER.pack(MAGIC, VERSION, CODEC_PICKLE, 0, HEADER_SIZE)
_MSGPACK_HEADER = BASE_HEADER.pack(MAGIC, VERSION, CODEC_MSGPACK, 0, HEADER_SIZE)
HEADERS = {CODEC_RAW: _RAW_HEADER, CODEC_PICKLE: _PICKLE_HEADER, CODEC_MSGPACK: _MSGPACK_HEADER}

# The type identity untyped endpoints record in (and expect of) their segments: a typed channel
# or a raw C++ endpoint's segment fails with TypeMismatchError instead of unreadable messages.
TYPE_NAME = "flatlane.py.Object"
TYPE_HASH = 0x0F1A7E0B1EC70001  # bump with VERSION when the header changes incompatibly

_msgpack: Any = None
_msgpack_checked = False


def msgpack_module() -> Optional[Any]:
    """The ``msgpack`` module (python3-msgpack), or None when it is not installed."""
    global _msgpack, _msgpack_checked
    if not _msgpack_checked:
        try:
            import msgpack  # type: ignore[import-not-found,import-untyped]

            _msgpack = msgpack
        except ImportError:
            _msgpack = None
        _msgpack_checked = True
    return _msgpack


def msgpack_available() -> bool:
    """True when the msgpack codec can be used (the ``msgpack`` module is importable)."""
    return msgpack_module() is not None


def encoder(codec: str) -> Tuple[int, Callable[[Any], bytes]]:
    """(codec id, encode function) for a codec name of the ``codec=`` option."""
    if codec == "pickle":
        return CODEC_PICKLE, _pickle_dumps
    if codec == "msgpack":
        m = msgpack_module()
        if m is None:
            raise ValueError(
                "flatlane: codec='msgpack' needs the msgpack module (Debian: python3-msgpack), "
                "which is not importable; use codec='pickle'"
            )
        packb = m.packb

        def _packb(obj: Any) -> bytes:
            return packb(obj, use_bin_type=True)

        return CODEC_MSGPACK, _packb
    raise ValueError(f"flatlane: unknown codec {codec!r} (one of: 'pickle', 'msgpack')")


def _pickle_dumps(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def numpy_module() -> Optional[Any]:
    """NumPy if the process already imported it (an ndarray can only exist then), else None."""
    return sys.modules.get("numpy")


def ndarray_header(shape: Tuple[int, ...], typestr: str) -> bytes:
    """The header of an ndarray message (padded to a multiple of 16 bytes)."""
    ndim = len(shape)
    if ndim > MAX_NDIM:
        raise ValueError(f"flatlane: an ndarray of {ndim} dimensions exceeds the header's {MAX_NDIM}")
    t = typestr.encode("ascii")
    size = 16 + 8 * ndim + len(t)
    size = (size + 15) & ~15
    out = bytearray(size)
    BASE_HEADER.pack_into(out, 0, MAGIC, VERSION, CODEC_NDARRAY, 0, size)
    NDARRAY_FIXED.pack_into(out, 8, ndim, len(t))
    struct.pack_into(f"<{ndim}Q", out, 16, *shape)
    out[16 + 8 * ndim : 16 + 8 * ndim + len(t)] = t
    return bytes(out)


def ndarray_typestr(arr: Any) -> Optional[str]:
    """The array-interface type string of an array the ndarray codec can carry without a copy on
    the receiver, or None (object arrays, structured dtypes: these go through pickle)."""
    dt = arr.dtype
    if dt.hasobject or dt.fields is not None or dt.subdtype is not None:
        return None
    return str(dt.str)


class HeaderError(ValueError):
    """A message does not start with a valid untyped header (turned into SerializationError)."""


def parse_header(view: memoryview) -> Tuple[int, int]:
    """(codec, header length) of a received message; HeaderError when it has no valid header."""
    n = len(view)
    if n < HEADER_SIZE:
        raise HeaderError(f"{n}-byte message is shorter than the {HEADER_SIZE}-byte untyped header")
    magic, version, codec, _flags, hlen = BASE_HEADER.unpack_from(view)
    if magic != MAGIC:
        raise HeaderError(
            f"message does not start with the untyped header (magic 0x{magic:02x}, expected 0x{MAGIC:02x}): "
            "sent by a raw or typed endpoint? (receive it with raw=True)"
        )
    if version != VERSION:
        raise HeaderError(f"untyped header version {version}, this flatlane reads version {VERSION}")
    if hlen < HEADER_SIZE or hlen > n or hlen % 8:
        raise HeaderError(f"header length {hlen} invalid for a {n}-byte message")
    return codec, hlen


def parse_ndarray(view: memoryview, hlen: int) -> Tuple[Tuple[int, ...], str]:
    """(shape, typestr) of an ndarray message."""
    if hlen < 16:
        raise HeaderError(f"ndarray header length {hlen} < 16")
    ndim, tlen = NDARRAY_FIXED.unpack_from(view, 8)
    if ndim > MAX_NDIM or 16 + 8 * ndim + tlen > hlen:
        raise HeaderError(f"ndarray header (ndim {ndim}, type string {tlen} bytes) overruns its {hlen} bytes")
    shape = struct.unpack_from(f"<{ndim}Q", view, 16)
    off = 16 + 8 * ndim
    try:
        typestr = bytes(view[off : off + tlen]).decode("ascii")
    except UnicodeDecodeError:
        raise HeaderError("ndarray type string is not ASCII") from None
    return shape, typestr
