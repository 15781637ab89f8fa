"""Python port of tests/cpp/payload_pattern.hpp: every byte derived from (seed, seq) or (seed, id),
so a C++ peer and a Python peer check each other's payloads without sharing state.

Vectorised with NumPy (uint64 arithmetic wraps like C++'s), because the messages run to 100 KB.
"""

from __future__ import annotations

import numpy as np

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


def payload_size(seed: int, seq: int, maximum: int) -> int:
    return mix64(((seed * 0x100000001B3) & M64) ^ ((seq << 1) & M64) ^ 0x5A5A5A5A) % (maximum + 1)


def payload(seed: int, seq: int, n: int) -> bytes:
    """fill_payload(seed, seq, p, n): 64-bit words mix64(base + i) at byte offsets i = 0, 8, ..."""
    base = mix64(seed ^ mix64(seq))
    words = (n + 7) // 8
    offsets = np.arange(words, dtype=np.uint64) * np.uint64(8)
    with np.errstate(over="ignore"):
        values = _mix64_array(offsets + np.uint64(base))
    return values.astype("<u8").tobytes()[:n]


def message_size(seed: int, k: int, minimum: int, maximum: int) -> int:
    return minimum + mix64(((seed * 0x9E3779B1) & M64) ^ ((k << 3) & M64) ^ 0x77) % (maximum - minimum + 1)


def message(seed: int, k: int, n: int) -> bytes:
    """fill_message: the 8-byte id, then payload(seed ^ 0xC0FFEE, k)."""
    return k.to_bytes(8, "little") + payload(seed ^ 0xC0FFEE, k, n - 8)


def check_message(seed: int, data: bytes, minimum: int, maximum: int) -> int:
    """The message's id, or -1 if its size or bytes are wrong."""
    if len(data) < 8:
        return -1
    k = int.from_bytes(data[:8], "little")
    if len(data) != message_size(seed, k, minimum, maximum) or data != message(seed, k, len(data)):
        return -1
    return k
