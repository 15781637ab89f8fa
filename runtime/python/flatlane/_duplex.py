"""DuplexClient and DuplexServer: the in-place duplex channel (kind 3, docs/PROTOCOL.md section
16). The response is the request's own frame, modified where it lies: the client writes a
request into a frame of its ring, the server receives a writable view of that frame, changes it
in place and answers; the client reads the same bytes back. Zero copy both ways, between Python
and C++ processes alike.

One client and one server per channel. Several requests may be outstanding; the server may
answer them in any order, the client receives the responses in request order (``seq``
correlates them) and may hold several and release them in any order. A frame's space returns to
the client only once its response was received and released.

The hot-path methods are the native ones, inherited unchanged; this module adds option handling,
context management, logging and typed stats.
"""

from __future__ import annotations

import dataclasses
import logging

from . import _native
from ._channel import ModeLike, OpenMode, WaitLike, WaitStrategy, _Endpoint, _enum_value

logger = logging.getLogger("flatlane")

_MS = 1_000_000  # nanoseconds per millisecond

DuplexResponse = _native.DuplexResponse
"""A response held by the client (see DuplexClient.receive): a writable buffer over the frame as
the server left it; ``data``, ``seq``, ``rejected``, ``numpy()``, ``release()``, ``with``."""

DuplexRequest = _native.DuplexRequest
"""A request held by the server (see DuplexServer.receive): a writable buffer over the request
bytes in the client's frame; ``data``, ``frame``, ``seq``, ``request_offset``, ``capacity``,
``respond()``, ``respond(offset, size)``, ``reject()``, ``release()``, ``with``. Dropped (or
released) unanswered, it is rejected, as in C++."""


@dataclasses.dataclass(frozen=True)
class DuplexStats:
    """Counters of one duplex endpoint (``flatlane::DuplexStats``)."""

    requests: int
    """Client: requests sent; server: requests received."""
    responses: int
    """Client: responses received; server: responses sent (rejections included)."""
    rejected: int
    """Client: responses that came back rejected; server: requests it rejected."""
    bytes: int
    """Client: request bytes sent; server: response bytes sent."""
    outstanding: int
    """Client: sent, response not yet received; server: received, not answered."""
    occupancy_bytes: int
    """Ring bytes in use."""
    capacity_bytes: int
    """Ring bytes."""


def _duplex_kwargs(
    *,
    mode: ModeLike,
    ring_capacity: int,
    permissions: int,
    type_name: str,
    type_hash: int,
    type_name_only: bool,
    wait: WaitLike,
    spin_budget_ms: float,
    liveness_interval_ms: float,
    unlink_on_close: bool,
) -> dict:
    return dict(
        mode=_enum_value(OpenMode, mode, "open mode"),
        ring_capacity=ring_capacity,
        permissions=permissions,
        type_name=type_name,
        type_hash=type_hash,
        type_name_only=type_name_only,
        wait=_enum_value(WaitStrategy, wait, "wait strategy"),
        spin_budget_ns=round(spin_budget_ms * _MS),
        liveness_interval_ns=round(liveness_interval_ms * _MS),
        unlink_on_close=unlink_on_close,
    )


_DUPLEX_ARGS_DOC = """
    Options:
        name: channel name ([A-Za-z0-9_.-], segment ``/dev/shm/flatlane.<name>``).
        mode: OpenMode or its name ("create", "open", "create_or_open").
        ring_capacity: ring bytes when creating (a power of two; the largest frame is about half).
        permissions: file mode of a created segment.
        type_name, type_hash: message type identity; another type fails with TypeMismatchError.
        type_name_only: when opening, compare the type name only, not the hash.
        wait, spin_budget_ms, liveness_interval_ms: as for flatlane.Writer.
        unlink_on_close: the last endpoint to close removes the name.

    Timeouts are milliseconds (float allowed); ``None`` waits forever, ``0`` never waits.
"""


class _DuplexEndpoint(_Endpoint):
    __slots__ = ()

    def stats(self) -> DuplexStats:  # type: ignore[override]
        """A snapshot of this endpoint's counters."""
        return DuplexStats(*self._stats())  # type: ignore[attr-defined]


class DuplexClient(_DuplexEndpoint, _native.DuplexClient):
    """The client of an in-place duplex channel.

    Zero copy: ``view = c.reserve(n)`` is a writable memoryview of an n-byte frame; fill it, then
    ``seq = c.commit(used)`` publishes the first ``used`` bytes (``commit_tail(used)`` the last
    ``used``, for a buffer built back to front; ``abort()`` drops it). The whole reservation stays
    the frame the server may answer in. ``c.send(data, capacity=0)`` copies a bytes-like object
    into a frame of ``max(len(data), capacity)`` bytes.

    ``resp = c.receive(timeout)`` returns the :class:`DuplexResponse` of the oldest outstanding
    request: a writable buffer over the frame as the server left it (``resp.rejected`` when the
    server refused it, or died or closed holding it). Release it (``release()``, ``with``, or by
    dropping it) to give the frame back: a ring full of outstanding or held frames makes
    ``reserve`` raise BufferFullError at once, since no wait could free them.

    Errors: MessageTooLargeError above ``max_frame_payload``; PeerDeadError when the server
    process died (a new server rejects the requests the dead one had received and answers the
    rest); PeerClosedError; InvalidArgumentError from ``receive`` with nothing outstanding.
    """

    __doc__ = (__doc__ or "") + _DUPLEX_ARGS_DOC
    _role = "client"

    def __init__(
        self,
        name: str,
        *,
        mode: ModeLike = OpenMode.CREATE_OR_OPEN,
        ring_capacity: int = 1 << 20,
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
            **_duplex_kwargs(
                mode=mode,
                ring_capacity=ring_capacity,
                permissions=permissions,
                type_name=type_name,
                type_hash=type_hash,
                type_name_only=type_name_only,
                wait=wait,
                spin_budget_ms=spin_budget_ms,
                liveness_interval_ms=liveness_interval_ms,
                unlink_on_close=unlink_on_close,
            ),
        )
        logger.debug("client attached to duplex channel %r (largest frame %d)", name, self.max_frame_payload)

    def _log_close(self) -> None:
        held = self.held_responses
        if held:
            logger.debug("client of duplex channel %r closing with %d response(s) held", self.name, held)
        else:
            logger.debug("client of duplex channel %r closing", self.name)


class DuplexServer(_DuplexEndpoint, _native.DuplexServer):
    """The server of an in-place duplex channel.

    ``req = s.receive(timeout)`` returns a :class:`DuplexRequest`: a writable buffer over the
    request bytes inside the client's frame (``req.frame``: the whole frame, which a response may
    use entirely). Modify it in place, then ``req.respond()`` hands the same bytes back (or
    ``req.respond(offset, size)`` any part of ``req.frame``), or ``req.reject()``. A request
    dropped or released unanswered is rejected; ``close()`` rejects every unanswered one, so a
    client never waits for a request nobody will answer. Requests may be answered in any order
    and from any thread.

    Errors: PeerDeadError / PeerClosedError once the client went away and every request it sent
    was received; ClosedError after close().
    """

    __doc__ = (__doc__ or "") + _DUPLEX_ARGS_DOC
    _role = "server"

    def __init__(
        self,
        name: str,
        *,
        mode: ModeLike = OpenMode.CREATE_OR_OPEN,
        ring_capacity: int = 1 << 20,
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
            **_duplex_kwargs(
                mode=mode,
                ring_capacity=ring_capacity,
                permissions=permissions,
                type_name=type_name,
                type_hash=type_hash,
                type_name_only=type_name_only,
                wait=wait,
                spin_budget_ms=spin_budget_ms,
                liveness_interval_ms=liveness_interval_ms,
                unlink_on_close=unlink_on_close,
            ),
        )
        logger.debug("server attached to duplex channel %r", name)

    def _log_close(self) -> None:
        n = self.outstanding
        if n:
            logger.debug("server of duplex channel %r closing: rejecting %d unanswered request(s)", self.name, n)
        else:
            logger.debug("server of duplex channel %r closing", self.name)
