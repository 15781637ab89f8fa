"""ServiceServer and ServiceClient: request/reply (docs/PROTOCOL.md section 15), zero copy,
between Python and C++ processes.

Requests travel on a topic whose publishers are the clients and whose one subscriber is the
server; each client owns a one-to-one reply channel ``<name>.reply.<client>.<epoch>`` that the
server writes. Replies are correlated by request id; a request may get several replies
(streaming: every reply but the last has ``more=True``).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Optional

from . import _native
from ._channel import ModeLike, OpenMode, WaitLike, WaitStrategy, _Endpoint, _enum_value

logger = logging.getLogger("flatlane")

_MS = 1_000_000  # nanoseconds per millisecond

Request = _native.Request
"""A request as the server sees it (see ServiceServer.receive): ``data``, ``id``, ``client``,
``release()``, ``with``."""

Reply = _native.Reply
"""A reply as the client sees it (see ServiceClient.receive): ``data``, ``id``, ``more``,
``release()``, ``with``."""


@dataclasses.dataclass(frozen=True)
class ServerStats:
    """Counters of a service server (``flatlane::ServerStats``)."""

    requests: int
    """Requests received."""
    replies: int
    """Replies sent."""
    dropped_replies: int
    """Replies dropped: the client left or died, or its reply ring was full (a server never waits)."""
    clients: int
    """Reply channels open now (clients answered at least once and not known to be gone)."""


@dataclasses.dataclass(frozen=True)
class ClientStats:
    """Counters of a service client."""

    requests: int
    """Requests sent."""
    replies: int
    """Replies received (skipped late replies to abandoned requests not counted)."""
    held_replies: int
    """Replies held now (received and not released)."""


def _service_kwargs(
    *,
    mode: ModeLike,
    max_clients: int,
    max_request: int,
    request_slots: int,
    queue_depth: int,
    reply_ring: int,
    request_type: "tuple[str, int]",
    reply_type: "tuple[str, int]",
    type_name_only: bool,
    wait: WaitLike,
    spin_budget_ms: float,
    liveness_interval_ms: float,
    send_timeout_ms: Optional[float],
) -> "dict[str, Any]":
    return dict(
        mode=_enum_value(OpenMode, mode, "open mode"),
        max_clients=max_clients,
        max_request=max_request,
        request_slots=request_slots,
        queue_depth=queue_depth,
        reply_ring=reply_ring,
        request_type_name=request_type[0],
        request_type_hash=request_type[1],
        reply_type_name=reply_type[0],
        reply_type_hash=reply_type[1],
        type_name_only=type_name_only,
        wait=_enum_value(WaitStrategy, wait, "wait strategy"),
        spin_budget_ns=round(spin_budget_ms * _MS),
        liveness_interval_ns=round(liveness_interval_ms * _MS),
        send_timeout_ns=-1 if send_timeout_ms is None else round(send_timeout_ms * _MS),
    )


_SERVICE_ARGS_DOC = """
    Args (``flatlane::ServiceOptions``; server and clients must agree, the first to attach creates):
        name: service name; the request topic is ``<name>``.
        mode: OpenMode or its name ("create", "open", "create_or_open").
        max_clients: clients attached at once (at most 64).
        max_request: bytes of request payload.
        request_slots: request slots per client.
        queue_depth: requests waiting per client before its send waits (a power of two).
        reply_ring: bytes of each client's reply ring (a reply may use up to half of it).
        request_type, reply_type: (type name, type hash) of each direction; ("", 0) = untyped.
        type_name_only: when opening, compare type names only, not hashes.
        wait, spin_budget_ms, liveness_interval_ms: as for flatlane.Writer.
        send_timeout_ms: how long a client's send waits while the server's queue is full
            (then BufferFullError); None = forever.
"""


class _ServiceEndpoint(_Endpoint):
    __slots__ = ()

    def __init__(
        self,
        name: str,
        *,
        mode: ModeLike = OpenMode.CREATE_OR_OPEN,
        max_clients: int = 32,
        max_request: int = 4096,
        request_slots: int = 64,
        queue_depth: int = 32,
        reply_ring: int = 1 << 16,
        request_type: "tuple[str, int]" = ("", 0),
        reply_type: "tuple[str, int]" = ("", 0),
        type_name_only: bool = False,
        wait: WaitLike = WaitStrategy.SPIN_THEN_SLEEP,
        spin_budget_ms: float = 0.05,
        liveness_interval_ms: float = 50.0,
        send_timeout_ms: Optional[float] = 1000.0,
    ) -> None:
        super().__init__(  # type: ignore[call-arg]
            name,
            **_service_kwargs(
                mode=mode,
                max_clients=max_clients,
                max_request=max_request,
                request_slots=request_slots,
                queue_depth=queue_depth,
                reply_ring=reply_ring,
                request_type=request_type,
                reply_type=reply_type,
                type_name_only=type_name_only,
                wait=wait,
                spin_budget_ms=spin_budget_ms,
                liveness_interval_ms=liveness_interval_ms,
                send_timeout_ms=send_timeout_ms,
            ),
        )
        logger.debug("%s attached to service %r", self._role, name)


class ServiceServer(_ServiceEndpoint, _native.ServiceServer):
    """The server of a service (one per service): receives requests, answers each on its
    client's reply channel.

    ``req = server.receive(timeout)`` returns a :class:`Request` (``data`` is a read-only
    memoryview of the client's request slot, held until released). Answer with
    ``server.reply(req, data, more=False)``, or zero copy with ``view =
    server.prepare_reply(req, n)`` then ``server.commit_reply(used, more=False)``. Answer before
    releasing the request; ``more=True`` says another reply to the same request follows.

    A server never waits for a client: ``reply`` returns False (and counts the reply in
    ``stats().dropped_replies``) when the client left or died or its reply ring is full;
    ``prepare_reply`` raises PeerClosedError / PeerDeadError / BufferFullError then.
    """

    __doc__ = (__doc__ or "") + _SERVICE_ARGS_DOC
    _role = "server"

    def stats(self) -> ServerStats:  # type: ignore[override]
        """A snapshot of this server's counters."""
        return ServerStats(*self._stats())


class ServiceClient(_ServiceEndpoint, _native.ServiceClient):
    """A client of a service.

    ``rep = client.call(data, timeout)`` sends a request and waits for its reply, a
    :class:`Reply` whose ``data`` is a read-only memoryview of the reply ring (held until
    released). ``rid = client.send(data)`` then ``client.receive(rid, timeout)`` does the same in
    two steps, and reads the further replies of a streaming answer (``rep.more``). Replies to
    requests given up on (a timeout) are skipped by later receives. Zero-copy requests:
    ``view = client.prepare(n)``, fill, ``rid = client.send_prepared(used)``.

    Errors: ChannelNotFoundError when no server is attached at send time, BufferFullError when the
    server's queue stayed full for ``send_timeout_ms``, FlatlaneTimeoutError when no reply came,
    PeerDeadError within ~one liveness interval of the server's death, PeerClosedError when it
    left.
    """

    __doc__ = (__doc__ or "") + _SERVICE_ARGS_DOC
    _role = "client"

    def stats(self) -> ClientStats:  # type: ignore[override]
        """A snapshot of this client's counters (kept by the binding: the C++ client has none)."""
        return ClientStats(*self._stats())
