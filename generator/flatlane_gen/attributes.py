"""Flatlane's schema attributes: names, allowed values, defaults and size limits.

The attributes are declared in schema/flatlane.fbs (`attribute "flatlane_...";`) so that flatc
accepts them; flatc hands their values back as strings (a valueless attribute as "0").
docs/SCHEMA.md documents every one of them; keep the two in sync.

Size limits mirror the runtime (docs/PROTOCOL.md §3.2 and Appendix B), so a schema that passes
here never makes the runtime refuse the segment configuration.
"""

from __future__ import annotations

import re
from typing import Optional

from .ir import ChannelKind, Overflow, Wait

PREFIX = "flatlane_"

PATTERN = "flatlane_pattern"
MAX_MESSAGE = "flatlane_max_message"
RING_CAPACITY = "flatlane_ring_capacity"
CHUNK_SIZE = "flatlane_chunk_size"
OVERFLOW = "flatlane_overflow"
WAIT = "flatlane_wait"

# flatc's builtin rpc attribute (kept in the .bfbs thanks to --bfbs-builtins).
STREAMING = "streaming"

# Service-only attribute, and those a method may override (service value = default for methods).
SERVICE_ONLY = (PATTERN,)
CHANNEL_SETTINGS = (MAX_MESSAGE, RING_CAPACITY, CHUNK_SIZE, OVERFLOW, WAIT)
ALL = SERVICE_ONLY + CHANNEL_SETTINGS

# Defaults (a plain rpc_service is a request/reply service: that is what rpc_service means).
DEFAULT_PATTERN = ChannelKind.SERVICE
DEFAULT_RING_CAPACITY = 1 << 20       # runtime default (PROTOCOL.md Appendix B)
DEFAULT_MAX_MESSAGE = 1 << 32         # runtime reader default; duplex: one frame, see below
DEFAULT_CHUNK_SIZE = 0                # 0 = runtime default: min(max frame payload, 1 MiB)
DEFAULT_OVERFLOW = Overflow.BLOCK     # lossless, and what the SPSC ring does today
DEFAULT_WAIT = Wait.SPIN_THEN_SLEEP   # runtime default

# Limits.
SEGMENT_HEADER = 4096
CHUNK_HEADER = 16
RING_MIN = 4096
RING_MAX = 1 << 40
MAX_MESSAGE_MIN = 1
MAX_MESSAGE_MAX = 1 << 40
CHUNK_MIN = CHUNK_HEADER + 1


def frame_limit(ring_capacity: int) -> int:
    """Largest frame payload of a ring (PROTOCOL.md §3.2: `min(cap/2 - 32, 2^32 - 1 - 4096)`)."""
    return min(ring_capacity // 2 - 32, (1 << 32) - 1 - SEGMENT_HEADER)


def duplex_frame_limit(ring_capacity: int) -> int:
    """Largest frame of an in-place duplex ring (PROTOCOL.md §16: `min(cap/2 - 64, 2^30 - 1)`)."""
    return min(ring_capacity // 2 - 64, (1 << 30) - 1)


DUPLEX_RING_MAX = 1 << 31


_UNITS = {"": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
_SIZE_RE = re.compile(r"^\s*(-?[0-9]+)\s*(KiB|MiB|GiB|TiB)?\s*$")


def parse_size(text: str) -> Optional[int]:
    """`65536`, `"64KiB"`, `"1 MiB"` -> bytes; None if the text is not a size.

    Only binary units, spelled out, so that "1M" vs "1MB" vs "1MiB" is never ambiguous.
    flatc already turns hex integer literals into decimal text.
    """
    m = _SIZE_RE.match(text)
    if m is None:
        return None
    return int(m.group(1)) * _UNITS[m.group(2) or ""]


def format_size(n: int) -> str:
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if n >= _UNITS[unit] and n % _UNITS[unit] == 0:
            return f"{n // _UNITS[unit]} {unit}"
    return f"{n} B"


STREAMINGS_FLATC = ("none", "client", "server", "bidi")  # what gRPC/flatc mean by `streaming`
