"""Python port of tests/cpp/typed_test_util.hpp: the contents of fltest.Sample and fltest.Blob
messages derived from an id, so a C++ peer (tests/cpp/peer_typed.cpp) and Python check each
other's messages without sending the expectation along.

Floats are computed in float32 as C++ does, blob bytes and checksums with wrapping uint64 NumPy
arithmetic (a blob runs to 200 KiB).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from flatlane.typed import uninitialized_vector

M64 = (1 << 64) - 1


def mix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def _mix64_array(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


# --- fltest.Sample ---------------------------------------------------------------------------------


def sample_label(sid: int) -> str:
    return f"sample-{sid}"


def sample_values(sid: int) -> int:
    return mix64(sid) % 64


def sample_value_array(sid: int, n: int) -> np.ndarray:
    # static_cast<float>(id) * 0.5f + static_cast<float>(k), in float32 like C++.
    return np.float32(sid) * np.float32(0.5) + np.arange(n, dtype=np.float32)


def build_sample(b, sid: int, n_values: Optional[int] = None) -> int:  # type: ignore[no-untyped-def]
    """The same message as C++'s build_sample(b, id[, n_values]), the vector filled in place."""
    from fltest import Sample as S
    from fltest.Vec3 import CreateVec3

    n = sample_values(sid) if n_values is None else n_values
    vec, values = uninitialized_vector(b, np.float32, n)
    values[:] = sample_value_array(sid, n)
    label = b.CreateString(sample_label(sid))
    S.SampleStart(b)
    S.SampleAddId(b, sid)
    S.SampleAddLabel(b, label)
    S.SampleAddPosition(b, CreateVec3(b, float(sid), -float(sid), 0.25))
    S.SampleAddValues(b, vec)
    return S.SampleEnd(b)


def build_sample_generated(b, sid: int, n_values: Optional[int] = None) -> int:  # type: ignore[no-untyped-def]
    """build_sample's message through the generated build_Sample (one struct.pack_into a table)."""
    from typed_test_flatlane import build_Sample

    n = sample_values(sid) if n_values is None else n_values
    return build_Sample(b, id=sid, label=sample_label(sid), position=(float(sid), -float(sid), 0.25),
                        values=sample_value_array(sid, n))


def check_sample(s, sid: int, n_values: Optional[int] = None) -> str:  # type: ignore[no-untyped-def]
    """Empty if `s` (an fltest.Sample reader) is what build_sample(sid, n_values) made, else what
    differs (C++'s check_sample)."""
    n = sample_values(sid) if n_values is None else n_values
    if s.Id() != sid:
        return f"id {s.Id()} != {sid}"
    if s.Label() != sample_label(sid).encode():
        return f"label of {sid}: {s.Label()!r}"
    pos = s.Position()
    if pos is None or pos.X() != float(sid) or pos.Y() != -float(sid) or pos.Z() != 0.25:
        return f"position of {sid}"
    if s.ValuesLength() != n:
        return f"values size of {sid}: {s.ValuesLength()} != {n}"
    if n and not np.array_equal(s.ValuesAsNumpy(), sample_value_array(sid, n)):
        return f"values of {sid}"
    return ""


# --- fltest.Blob -----------------------------------------------------------------------------------


def blob_size(bid: int) -> int:
    """0 .. 200 KiB, most larger than a 64 KiB ring's frame."""
    return mix64(bid) % (200 * 1024)


def blob_bytes(bid: int, size: int) -> np.ndarray:
    """blob_byte(id, i) for i in [0, size): byte i % 8 (little-endian) of mix64(id * 1000003 + i / 8)."""
    words = (size + 7) // 8
    with np.errstate(over="ignore"):
        base = np.uint64((bid * 1_000_003) & M64)
        x = base + np.arange(words, dtype=np.uint64)
    return _mix64_array(x).astype("<u8").view(np.uint8)[:size]


def blob_byte(bid: int, i: int) -> int:
    return (mix64((bid * 1_000_003 + i // 8) & M64) >> (8 * (i % 8))) & 0xFF


def checksum(data: np.ndarray) -> int:
    """sum = sum * 31 + byte over the bytes, modulo 2^64 (C++'s uint64_t arithmetic)."""
    n = len(data)
    if n == 0:
        return 0
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(n, 31, dtype=np.uint64), dtype=np.uint64)  # 31^1 .. 31^n
        powers = np.concatenate(([np.uint64(1)], powers[:-1]))[::-1]  # 31^(n-1) .. 31^0
        return int(np.sum(data.astype(np.uint64) * powers, dtype=np.uint64))


def build_blob(b, bid: int, size: int) -> int:  # type: ignore[no-untyped-def]
    from fltest import Blob as B

    data = blob_bytes(bid, size)
    vec, place = uninitialized_vector(b, np.uint8, size)
    place[:] = data
    B.BlobStart(b)
    B.BlobAddId(b, bid)
    B.BlobAddData(b, vec)
    B.BlobAddChecksum(b, checksum(data))
    return B.BlobEnd(b)


def build_blob_generated(b, bid: int, size: int) -> int:  # type: ignore[no-untyped-def]
    """build_blob's message through the generated build_Blob (the bytes copied in from NumPy)."""
    from typed_test_flatlane import build_Blob

    data = blob_bytes(bid, size)
    return build_Blob(b, id=bid, data=data, checksum=checksum(data))


def check_blob(m, bid: int, size: int) -> str:  # type: ignore[no-untyped-def]
    if m.Id() != bid:
        return f"blob id {m.Id()} != {bid}"
    if m.DataLength() != size:
        return f"blob size of {bid}: {m.DataLength()} != {size}"
    data = m.DataAsNumpy() if size else np.zeros(0, np.uint8)
    if not np.array_equal(data, blob_bytes(bid, size)):
        return f"blob bytes of {bid}"
    if checksum(data) != m.Checksum():
        return f"blob checksum of {bid}"
    return ""
