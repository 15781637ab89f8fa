"""Writer and Reader: the two ends of a single-producer/single-consumer channel.

The hot-path methods (``reserve``, ``commit``, ``commit_tail``, ``abort``, ``send``, ``read``,
``recv``) are the native ones, inherited unchanged so no Python frame sits between the caller and
the runtime; this module adds option handling, context management, logging and typed stats.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from types import TracebackType
from typing import Optional, Type, TypeVar, Union

from . import _native

logger = logging.getLogger("flatlane")

_MS = 1_000_000  # nanoseconds per millisecond


class OpenMode(enum.IntEnum):
    """How an endpoint finds its segment (``flatlane::OpenMode``)."""

    CREATE = 0
    """Create the segment (reclaiming a stale one); fail if a live one exists."""
    OPEN = 1
    """Attach to an existing segment; ChannelNotFoundError if there is none."""
    CREATE_OR_OPEN = 2
    """Open it if it exists, else create it."""


class WaitStrategy(enum.IntEnum):
    """How a call waits for data or space (``flatlane::WaitStrategy``). The GIL is released in
    all three."""

    BUSY_SPIN = 0
    """Never sleeps: lowest latency, burns a core while waiting."""
    SPIN_THEN_SLEEP = 1
    """Spins for ``spin_budget_ms``, then sleeps on a futex (default)."""
    BLOCKING = 2
    """Sleeps on a futex right away."""


_E = TypeVar("_E", bound="_Endpoint")

ModeLike = Union[OpenMode, str]
WaitLike = Union[WaitStrategy, str]


def _enum_value(enum_type: Type[enum.IntEnum], value: Union[enum.IntEnum, str], what: str) -> int:
    if isinstance(value, str):
        try:
            return int(enum_type[value.upper()])
        except KeyError:
            names = ", ".join(m.name.lower() for m in enum_type)
            raise ValueError(f"flatlane: unknown {what} {value!r} (one of: {names})") from None
    return int(enum_type(value))


@dataclasses.dataclass(frozen=True)
class EndpointStats:
    """Counters of one endpoint (``flatlane::EndpointStats``)."""

    frames: int
    """Frames committed (writer) or delivered (reader)."""
    messages: int
    """Whole messages sent (writer) or received through ``recv`` (reader)."""
    bytes: int
    """Payload bytes of those messages."""
    occupancy_bytes: int
    """Ring bytes committed but not yet released by the reader."""
    capacity_bytes: int
    """Ring capacity."""


class _Endpoint:
    """Context management and logging shared by Writer and Reader (a mixin: the native base
    class provides ``close``, ``closed``, ``name`` and ``_stats``)."""

    __slots__ = ()  # adds no instance layout, so it combines with the native base
    _role = ""

    def __enter__(self: _E) -> _E:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def close(self) -> None:
        """Detach from the channel. The peer sees ``PeerClosedError`` once it has read everything;
        a call blocked in another thread returns with ``ClosedError``. Views and frames still
        alive stay readable: the segment is unmapped (and, when both sides are gone, unlinked)
        once the last of them is dropped. Idempotent."""
        if self.closed:  # type: ignore[attr-defined]
            return
        self._log_close()
        super().close()  # type: ignore[misc]

    def _log_close(self) -> None:
        logger.debug("%s of channel %r closing", self._role, self.name)  # type: ignore[attr-defined]

    def stats(self) -> EndpointStats:
        """A snapshot of this endpoint's counters."""
        return EndpointStats(*self._stats())  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"  # type: ignore[attr-defined]
        return f"<flatlane.{type(self).__name__} {self.name!r} {state}>"  # type: ignore[attr-defined]


class Writer(_Endpoint, _native.Writer):
    """The producing end of a channel.

    Zero-copy sending: ``view = w.reserve(n)`` gives a writable memoryview of ``n`` bytes inside
    the shared ring; fill it (slice assignment, ``numpy.frombuffer(view, dtype)[...] = ...``,
    ``struct.pack_into``), then ``w.commit(used)``. ``w.send(obj)`` copies any bytes-like object
    (including a C-contiguous NumPy array, without an intermediate copy) and chunks messages larger
    than ``max_frame_payload``.

    Timeouts are in milliseconds (float allowed); ``None`` waits forever, ``0`` never waits.

    Args:
        name: channel name ([A-Za-z0-9_.-], segment ``/dev/shm/flatlane.<name>``).
        mode: OpenMode or its name ("create", "open", "create_or_open").
        ring_capacity: ring bytes when creating (rounded up to a power of two, >= 4096).
        max_frame_payload: largest ``reserve``; 0 = capacity/2 - 32.
        chunk_size: bytes per chunk of a large message; 0 = min(max_frame_payload, 1 MiB).
        permissions: file mode of a created segment.
        type_name, type_hash: message type identity; a peer asking for another type gets
            TypeMismatchError. Empty name = untyped.
        type_name_only: when opening, compare the type name only and ignore the hash (rolling
            upgrades of wire-compatible schemas, docs/SCHEMA.md); a created segment always
            records both.
        wait: WaitStrategy or its name ("busy_spin", "spin_then_sleep", "blocking").
        spin_budget_ms: how long SPIN_THEN_SLEEP spins before sleeping.
        liveness_interval_ms: how often a sleeping call re-checks that the peer is alive (bounds
            peer-death detection).
        unlink_on_close: the last endpoint to close removes the name.
    """

    _role = "writer"

    def __init__(
        self,
        name: str,
        *,
        mode: ModeLike = OpenMode.CREATE_OR_OPEN,
        ring_capacity: int = 1 << 20,
        max_frame_payload: int = 0,
        chunk_size: int = 0,
        permissions: int = 0o600,
        type_name: str = "",
        type_hash: int = 0,
        type_name_only: bool = False,
        wait: WaitLike = WaitStrategy.SPIN_THEN_SLEEP,
        spin_budget_ms: float = 0.05,
        liveness_interval_ms: float = 50.0,
        unlink_on_close: bool = True,
    ) -> None:
        super().__init__(
            name,
            mode=_enum_value(OpenMode, mode, "open mode"),
            ring_capacity=ring_capacity,
            max_frame_payload=max_frame_payload,
            chunk_size=chunk_size,
            permissions=permissions,
            type_name=type_name,
            type_hash=type_hash,
            type_name_only=type_name_only,
            wait=_enum_value(WaitStrategy, wait, "wait strategy"),
            spin_budget_ns=round(spin_budget_ms * _MS),
            liveness_interval_ns=round(liveness_interval_ms * _MS),
            unlink_on_close=unlink_on_close,
        )
        logger.debug(
            "writer attached to channel %r (ring %d bytes, max frame %d, chunk %d)",
            name,
            self.ring_capacity,
            self.max_frame_payload,
            self.chunk_size,
        )


class Reader(_Endpoint, _native.Reader):
    """The consuming end of a channel.

    Zero-copy receiving: ``frame = r.read()`` returns a :class:`Frame` whose ``data`` is a
    read-only memoryview into the shared ring (``frame.numpy(dtype)`` for an array). The frame's
    space goes back to the writer on ``frame.release()``, at the end of ``with r.read() as f:``,
    or when the frame is dropped, once no view of it is alive. Frames may be released in any
    order and from any thread. ``r.recv()`` returns the next whole message as ``bytes``
    (reassembling chunked messages); ``r.read_message()`` returns it as a Frame, in place when it
    came in one frame (``frame.zero_copy``), else a private reassembled copy.

    Timeouts are in milliseconds (float allowed); ``None`` waits forever, ``0`` never waits.

    Args: as for :class:`Writer`, plus
        max_message_size: larger chunked messages are refused (MessageTooLargeError) unread.
    """

    _role = "reader"

    def __init__(
        self,
        name: str,
        *,
        mode: ModeLike = OpenMode.CREATE_OR_OPEN,
        ring_capacity: int = 1 << 20,
        max_frame_payload: int = 0,
        chunk_size: int = 0,
        permissions: int = 0o600,
        type_name: str = "",
        type_hash: int = 0,
        type_name_only: bool = False,
        wait: WaitLike = WaitStrategy.SPIN_THEN_SLEEP,
        spin_budget_ms: float = 0.05,
        liveness_interval_ms: float = 50.0,
        max_message_size: int = 1 << 32,
        unlink_on_close: bool = True,
    ) -> None:
        super().__init__(
            name,
            mode=_enum_value(OpenMode, mode, "open mode"),
            ring_capacity=ring_capacity,
            max_frame_payload=max_frame_payload,
            chunk_size=chunk_size,
            permissions=permissions,
            type_name=type_name,
            type_hash=type_hash,
            type_name_only=type_name_only,
            wait=_enum_value(WaitStrategy, wait, "wait strategy"),
            spin_budget_ns=round(spin_budget_ms * _MS),
            liveness_interval_ns=round(liveness_interval_ms * _MS),
            max_message_size=max_message_size,
            unlink_on_close=unlink_on_close,
        )
        logger.debug("reader attached to channel %r (ring %d bytes)", name, self.ring_capacity)

    def _log_close(self) -> None:
        held = self.held_frames
        if held:
            # Not an error, but worth knowing: held frames go back to the next reader, unreleased.
            logger.info(
                "reader of channel %r closing with %d frame(s) held; a later reader receives them again",
                self.name,
                held,
            )
        else:
            logger.debug("reader of channel %r closing", self.name)
