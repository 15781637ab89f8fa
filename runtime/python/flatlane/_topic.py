"""TopicPublisher and TopicSubscriber: publish/subscribe over a topic segment (docs/PROTOCOL.md
section 14), zero copy, between any number of Python and C++ processes.

The hot-path methods (``loan``, ``publish``, ``publish_tail``, ``discard``, ``send``, ``receive``)
are the native ones, inherited unchanged so that no Python frame sits between the caller and the
runtime; this module adds option handling, context management, logging and typed stats.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from typing import Optional, Union

from . import _native
from ._channel import ModeLike, OpenMode, WaitLike, WaitStrategy, _Endpoint, _enum_value

logger = logging.getLogger("flatlane")

_MS = 1_000_000  # nanoseconds per millisecond

Sample = _native.Sample
"""A received topic message (see TopicSubscriber.receive): ``data``, ``seq``, ``publisher``,
``numpy()``, ``release()``, ``with``."""


class SubscriberMode(enum.IntEnum):
    """What a subscriber's full queue does to publishers (``flatlane::SubscriberMode``)."""

    DROP_OLDEST = 0
    """Never slows publishers: a full queue loses its oldest message (counted in ``dropped``)."""
    BLOCK_PUBLISHER = 1
    """Publishers wait for queue space, up to their ``block_timeout_ms``."""


SubscriberModeLike = Union[SubscriberMode, str]


@dataclasses.dataclass(frozen=True)
class PublisherStats:
    """Counters of one topic publisher (``flatlane::PublisherStats``)."""

    messages: int
    """Messages published."""
    bytes: int
    """Payload bytes of those messages."""
    no_receiver: int
    """Messages published while no subscriber was attached (and no history kept them)."""
    timeouts: int
    """Deliveries abandoned after ``block_timeout_ms`` (a block_publisher subscriber stayed full)."""
    subscribers: int
    """Subscribers attached now."""
    free_slots: int
    """Slots of this publisher's pool that nobody uses now."""
    slot_count: int
    """Slots of this publisher's pool."""


@dataclasses.dataclass(frozen=True)
class SubscriberStats:
    """Counters of one topic subscriber (``flatlane::SubscriberStats``)."""

    received: int
    """Messages received."""
    bytes: int
    """Payload bytes of those messages."""
    dropped: int
    """Messages lost: the oldest of a full drop_oldest queue, or a publisher timed out on us."""
    held: int
    """Samples held now (received and not released)."""
    queued: int
    """Messages waiting now."""


def _topic_kwargs(
    *,
    mode: ModeLike,
    slot_size: int,
    slot_count: int,
    max_publishers: int,
    max_subscribers: int,
    queue_depth: int,
    max_held: int,
    history: int,
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
        slot_size=slot_size,
        slot_count=slot_count,
        max_publishers=max_publishers,
        max_subscribers=max_subscribers,
        queue_depth=queue_depth,
        max_held=max_held,
        history=history,
        permissions=permissions,
        type_name=type_name,
        type_hash=type_hash,
        type_name_only=type_name_only,
        wait=_enum_value(WaitStrategy, wait, "wait strategy"),
        spin_budget_ns=round(spin_budget_ms * _MS),
        liveness_interval_ns=round(liveness_interval_ms * _MS),
        unlink_on_close=unlink_on_close,
    )


_TOPIC_ARGS_DOC = """
    Topic configuration (used by whoever creates the topic; openers use what the segment says):
        slot_size: largest message in bytes (rounded up to 64).
        slot_count: slots per publisher.
        max_publishers, max_subscribers: members at once (at most 64 and 1024).
        queue_depth: messages waiting per subscriber and publisher (a power of two).
        max_held: samples one subscriber may hold at once.
        history: messages each publisher retains for late joiners (< slot_count).
        permissions: file mode of a created segment.
        type_name, type_hash: message type identity; another type fails with TypeMismatchError.

    Endpoint options:
        name: topic name ([A-Za-z0-9_.-], segment ``/dev/shm/flatlane.<name>``).
        mode: OpenMode or its name ("create", "open", "create_or_open").
        type_name_only: when opening, compare the type name only, not the hash.
        wait, spin_budget_ms, liveness_interval_ms: as for flatlane.Writer.
        unlink_on_close: the last member to leave removes the name.
"""


class TopicPublisher(_Endpoint, _native.TopicPublisher):
    """A publisher of a topic: every message goes to every attached subscriber, zero copy.

    Zero-copy publishing: ``view = pub.loan(n)`` is a writable memoryview of a free slot of this
    publisher's pool; fill it, then ``pub.publish(used)`` (or ``publish_tail(used)`` for a buffer
    built back to front, ``discard()`` to give it back). ``pub.send(obj)`` copies a bytes-like
    object into a slot. Do not write to a view after publish: the slot then belongs to the
    subscribers.

    Timeouts are milliseconds (float allowed); ``None`` waits forever, ``0`` never waits.
    ``block_timeout_ms``: how long ``publish`` waits for a block_publisher subscriber's queue space
    (then BufferFullError; the other subscribers got the message) — ``None`` waits forever.
    """

    __doc__ = (__doc__ or "") + _TOPIC_ARGS_DOC
    _role = "publisher"

    def __init__(
        self,
        name: str,
        *,
        mode: ModeLike = OpenMode.CREATE_OR_OPEN,
        slot_size: int = 4096,
        slot_count: int = 64,
        max_publishers: int = 4,
        max_subscribers: int = 32,
        queue_depth: int = 32,
        max_held: int = 16,
        history: int = 0,
        permissions: int = 0o600,
        type_name: str = "",
        type_hash: int = 0,
        type_name_only: bool = False,
        wait: WaitLike = WaitStrategy.SPIN_THEN_SLEEP,
        spin_budget_ms: float = 0.05,
        liveness_interval_ms: float = 50.0,
        unlink_on_close: bool = True,
        block_timeout_ms: Optional[float] = 1000.0,
    ) -> None:
        super().__init__(
            name,
            **_topic_kwargs(
                mode=mode,
                slot_size=slot_size,
                slot_count=slot_count,
                max_publishers=max_publishers,
                max_subscribers=max_subscribers,
                queue_depth=queue_depth,
                max_held=max_held,
                history=history,
                permissions=permissions,
                type_name=type_name,
                type_hash=type_hash,
                type_name_only=type_name_only,
                wait=wait,
                spin_budget_ms=spin_budget_ms,
                liveness_interval_ms=liveness_interval_ms,
                unlink_on_close=unlink_on_close,
            ),
            block_timeout_ns=-1 if block_timeout_ms is None else round(block_timeout_ms * _MS),
        )
        logger.debug(
            "publisher %d attached to topic %r (slot size %d)", self.index, name, self.max_message
        )

    def stats(self) -> PublisherStats:  # type: ignore[override]
        """A snapshot of this publisher's counters."""
        return PublisherStats(*self._stats())


class TopicSubscriber(_Endpoint, _native.TopicSubscriber):
    """A subscriber of a topic: receives what is published after it attached (a late joiner
    starts at the newest message), plus up to ``history_request`` retained messages per publisher
    first, oldest first.

    ``sample = sub.receive(timeout)`` returns a :class:`Sample` whose ``data`` is a read-only
    memoryview of the publisher's slot. A held slot is never reused; it goes back to its publisher
    on ``sample.release()``, at the end of ``with sub.receive() as s:``, or when the sample is
    dropped, once no view of it is alive. At most ``max_held`` samples may be held at once
    (``receive`` then raises ChannelBusyError). Samples may be released in any order and from any
    thread.

    ``subscriber_mode``: "drop_oldest" (default: never slows publishers; a full queue loses its
    oldest message, counted in ``stats().dropped``) or "block_publisher" (publishers wait for
    queue space).

    Messages of one publisher arrive in order; messages of different publishers interleave.
    """

    __doc__ = (__doc__ or "") + _TOPIC_ARGS_DOC
    _role = "subscriber"

    def __init__(
        self,
        name: str,
        *,
        mode: ModeLike = OpenMode.CREATE_OR_OPEN,
        subscriber_mode: SubscriberModeLike = SubscriberMode.DROP_OLDEST,
        history_request: int = 0,
        slot_size: int = 4096,
        slot_count: int = 64,
        max_publishers: int = 4,
        max_subscribers: int = 32,
        queue_depth: int = 32,
        max_held: int = 16,
        history: int = 0,
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
            **_topic_kwargs(
                mode=mode,
                slot_size=slot_size,
                slot_count=slot_count,
                max_publishers=max_publishers,
                max_subscribers=max_subscribers,
                queue_depth=queue_depth,
                max_held=max_held,
                history=history,
                permissions=permissions,
                type_name=type_name,
                type_hash=type_hash,
                type_name_only=type_name_only,
                wait=wait,
                spin_budget_ms=spin_budget_ms,
                liveness_interval_ms=liveness_interval_ms,
                unlink_on_close=unlink_on_close,
            ),
            subscriber_mode=_enum_value(SubscriberMode, subscriber_mode, "subscriber mode"),
            history_request=history_request,
        )
        logger.debug("subscriber %d attached to topic %r", self.index, name)

    def stats(self) -> SubscriberStats:  # type: ignore[override]
        """A snapshot of this subscriber's counters."""
        return SubscriberStats(*self._stats())

    def _log_close(self) -> None:
        held = self.held_samples
        if held:
            # Not an error: the slots go back to their publishers when the samples are dropped.
            logger.debug("subscriber of topic %r closing with %d sample(s) held", self.name, held)
        else:
            logger.debug("subscriber of topic %r closing", self.name)
