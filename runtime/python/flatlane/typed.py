"""Typed endpoints: FlatBuffers messages built in the ring and read in place.

``flatlane-gen --lang python`` writes, for a schema ``x.fbs``, flatc's modules and ``x_flatlane.py``
with one :class:`MessageTraits` per message type and one class per channel holding its
:class:`ChannelSpec` and endpoint classes made here (``Publisher``/``Subscriber`` for topics,
``Pusher``/``Puller`` for pipelines, ``Client``/``Server`` for services and duplex channels), plus
a generated builder ``build_<Table>`` and verifier per table::

    from hello_flatlane import Hello, build_Greeting

    pub = Hello.greetings.Publisher()
    pub.send(build_Greeting, text="hi", count=1)   # built in shared memory, published in place

    # or with flatc's builder API, on the same builder (b writes into the frame):
    from hello.Greeting import GreetingStart, GreetingAddCount, GreetingAddText, GreetingEnd

    def greeting(b, n):
        text = b.CreateString("hi")
        GreetingStart(b)
        GreetingAddText(b, text)
        GreetingAddCount(b, n)
        return GreetingEnd(b)

    pub.send(greeting, 1)

    sub = Hello.greetings.Subscriber()
    with sub.recv(timeout=1000) as m:        # m.msg: flatc's Greeting over the frame, no copy
        print(m.msg.Text(), m.seq)

Sending. The builder is a ``flatbuffers.Builder`` whose buffer (``Bytes``) is the writable
memoryview of a reserved ring frame. FlatBuffers build back to front, so the finished message
ends at the end of the reservation and ``Writer.commit_tail`` publishes it where it lies. This
relies on python3-flatbuffers 2.0.8's Builder internals (``Bytes``, ``head``, ``growByteBuffer``);
they are checked when this module is imported and pinned by the tests.

Growth. A message that outgrows its reservation moves once into a larger one (abort, reserve
twice the size up to the largest frame, copy the part built so far), counted in
``stats().regrown``. Beyond a frame, building goes on in heap memory and the finished message is
copied once into the ring: into one frame if it fits, else in chunks (``stats().chunked``). Unlike
C++'s builder, Python's keeps vtables and field offsets in Python objects, not in the buffer, so
the reservation needs only the message's size plus a small margin, learned from growth.

Receiving. ``recv()`` returns a :class:`Received` holding the frame: ``msg`` is flatc's reader
class over a read-only memoryview of the frame (``GetRootAs`` without a copy), and vector fields
come out as zero-copy NumPy arrays through flatc's ``XxxAsNumpy()``. Python's FlatBuffers 2.0.8
has no verifier, so the generator writes one per table (``MessageTraits.verifier``, runtime half
in ``flatlane._fbgen``): every receiver runs it before handing out a reader and reports a
message that fails as :class:`CorruptMessageError` naming the field. With ``verify=False``
(trusted peers) only the root offset and file identifier are checked; beyond that a malformed
message raises Python exceptions when read (``struct.error``, ``ValueError``: every access is
bounds-checked by the memoryview) and can never crash the process.

Timeouts are milliseconds, as everywhere in the package: ``None`` waits forever, ``0`` never waits.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from types import TracebackType
from typing import Any, AsyncIterator, Callable, ClassVar, Generic, Optional, Type, TypeVar, Union

from flatbuffers.builder import Builder, BuilderSizeError

from . import _aio, _native
from ._fbgen import Verifier as _Verifier
from ._fbgen import VerifyError
from ._fbgen import finish as _finish
from ._fbgen import root_offset as _root_offset
from ._channel import ModeLike, OpenMode, Reader, WaitLike, WaitStrategy, Writer, _enum_value
from ._errors import (BufferFullError, ClosedError, CorruptMessageError, Errc, InvalidArgumentError,
                      MessageTooLargeError, PeerClosedError)
from ._topic import SubscriberMode, SubscriberModeLike, PublisherStats

__all__ = [
    "MAX_FLATBUFFER_SIZE",
    "ChannelKind",
    "ChannelSpec",
    "CorruptMessageError",
    "MessageTraits",
    "Overflow",
    "Publisher",
    "Puller",
    "Pusher",
    "Received",
    "ReceivedSample",
    "Receiver",
    "ReceiverStats",
    "Sender",
    "SenderStats",
    "Client",
    "InPlaceCall",
    "InPlaceClient",
    "InPlaceReply",
    "InPlaceServer",
    "InPlaceStats",
    "Server",
    "TypedReply",
    "TypedRequest",
    "Subscriber",
    "SubscriberMode",
    "TopicReceiver",
    "TopicReceiverStats",
    "TopicSender",
    "TopicSenderStats",
    "TypeCheck",
    "VerifyError",
    "mutate",
    "uninitialized_vector",
]

# FlatBuffers cannot address more than 2 GiB - 1.
MAX_FLATBUFFER_SIZE = 0x7FFFFFFF

# The Builder state this module sets and replaces (python3-flatbuffers 2.0.8). A release that adds
# or renames state would be built on silently wrong; refuse to load instead.
_BUILDER_SLOTS = frozenset(
    {"Bytes", "current_vtable", "head", "minalign", "objectEnd", "vtables", "nested", "forceDefaults",
     "finished", "vectorNumElems"}
)
if frozenset(getattr(Builder, "__slots__", ())) != _BUILDER_SLOTS or not callable(
    getattr(Builder, "growByteBuffer", None)
):
    raise ImportError(
        "flatlane.typed builds messages inside ring frames through the internals of python3-flatbuffers "
        f"2.0.8's Builder (slots {sorted(_BUILDER_SLOTS)} and growByteBuffer); this flatbuffers has slots "
        f"{sorted(getattr(Builder, '__slots__', ()))}"
    )


class ChannelKind(str, enum.Enum):
    """The schema's ``flatlane_pattern`` of a channel."""

    TOPIC = "topic"
    SERVICE = "service"
    PIPELINE = "pipeline"
    DUPLEX = "duplex"


class Overflow(str, enum.Enum):
    """What a sender does when the ring is full (schema attribute ``flatlane_overflow``)."""

    BLOCK = "block"
    """Wait for space, up to ``send_timeout`` (default: forever)."""
    DROP_OLDEST = "drop_oldest"
    """Never wait. Topic subscribers default to drop_oldest (a full queue loses its oldest message,
    counted by the subscriber); a sender that finds no free slot drops the *new* message, counts it
    in ``stats().dropped`` and ``send`` returns False (pipelines: queued work is never dropped)."""
    FAIL = "fail"
    """Never wait: ``send`` raises BufferFullError, counted in ``stats().dropped``."""


class TypeCheck(str, enum.Enum):
    """How an endpoint that opens an existing channel compares message types."""

    EXACT = "exact"
    """Type name and type hash must match (default)."""
    NAME_ONLY = "name_only"
    """Only the name: rolling upgrades of wire-compatible schemas (docs/SCHEMA.md)."""


T = TypeVar("T")

OverflowLike = Union[Overflow, str]
TypeCheckLike = Union[TypeCheck, str]


def _str_enum(enum_type: Type[enum.Enum], value: Any, what: str) -> Any:
    try:
        return enum_type(value.lower() if isinstance(value, str) else value)
    except ValueError:
        names = ", ".join(str(m.value) for m in enum_type)
        raise ValueError(f"flatlane: unknown {what} {value!r} (one of: {names})") from None


@dataclasses.dataclass(frozen=True)
class MessageTraits(Generic[T]):
    """Identity of a message type, written by the generator (``MESSAGES`` in ``x_flatlane.py``)."""

    type_name: str
    """Fully qualified name, e.g. ``"robot.Command"``; recorded in the segment header."""
    type_hash: int
    """64-bit hash of the type's exact definition (docs/SCHEMA.md)."""
    file_identifier: Optional[str]
    """The schema's 4-character file_identifier if this is its root type, else None."""
    reader: Type[T]
    """flatc's generated class (``Init(buf, pos)``, field accessors)."""
    verifier: Optional[Callable[..., None]] = None
    """The generated verifier of the type (``_verify_<table>(v, pos, depth)``); receivers run it
    on every message unless built with ``verify=False``. None: only the root offset is checked."""
    builder: Optional[Callable[..., int]] = None
    """The generated ``build_<Table>(b, ...)``: writes the table in one go (see ``flatlane._fbgen``)."""

    def __post_init__(self) -> None:
        if self.file_identifier is not None and len(self.file_identifier.encode()) != 4:
            raise ValueError(f"flatlane: file_identifier of {self.type_name} must be 4 bytes")


@dataclasses.dataclass(frozen=True)
class ChannelSpec:
    """A channel as the schema declares it (the defaults of its endpoints)."""

    name: str
    """Default segment name: ``<namespace>.<service>.<method>``."""
    kind: ChannelKind = ChannelKind.TOPIC
    ring_capacity: int = 1 << 20
    max_message: int = 1 << 32
    chunk_size: int = 0
    """Bytes of a full chunk frame; 0 = the runtime's default."""
    overflow: Overflow = Overflow.BLOCK
    wait: WaitStrategy = WaitStrategy.SPIN_THEN_SLEEP


@dataclasses.dataclass(frozen=True)
class SenderStats:
    sent: int
    """Messages published."""
    dropped: int
    """Messages not sent because the ring was full (overflow fail / drop_oldest)."""
    regrown: int
    """Messages that outgrew their first reservation (moved once)."""
    chunked: int
    """Messages larger than a frame, sent in chunks."""


@dataclasses.dataclass(frozen=True)
class ReceiverStats:
    received: int
    """Messages handed out."""
    rejected: int
    """Messages that failed the root check (consumed, reported as CorruptMessageError)."""


class _Policy:
    """Marker: no explicit timeout, the channel's overflow policy decides."""

    def __repr__(self) -> str:
        return "POLICY"


POLICY: Any = _Policy()

_monotonic = time.monotonic
_ALIGN = 16  # reservations are multiples of 16, so every message ends 16-aligned (force_align)
_INITIAL_HINT = 256
_INITIAL_MARGIN = 16
_MAX_MARGIN = 64 * 1024
_NO_BYTES = bytearray()  # what a builder holds between messages


class _FrameBuilder(Builder):
    """A Builder whose buffer is a reserved ring frame, reused for every message of one sender."""

    __slots__ = ("_sender", "_in_frame", "_grew")

    def __init__(self, sender: "Sender[Any]") -> None:
        Builder.__init__(self, 0)
        self._sender = sender
        self._in_frame = False
        self._grew = False

    def _begin(self, view: memoryview, size: int) -> None:
        # What Builder.__init__ sets, pointed at the frame (2.0.8 has no Clear()).
        self.Bytes = view
        self.head = size
        self.current_vtable = None
        self.minalign = 1
        self.objectEnd = None
        self.vtables.clear()
        self.nested = False
        self.forceDefaults = False
        self.finished = False
        self.vectorNumElems = None
        self._in_frame = True
        self._grew = False

    def _abandon(self) -> None:
        """Gives up the message: the reservation goes back, nothing is published."""
        if self._in_frame:
            self._in_frame = False
            w = self._sender._w
            if not w.closed:
                w.abort()
        self.Bytes = _NO_BYTES

    def growByteBuffer(self) -> None:
        # Called by Builder.Prep while the space in front of `head` is too small; Prep then moves
        # `head` by the growth. Only the bytes from `head` to the end are built (the Python
        # Builder keeps no scratch in the buffer), so only those move.
        s = self._sender
        old = self.Bytes
        old_size = len(old)
        used = old_size - self.head
        self._grew = True
        new_size = max(old_size * 2, 64)
        if self._in_frame and old_size < s._cap:
            new_size = min(new_size, s._cap)
            # Copied out first: the larger reservation starts where the old one did (or at the
            # ring's start when it wraps), so the two overlap.
            tail = bytes(old[self.head :])
            w = s._w
            w.abort()
            self._in_frame = False
            view = w.reserve(new_size, s._remaining())
            self._in_frame = True
            view[new_size - used :] = tail
            self.Bytes = view
            return
        # Larger than a frame: build on in heap memory, sent with one copy when finished.
        if used > s._max_message:
            raise s._too_large(used, "while building")
        if old_size >= Builder.MAX_BUFFER_SIZE:
            raise BuilderSizeError("flatbuffers: cannot grow buffer beyond 2 gigabytes")
        new_size = min(new_size, Builder.MAX_BUFFER_SIZE)
        buf = bytearray(new_size)
        buf[new_size - used :] = old[self.head :]
        if self._in_frame:
            self._in_frame = False
            s._w.abort()
        self.Bytes = buf

    def CreateString(self, s: Union[str, bytes], encoding: str = "utf-8", errors: str = "strict") -> int:
        # flatbuffers 2.0.8 sizes a str by its characters, not its encoded bytes: a non-ASCII
        # string would be cut short (frame) or corrupt the buffer (heap). Encode first.
        if isinstance(s, str):
            s = s.encode(encoding, errors)
        return Builder.CreateString(self, s)


def uninitialized_vector(builder: Builder, dtype: Any, count: int) -> "tuple[int, Any]":
    """Creates a vector of ``count`` scalars and returns ``(offset, array)``: a writable NumPy
    array over the vector's bytes in the builder's buffer (the ring frame while sending), to fill
    in place, like C++'s ``CreateUninitializedVector``. Fill it before the next builder call: a
    builder that grows moves its bytes, and the array would then write to the old place.
    The vector's offset goes into the table like any other (``XxxAddField(builder, offset)``)."""
    import numpy as np

    dt = np.dtype(dtype).newbyteorder("<")  # FlatBuffers are little-endian
    if dt.kind not in "biuf" or dt.shape:
        raise TypeError(f"flatlane: uninitialized_vector needs a scalar dtype, not {dt}")
    builder.StartVector(dt.itemsize, count, dt.alignment)
    builder.head = builder.head - dt.itemsize * count
    array = np.frombuffer(builder.Bytes, dtype=dt, count=count, offset=builder.head)
    return builder.EndVector(), array


_E = TypeVar("_E", bound="_TypedEndpoint")


async def _wait(endpoint: Any, key: Optional[str], op: Callable[[Optional[float]], Any], timeout: Optional[float],
                what: str) -> Any:
    """Awaits a native receive through flatlane.aio: tried at once on the loop thread, else waited
    for in the endpoint's worker thread (GIL released, cancellable within a slice). A message
    taken for a cancelled task is kept (``key``) for the next awaitable receive."""
    return await _aio.wait_op(endpoint, key, op, timeout, _aio._timeout_error(endpoint, what, timeout))


async def _until_closed(receive: Callable[[], Any]) -> AsyncIterator[Any]:
    """``async for``: awaits ``receive()`` until the endpoint is closed or every peer left."""
    while True:
        try:
            item = await receive()
        except (ClosedError, PeerClosedError):
            return
        yield item


class _TypedEndpoint:
    """What senders and receivers share: the bound channel, options, context management."""

    __slots__ = ()
    spec: ClassVar[Optional[ChannelSpec]] = None
    message: ClassVar[Optional[MessageTraits[Any]]] = None
    _kind: ClassVar[Optional[ChannelKind]] = None

    @classmethod
    def of(cls: Type[_E], spec: ChannelSpec, message: MessageTraits[Any]) -> Type[_E]:
        """This endpoint class bound to one channel and message type (what generated code calls)."""
        if cls._kind is not None and spec.kind is not cls._kind:
            raise TypeError(
                f"flatlane: {cls.__name__} needs a {cls._kind.value} channel; "
                f"{spec.name} is a {spec.kind.value} channel"
            )
        return type(
            cls.__name__,
            (cls,),
            {
                "__slots__": (),
                "__qualname__": f"{spec.name}.{cls.__name__}",
                "__doc__": f"{cls.__name__} of channel {spec.name} ({message.type_name}).",
                "spec": spec,
                "message": message,
            },
        )

    @classmethod
    def _bound(cls) -> "tuple[ChannelSpec, MessageTraits[Any]]":
        if cls.spec is None or cls.message is None:
            raise TypeError(
                f"flatlane: {cls.__name__} is not bound to a channel: use the generated class "
                f"(x_flatlane.Service.channel.{cls.__name__}) or {cls.__name__}.of(spec, message)"
            )
        return cls.spec, cls.message

    @staticmethod
    def _endpoint_options(
        spec: ChannelSpec,
        message: MessageTraits[Any],
        name: Optional[str],
        mode: ModeLike,
        ring_capacity: int,
        wait: Optional[WaitLike],
        type_check: TypeCheckLike,
        permissions: int,
        spin_budget_ms: float,
        liveness_interval_ms: float,
        unlink_on_close: bool,
    ) -> "tuple[str, dict[str, Any]]":
        check = _str_enum(TypeCheck, type_check, "type check")
        return name or spec.name, dict(
            mode=mode,
            ring_capacity=ring_capacity or spec.ring_capacity,
            chunk_size=spec.chunk_size,
            permissions=permissions,
            type_name=message.type_name,
            type_hash=message.type_hash,
            type_name_only=check is TypeCheck.NAME_ONLY,
            wait=spec.wait if wait is None else _enum_value(WaitStrategy, wait, "wait strategy"),
            spin_budget_ms=spin_budget_ms,
            liveness_interval_ms=liveness_interval_ms,
            unlink_on_close=unlink_on_close,
        )

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
        raise NotImplementedError


class Sender(_TypedEndpoint, Generic[T]):
    """Builds each message directly in a reserved ring frame and publishes it in place.

    Not thread-safe: one builder is reused for every message; give each thread its own sender
    or serialise ``send`` calls.

    Options (all keyword, all optional; zero / None means "as the schema says"):
        name: segment name (default: the channel's qualified name).
        mode: OpenMode or its name.
        ring_capacity: ring bytes when creating.
        max_message: largest message (bytes) this sender publishes.
        overflow: Overflow or its name, for a full ring.
        wait: WaitStrategy or its name.
        type_check: TypeCheck.EXACT (default) or NAME_ONLY.
        size_hint: bytes reserved for the first message (default 256, then adaptive).
        send_timeout: ms to wait for ring space with overflow = block (None: forever).
        permissions, spin_budget_ms, liveness_interval_ms, unlink_on_close: as for Writer.
    """

    __slots__ = (
        "_w", "_name", "_builder", "_fid", "_max_message", "_cap", "_overflow", "_send_timeout",
        "_hint", "_margin", "_timeout", "_deadline", "_sent", "_dropped", "_regrown", "_chunked",
    )

    def __init__(
        self,
        *,
        name: Optional[str] = None,
        mode: ModeLike = OpenMode.CREATE_OR_OPEN,
        ring_capacity: int = 0,
        max_message: int = 0,
        overflow: Optional[OverflowLike] = None,
        wait: Optional[WaitLike] = None,
        type_check: TypeCheckLike = TypeCheck.EXACT,
        size_hint: int = 0,
        send_timeout: Optional[float] = None,
        permissions: int = 0o600,
        spin_budget_ms: float = 0.05,
        liveness_interval_ms: float = 50.0,
        unlink_on_close: bool = True,
    ) -> None:
        spec, message = self._bound()
        if send_timeout is not None and send_timeout < 0:
            raise ValueError("flatlane: send_timeout must be >= 0 milliseconds, or None to wait forever")
        self._overflow: Overflow = (
            spec.overflow if overflow is None else _str_enum(Overflow, overflow, "overflow policy")
        )
        seg_name, opts = self._endpoint_options(
            spec, message, name, mode, ring_capacity, wait, type_check, permissions, spin_budget_ms,
            liveness_interval_ms, unlink_on_close,
        )
        self._w = Writer(seg_name, **opts)
        self._name = seg_name
        self._fid = None if message.file_identifier is None else message.file_identifier.encode()
        self._max_message = min(max_message or spec.max_message, MAX_FLATBUFFER_SIZE)
        self._cap = self._w.max_frame_payload & ~(_ALIGN - 1)
        self._send_timeout = send_timeout
        self._margin = _INITIAL_MARGIN
        self._hint = self._clamp(size_hint or _INITIAL_HINT)
        self._timeout: Optional[float] = None
        self._deadline = 0.0
        self._sent = self._dropped = self._regrown = self._chunked = 0
        self._builder = _FrameBuilder(self)

    def send(self, build: Callable[..., int], *args: Any, timeout: Any = POLICY, **fields: Any) -> bool:
        """Builds and publishes one message.

        ``build(builder, *args, **fields)`` runs once with a ``flatbuffers.Builder`` writing into
        the frame and returns the root table's offset (what flatc's ``XxxEnd(builder)`` or a
        generated ``build_<Table>`` returns); the message is finished with the type's file
        identifier. Passing the message's data as arguments spares a closure per message:
        ``send(build_Tick, seq=1, payload=data)``.

        Returns True when the message was published, False when overflow = drop_oldest dropped it
        (ring full). ``timeout`` (ms; None = forever) overrides the overflow policy with an
        explicit wait for ring space.

        Raises BufferFullError (ring full: waited send_timeout, or overflow = fail),
        MessageTooLargeError (above max_message; nothing published), PeerDeadError,
        PeerClosedError, ClosedError. An exception raised by ``build`` propagates after the
        reservation is given back: nothing is published and the sender stays usable.
        """
        if timeout is not POLICY:
            return self._send(build, args, fields, timeout)
        overflow = self._overflow
        if overflow is Overflow.BLOCK:
            return self._send(build, args, fields, self._send_timeout)
        try:
            return self._send(build, args, fields, 0)
        except BufferFullError:
            self._dropped += 1
            if overflow is Overflow.DROP_OLDEST:
                return False
            raise

    def _send(self, build: Callable[..., int], args: "tuple[Any, ...]", fields: "dict[str, Any]",
              timeout: Optional[float]) -> bool:
        w = self._w
        b = self._builder
        self._timeout = timeout
        if timeout:  # finite and > 0: every reservation of this message shares one deadline
            self._deadline = _monotonic() + timeout / 1000.0
        hint = self._hint
        b._begin(w.reserve(hint, timeout), hint)
        try:
            _finish(b, build(b, *args, **fields), self._fid)
        except BaseException:
            b._abandon()
            raise
        buf = b.Bytes
        size = len(buf) - b.head
        grew = b._grew
        if grew:
            self._regrown += 1
        if size > self._max_message:
            b._abandon()
            raise self._too_large(size, "")
        if b._in_frame:
            b._in_frame = False
            w.commit_tail(size)
            b.Bytes = _NO_BYTES
        else:
            # Built in heap memory: one copy, into one frame if it fits, else in chunks.
            b.Bytes = _NO_BYTES
            w.send(memoryview(buf)[len(buf) - size :], timeout=self._remaining())
            if size > w.max_frame_payload:
                self._chunked += 1
        self._sent += 1
        # Next reservation: this message's size plus a margin that doubles whenever one proved
        # too small, so a message shape that grows stops moving after a message or two.
        if grew and self._margin < _MAX_MARGIN:
            self._margin *= 2
        n = (size + self._margin + _ALIGN - 1) & ~(_ALIGN - 1)
        self._hint = n if n <= self._cap else self._cap
        return True

    def _remaining(self) -> Optional[float]:
        """Milliseconds left of this message's wait (None: forever)."""
        t = self._timeout
        if not t:
            return t
        left = (self._deadline - _monotonic()) * 1000.0
        return left if left > 0.0 else 0.0

    def _clamp(self, n: int) -> int:
        n = (n + _ALIGN - 1) & ~(_ALIGN - 1)
        return min(max(n, 64), self._cap)

    def _too_large(self, size: int, when: str) -> MessageTooLargeError:
        what = f"{size} bytes {when}" if when else f"{size} bytes"
        exc = MessageTooLargeError(
            f"flatlane: message_too_large: send() on channel '{self._name}': the message is {what}, "
            f"above max_message {self._max_message}; nothing was published"
        )
        exc.errc = Errc.MESSAGE_TOO_LARGE
        exc.channel = self._name
        exc.role = "writer"
        return exc

    def stats(self) -> SenderStats:
        return SenderStats(self._sent, self._dropped, self._regrown, self._chunked)

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def name(self) -> str:
        return self._name

    @property
    def writer(self) -> Writer:
        """The underlying channel writer."""
        return self._w

    @property
    def peer_attached(self) -> bool:
        return self._w.peer_attached

    @property
    def closed(self) -> bool:
        return self._w.closed

    def close(self) -> None:
        """Detach from the channel (idempotent)."""
        self._builder._abandon()
        self._w.close()

    def __repr__(self) -> str:
        state = "closed" if self._w.closed else "open"
        return f"<flatlane {type(self).__qualname__} {self._name!r} {state}>"


class Received(Generic[T]):
    """One received message, holding its frame until :meth:`release` (or the end of ``with``).

    ``msg`` is flatc's reader over the frame; ``bytes`` the whole FlatBuffer (read-only
    memoryview); ``seq`` its sequence number; ``zero_copy`` whether it lies in the ring (False for a
    message reassembled from chunks). After release the memoryview under ``msg`` and ``bytes`` is
    released too, so a stale read raises ValueError instead of seeing recycled ring bytes. NumPy
    arrays taken from the message (``XxxAsNumpy()``) hold the frame themselves: they stay valid,
    and the frame goes back to the writer when the last of them is dropped.
    """

    __slots__ = ("msg", "_frame", "_view")

    def __init__(self, frame: Any, view: memoryview, msg: T) -> None:
        self.msg = msg
        self._frame = frame
        self._view: Optional[memoryview] = view

    @property
    def seq(self) -> int:
        return self._frame.seq

    @property
    def bytes(self) -> memoryview:
        if self._view is None:
            raise ValueError(f"flatlane: message {self._frame.seq} was released")
        return self._view

    @property
    def zero_copy(self) -> bool:
        return self._frame.zero_copy

    @property
    def released(self) -> bool:
        return self._view is None

    def release(self) -> None:
        """Gives the frame back to the writer (idempotent)."""
        view = self._view
        if view is None:
            return
        self._view = None
        try:
            view.release()
        except BufferError:
            pass  # something exported the view itself: the frame goes back when that goes
        self._frame.release()

    def __enter__(self) -> "Received[T]":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.release()

    def __len__(self) -> int:
        return len(self._frame)

    def __repr__(self) -> str:
        state = " released" if self._view is None else ""
        return f"<flatlane.Received {type(self.msg).__name__} seq={self._frame.seq} size={len(self._frame)}{state}>"


class Receiver(_TypedEndpoint, Generic[T]):
    """Hands out received messages as flatc readers over the frame, without copying.

    Options (keyword, optional): name, mode, ring_capacity, max_message (largest message
    accepted; larger chunked messages raise MessageTooLargeError unread), wait, type_check,
    permissions, spin_budget_ms, liveness_interval_ms, unlink_on_close, verify (default True: every message
    passes the generated verifier before a reader is handed out; False for trusted peers).
    """

    __slots__ = ("_flatlane_aio_state", "_r", "_name", "_cls", "_fid", "_verify", "_received", "_rejected")

    def __init__(
        self,
        *,
        name: Optional[str] = None,
        mode: ModeLike = OpenMode.CREATE_OR_OPEN,
        ring_capacity: int = 0,
        max_message: int = 0,
        wait: Optional[WaitLike] = None,
        type_check: TypeCheckLike = TypeCheck.EXACT,
        permissions: int = 0o600,
        spin_budget_ms: float = 0.05,
        liveness_interval_ms: float = 50.0,
        unlink_on_close: bool = True,
        verify: bool = True,
    ) -> None:
        spec, message = self._bound()
        seg_name, opts = self._endpoint_options(
            spec, message, name, mode, ring_capacity, wait, type_check, permissions, spin_budget_ms,
            liveness_interval_ms, unlink_on_close,
        )
        max_size = min(max_message or spec.max_message, MAX_FLATBUFFER_SIZE)
        self._r = Reader(seg_name, max_message_size=max_size, **opts)
        self._name = seg_name
        self._cls = message.reader
        self._fid = None if message.file_identifier is None else message.file_identifier.encode()
        self._verify = message.verifier if verify else None
        self._received = self._rejected = 0

    def recv(self, timeout: Optional[float] = None) -> Received[T]:
        """The next message (ms; None waits forever, 0 never waits).

        Raises FlatlaneTimeoutError, PeerDeadError / PeerClosedError (after everything sent was
        read), ClosedError, MessageTooLargeError (a chunked message above max_message), and
        CorruptMessageError (not a FlatBuffer of this type: consumed, counted in
        ``stats().rejected``).
        """
        return self._take(self._r.read_message(timeout))

    async def recv_async(self, timeout: Optional[float] = None) -> Received[T]:
        """``await``-able recv(): the event loop runs on while it waits (see flatlane.aio)."""
        r = self._r
        return self._take(await _wait(self, "read_message", lambda t: r.read_message(t), timeout, "recv_async()"))

    def __aiter__(self) -> AsyncIterator[Received[T]]:
        """``async for m in receiver``: until it is closed or the writer left."""
        return _until_closed(self.recv_async)

    def _take(self, frame: Any) -> Received[T]:
        view = frame.data
        root = _root_ok(view, len(view), self._fid, self._verify)
        if root.__class__ is int:
            msg = self._cls()
            msg.Init(view, root)
            self._received += 1
            return Received(frame, view, msg)
        self._rejected += 1
        exc = _corrupt(self._name, self.message.type_name if self.message else "?", frame, view, root)
        exc.role = "reader"
        raise exc

    def stats(self) -> ReceiverStats:
        return ReceiverStats(self._received, self._rejected)

    @property
    def name(self) -> str:
        return self._name

    @property
    def reader(self) -> Reader:
        """The underlying channel reader."""
        return self._r

    @property
    def peer_attached(self) -> bool:
        return self._r.peer_attached

    @property
    def closed(self) -> bool:
        return self._r.closed

    def close(self) -> None:
        """Detach from the channel (idempotent). Messages still held stay readable until dropped."""
        self._r.close()

    def __repr__(self) -> str:
        state = "closed" if self._r.closed else "open"
        return f"<flatlane {type(self).__qualname__} {self._name!r} {state}>"


# --- topics and pipelines -------------------------------------------------------------------------
#
# Generated Publisher/Subscriber (topics) and Pusher/Puller (pipelines) sit on the runtime's
# publish/subscribe topics (flatlane.TopicPublisher / TopicSubscriber, docs/PROTOCOL.md section 14):
# several publishers, many subscribers; a pipeline is the same segment as a work queue (each
# message to exactly one puller). The schema's settings map onto the topic exactly as in C++
# (runtime/cpp/include/flatlane/typed/topic_endpoints.hpp), so either language may create it:
#
#   slot size   max_message (64 KiB when the schema leaves the 4 GiB default), rounded up to 64
#   slot count  ring_capacity // slot size, at least 8, at most 4096 (per publisher)
#   overflow    block: wait up to send_timeout; subscribers default to block_publisher
#               fail: never wait, BufferFullError; drop_oldest: never wait, subscribers default
#               to drop_oldest, a sender without a free slot drops the new message (send -> False)
#
# Topics do not chunk: a message that does not fit a slot raises MessageTooLargeError.

_DEFAULT_TOPIC_SLOT = 64 * 1024
_MIN_TOPIC_SLOTS = 8
_MAX_DERIVED_TOPIC_SLOTS = 4096
_WORK_QUEUE = 1
_FAN_OUT = 0


def _topic_slot_size(spec: ChannelSpec, max_message: int) -> int:
    m = max_message or spec.max_message
    slot = _DEFAULT_TOPIC_SLOT if m >= 1 << 32 else min(max(m, 64), 1 << 30)
    return (slot + 63) & ~63


@dataclasses.dataclass(frozen=True)
class TopicSenderStats:
    sent: int
    """Messages published."""
    dropped: int
    """Sends that found no room (overflow fail / drop_oldest)."""
    too_large: int
    """Sends that failed with MessageTooLargeError."""


@dataclasses.dataclass(frozen=True)
class TopicReceiverStats:
    received: int
    """Messages handed out."""
    rejected: int
    """Messages that failed the root check (consumed, reported as CorruptMessageError)."""
    dropped: int
    """Messages this subscriber lost: its drop_oldest queue was full, or a publisher gave up on its
    full block_publisher queue."""
    queued: int
    """Messages waiting now."""
    held: int
    """Messages received and not released yet."""


class _TopicEndpoint(_TypedEndpoint):
    __slots__ = ()

    @classmethod
    def _topic_kwargs(
        cls,
        *,
        name: Optional[str],
        mode: ModeLike,
        ring_capacity: int,
        max_message: int,
        overflow: Overflow,
        wait: Optional[WaitLike],
        type_check: TypeCheckLike,
        send_timeout: Optional[float],
        slot_count: int,
        max_publishers: int,
        max_subscribers: int,
        queue_depth: int,
        max_held: int,
        history: int,
        subscriber_mode: Optional[SubscriberModeLike],
        history_request: int,
        permissions: int,
        spin_budget_ms: float,
        liveness_interval_ms: float,
        unlink_on_close: bool,
    ) -> "tuple[str, dict[str, Any]]":
        spec, message = cls._bound()
        check = _str_enum(TypeCheck, type_check, "type check")
        slot = _topic_slot_size(spec, max_message)
        ring = ring_capacity or spec.ring_capacity
        work = spec.kind is ChannelKind.PIPELINE
        if subscriber_mode is None:
            sub_mode = SubscriberMode.DROP_OLDEST if overflow is Overflow.DROP_OLDEST else SubscriberMode.BLOCK_PUBLISHER
        else:
            sub_mode = _enum_value(SubscriberMode, subscriber_mode, "subscriber mode")
        if overflow is Overflow.BLOCK:
            block_ns = -1 if send_timeout is None else round(send_timeout * 1_000_000)
        else:
            block_ns = 0
        return name or spec.name, dict(
            mode=_enum_value(OpenMode, mode, "open mode"),
            slot_size=slot,
            slot_count=slot_count or min(max(ring // slot, _MIN_TOPIC_SLOTS), _MAX_DERIVED_TOPIC_SLOTS),
            max_publishers=max_publishers or 4,
            max_subscribers=max_subscribers or 32,
            queue_depth=queue_depth or 32,
            max_held=max_held or 16,
            history=0 if work else history,
            permissions=permissions,
            type_name=message.type_name,
            type_hash=message.type_hash,
            type_name_only=check is TypeCheck.NAME_ONLY,
            wait=_enum_value(WaitStrategy, spec.wait if wait is None else wait, "wait strategy"),
            spin_budget_ns=round(spin_budget_ms * 1_000_000),
            liveness_interval_ns=round(liveness_interval_ms * 1_000_000),
            unlink_on_close=unlink_on_close,
            subscriber_mode=int(sub_mode),
            history_request=0 if work else history_request,
            block_timeout_ns=block_ns,
            distribution=_WORK_QUEUE if work else _FAN_OUT,
        )

    @classmethod
    def _check_distribution(cls, endpoint: Any, name: str) -> None:
        spec, _ = cls._bound()
        want = spec.kind is ChannelKind.PIPELINE
        if bool(endpoint.work_queue) != want:

            def what(work: bool) -> str:
                return "a push/pull work queue (pipeline)" if work else "a publish/subscribe topic"

            endpoint.close()
            exc = InvalidArgumentError(
                f"flatlane: invalid_argument: '{name}' is {what(not want)}, this endpoint expects {what(want)}"
            )
            exc.errc = Errc.INVALID_ARGUMENT
            exc.channel = name
            raise exc


class _SlotBuilder(_FrameBuilder):
    """A Builder whose buffer is a whole loaned topic slot: the message is built back to front in
    the slot and published where it ends. A slot cannot grow: a message that does not fit raises
    MessageTooLargeError (topics do not chunk)."""

    __slots__ = ()

    def _abandon(self) -> None:
        if self._in_frame:
            self._in_frame = False
            self._sender._give_back()
        self.Bytes = _NO_BYTES

    def growByteBuffer(self) -> None:
        s = self._sender
        raise s._too_large(len(self.Bytes) - self.head, "built so far, and more did not fit the slot")


class TopicSender(_TopicEndpoint, Generic[T]):
    """Builds each message directly in a loaned topic slot and publishes it in place (the base of
    the generated ``Publisher`` and ``Pusher``).

    Not thread-safe: one builder is reused for every message; give each thread its own sender.

    Options (all keyword, all optional; zero / None means "as the schema says"):
        name: segment name (default: the channel's qualified name).
        mode: OpenMode or its name.
        ring_capacity: slot bytes per publisher when creating (slot_count = ring_capacity // slot).
        max_message: the slot size, the largest message (default: the schema's, or 64 KiB).
        overflow: Overflow or its name (see the module notes above).
        wait: WaitStrategy or its name.
        type_check: TypeCheck.EXACT (default) or NAME_ONLY.
        send_timeout: ms to wait for a slot / a blocking subscriber with overflow = block
            (None: forever).
        slot_count, max_publishers, max_subscribers, queue_depth, max_held, history: topic
            geometry when creating (history: messages retained for late joiners, topics only).
        permissions, spin_budget_ms, liveness_interval_ms, unlink_on_close: as for TopicPublisher.
    """

    __slots__ = ("_p", "_name", "_builder", "_fid", "_slot", "_overflow", "_send_timeout", "_sent",
                 "_dropped", "_too_large_count")

    def __init__(
        self,
        *,
        name: Optional[str] = None,
        mode: ModeLike = OpenMode.CREATE_OR_OPEN,
        ring_capacity: int = 0,
        max_message: int = 0,
        overflow: Optional[OverflowLike] = None,
        wait: Optional[WaitLike] = None,
        type_check: TypeCheckLike = TypeCheck.EXACT,
        send_timeout: Optional[float] = None,
        slot_count: int = 0,
        max_publishers: int = 0,
        max_subscribers: int = 0,
        queue_depth: int = 0,
        max_held: int = 0,
        history: int = 0,
        permissions: int = 0o600,
        spin_budget_ms: float = 0.05,
        liveness_interval_ms: float = 50.0,
        unlink_on_close: bool = True,
    ) -> None:
        spec, message = self._bound()
        if send_timeout is not None and send_timeout < 0:
            raise ValueError("flatlane: send_timeout must be >= 0 milliseconds, or None to wait forever")
        self._overflow: Overflow = (
            spec.overflow if overflow is None else _str_enum(Overflow, overflow, "overflow policy")
        )
        seg_name, kwargs = self._topic_kwargs(
            name=name, mode=mode, ring_capacity=ring_capacity, max_message=max_message,
            overflow=self._overflow, wait=wait, type_check=type_check, send_timeout=send_timeout,
            slot_count=slot_count, max_publishers=max_publishers, max_subscribers=max_subscribers,
            queue_depth=queue_depth, max_held=max_held, history=history, subscriber_mode=None,
            history_request=0, permissions=permissions, spin_budget_ms=spin_budget_ms,
            liveness_interval_ms=liveness_interval_ms, unlink_on_close=unlink_on_close,
        )
        self._p = _native.TopicPublisher(seg_name, **kwargs)
        self._check_distribution(self._p, seg_name)
        self._name = seg_name
        self._fid = None if message.file_identifier is None else message.file_identifier.encode()
        self._slot = self._p.max_message
        self._send_timeout = send_timeout
        self._sent = self._dropped = self._too_large_count = 0
        self._builder = _SlotBuilder(self)  # type: ignore[arg-type]

    def send(self, build: Callable[..., int], *args: Any, timeout: Any = POLICY, **fields: Any) -> bool:
        """Builds and publishes one message.

        ``build(builder, *args, **fields)`` runs once with a ``flatbuffers.Builder`` writing into
        the slot and returns the root table's offset (what flatc's ``XxxEnd(builder)`` or a
        generated ``build_<Table>`` returns), e.g. ``send(build_Tick, seq=1, payload=data)``; the
        message is finished with the type's file identifier.

        Returns True when the message was published, False when overflow = drop_oldest found no
        free slot and dropped it. ``timeout`` (ms; None = forever) overrides the overflow policy with
        an explicit wait for a free slot.

        Raises BufferFullError (no slot / a blocking subscriber's queue stayed full: waited
        send_timeout, or overflow = fail; on a fan-out topic the other subscribers got the
        message), MessageTooLargeError (does not fit a slot; nothing published), ClosedError. An
        exception raised by ``build`` propagates after the slot is given back.
        """
        if timeout is not POLICY:
            return self._send(build, args, fields, timeout)
        overflow = self._overflow
        if overflow is Overflow.BLOCK:
            return self._send(build, args, fields, self._send_timeout)
        try:
            return self._send(build, args, fields, 0)
        except BufferFullError:
            self._dropped += 1
            if overflow is Overflow.DROP_OLDEST:
                return False
            raise

    def _send(self, build: Callable[..., int], args: "tuple[Any, ...]", fields: "dict[str, Any]",
              timeout: Optional[float]) -> bool:
        p = self._p
        b = self._builder
        slot = self._slot
        b._begin(p.loan(slot, timeout), slot)
        try:
            _finish(b, build(b, *args, **fields), self._fid)
        except BaseException:
            b._abandon()
            raise
        size = slot - b.head
        b._in_frame = False
        b.Bytes = _NO_BYTES
        self._sent += 1  # handed out, even if a blocking subscriber below misses it
        p.publish_tail(size)
        return True

    def _give_back(self) -> None:
        if not self._p.closed:
            self._p.discard()

    def _too_large(self, size: int, when: str) -> MessageTooLargeError:
        self._too_large_count += 1
        exc = MessageTooLargeError(
            f"flatlane: message_too_large: send() on channel '{self._name}': {size} bytes {when}; a "
            f"message must fit one slot of {self._slot} bytes (the channel's max_message; topics and "
            f"pipelines do not chunk); nothing was published"
        )
        exc.errc = Errc.MESSAGE_TOO_LARGE
        exc.channel = self._name
        exc.role = "publisher"
        return exc

    def stats(self) -> TopicSenderStats:
        return TopicSenderStats(self._sent, self._dropped, self._too_large_count)

    def topic_stats(self) -> PublisherStats:
        """The topic publisher's counters (messages, subscribers, free slots, ...)."""
        return PublisherStats(*self._p._stats())

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def max_message(self) -> int:
        """Bytes of a slot: the largest FlatBuffer this sender can publish."""
        return self._slot

    @property
    def subscriber_count(self) -> int:
        return self._p.subscriber_count

    @property
    def peer_attached(self) -> bool:
        return self._p.subscriber_count != 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def publisher(self) -> Any:
        """The underlying native topic publisher."""
        return self._p

    @property
    def closed(self) -> bool:
        return self._p.closed

    def close(self) -> None:
        """Detach from the topic (idempotent); subscribers see PeerClosedError once they have read
        what is queued."""
        self._builder._abandon()
        self._p.close()

    def __repr__(self) -> str:
        state = "closed" if self._p.closed else "open"
        return f"<flatlane {type(self).__qualname__} {self._name!r} {state}>"


class ReceivedSample(Received[T]):
    """A received topic message: ``msg`` is flatc's reader over the publisher's slot (no copy),
    ``bytes`` the FlatBuffer, ``seq`` the publisher's sequence number, ``publisher`` its block
    index. The slot goes back to the publisher on :meth:`release`, at the end of ``with``, or when
    the last NumPy array taken from the message is dropped."""

    __slots__ = ()

    @property
    def zero_copy(self) -> bool:
        return True  # topics never reassemble

    @property
    def publisher(self) -> int:
        return self._frame.publisher

    def __repr__(self) -> str:
        state = " released" if self._view is None else ""
        return f"<flatlane.ReceivedSample {type(self.msg).__name__} seq={self._frame.seq}{state}>"


def _corrupt(name: str, type_name: str, frame: Any, view: memoryview, why: str,
             what: str = "", call: str = "recv()") -> CorruptMessageError:
    """The error for a message that failed ``_root_ok`` (``why``); gives the message back."""
    label = what or f"message {frame.seq}"
    view.release()
    frame.release()
    exc = CorruptMessageError(
        f"flatlane: corrupt: {call} on channel '{name}': {label} is not a {type_name} FlatBuffer: {why}"
    )
    exc.errc = Errc.CORRUPT
    exc.channel = name
    exc.role = "subscriber"
    return exc


def _root_ok(view: memoryview, n: int, fid: Optional[bytes], verify: Optional[Callable[..., None]]) -> Any:
    """The root table's position (an int) when the message of ``n`` bytes is a FlatBuffer of the
    type: its generated verifier passes (``verify``), or without one, the root offset lies inside
    the message, 4-aligned, and the file identifier matches. Else why not (a str)."""
    root = _root_offset(view, n, fid)
    if root.__class__ is not int:
        return root
    if verify is not None:
        try:
            verify(_Verifier(view, n), root, 0)
        except VerifyError as e:
            return str(e)
    return root


class TopicReceiver(_TopicEndpoint, Generic[T]):
    """Hands out received topic messages as flatc readers over the slot, without copying (the base
    of the generated ``Subscriber`` and ``Puller``).

    Options (keyword, optional): name, mode, ring_capacity, max_message, overflow, wait, type_check,
    slot_count, max_publishers, max_subscribers, queue_depth, max_held, history (geometry when this
    end creates the topic; as for TopicSender), and
        subscriber_mode: "block_publisher" (publishers wait for this subscriber: nothing lost) or
            "drop_oldest" (never slows publishers; a full queue loses its oldest message, counted
            in ``stats().dropped``). Default from the overflow policy: drop_oldest -> drop_oldest,
            else block_publisher. Pipelines never drop queued work.
        history_request: retained messages to receive first, per publisher (topics).
        verify: True (default): every message passes the generated verifier before a reader is
            handed out; False for trusted peers (root offset and identifier only).
    """

    __slots__ = ("_flatlane_aio_state", "_s", "_name", "_cls", "_fid", "_verify", "_received", "_rejected")

    def __init__(
        self,
        *,
        name: Optional[str] = None,
        mode: ModeLike = OpenMode.CREATE_OR_OPEN,
        ring_capacity: int = 0,
        max_message: int = 0,
        overflow: Optional[OverflowLike] = None,
        wait: Optional[WaitLike] = None,
        type_check: TypeCheckLike = TypeCheck.EXACT,
        subscriber_mode: Optional[SubscriberModeLike] = None,
        history_request: int = 0,
        slot_count: int = 0,
        max_publishers: int = 0,
        max_subscribers: int = 0,
        queue_depth: int = 0,
        max_held: int = 0,
        history: int = 0,
        permissions: int = 0o600,
        spin_budget_ms: float = 0.05,
        liveness_interval_ms: float = 50.0,
        unlink_on_close: bool = True,
        verify: bool = True,
    ) -> None:
        spec, message = self._bound()
        policy = spec.overflow if overflow is None else _str_enum(Overflow, overflow, "overflow policy")
        seg_name, kwargs = self._topic_kwargs(
            name=name, mode=mode, ring_capacity=ring_capacity, max_message=max_message,
            overflow=policy, wait=wait, type_check=type_check, send_timeout=None,
            slot_count=slot_count, max_publishers=max_publishers, max_subscribers=max_subscribers,
            queue_depth=queue_depth, max_held=max_held, history=history, subscriber_mode=subscriber_mode,
            history_request=history_request, permissions=permissions, spin_budget_ms=spin_budget_ms,
            liveness_interval_ms=liveness_interval_ms, unlink_on_close=unlink_on_close,
        )
        self._s = _native.TopicSubscriber(seg_name, **kwargs)
        self._check_distribution(self._s, seg_name)
        self._name = seg_name
        self._cls = message.reader
        self._fid = None if message.file_identifier is None else message.file_identifier.encode()
        self._verify = message.verifier if verify else None
        self._received = self._rejected = 0

    def recv(self, timeout: Optional[float] = None) -> ReceivedSample[T]:
        """The next message (ms; None waits forever, 0 never waits).

        Raises FlatlaneTimeoutError, PeerDeadError / PeerClosedError (every publisher that attached
        died / left and nothing is queued), ChannelBusyError (max_held samples held), ClosedError,
        and CorruptMessageError (not a FlatBuffer of this type: released, counted in
        ``stats().rejected``).
        """
        return self._take(self._s.receive(timeout))

    async def recv_async(self, timeout: Optional[float] = None) -> ReceivedSample[T]:
        """``await``-able recv(): the event loop runs on while it waits (see flatlane.aio)."""
        s = self._s
        return self._take(await _wait(self, "receive", lambda t: s.receive(t), timeout, "recv_async()"))

    def __aiter__(self) -> AsyncIterator[ReceivedSample[T]]:
        """``async for m in subscriber``: until it is closed or every publisher left."""
        return _until_closed(self.recv_async)

    def _take(self, sample: Any) -> ReceivedSample[T]:
        view = sample.data
        root = _root_ok(view, len(view), self._fid, self._verify)
        if root.__class__ is int:
            msg = self._cls()
            msg.Init(view, root)
            self._received += 1
            return ReceivedSample(sample, view, msg)
        self._rejected += 1
        raise _corrupt(self._name, self.message.type_name if self.message else "?", sample, view, root)

    def stats(self) -> TopicReceiverStats:
        received, _bytes, dropped, held, queued = self._s._stats()
        return TopicReceiverStats(self._received, self._rejected, dropped, queued, held)

    @property
    def dropped(self) -> int:
        return self._s._stats()[2]

    @property
    def name(self) -> str:
        return self._name

    @property
    def subscriber(self) -> Any:
        """The underlying native topic subscriber."""
        return self._s

    @property
    def closed(self) -> bool:
        return self._s.closed

    def close(self) -> None:
        """Detach from the topic (idempotent). Messages still held stay readable until dropped."""
        self._s.close()

    def __repr__(self) -> str:
        state = "closed" if self._s.closed else "open"
        return f"<flatlane {type(self).__qualname__} {self._name!r} {state}>"


class Publisher(TopicSender[T]):
    """Topic sender: every attached subscriber gets every message."""

    __slots__ = ()
    _kind = ChannelKind.TOPIC


class Subscriber(TopicReceiver[T]):
    """Topic receiver."""

    __slots__ = ()
    _kind = ChannelKind.TOPIC


class Pusher(TopicSender[T]):
    """Pipeline sender: each message goes to exactly one puller; work waits while none is attached."""

    __slots__ = ()
    _kind = ChannelKind.PIPELINE


class Puller(TopicReceiver[T]):
    """Pipeline receiver (one of any number of workers)."""

    __slots__ = ()
    _kind = ChannelKind.PIPELINE


# --- services ---------------------------------------------------------------------------------------
#
# Generated Client/Server for request/reply channels, over flatlane.ServiceClient / ServiceServer
# (docs/PROTOCOL.md section 15), with the same settings as C++'s (typed/service.hpp): requests are
# built in the client's request slot and replies in the client's reply ring, back to front, and
# published where they end; both sides check the root offset (and file identifier). A message
# must fit max_message (64 KiB when the schema leaves the 4 GiB default); services do not chunk.

_DEFAULT_SERVICE_MAX = 64 * 1024




class TypedRequest(Received[T]):
    """A request as the server sees it: ``msg`` is flatc's reader over the request slot (no copy),
    ``id`` and ``client`` identify it for :meth:`Server.reply`. Held until released (or ``with``)."""

    __slots__ = ()

    @property
    def id(self) -> int:
        return self._frame.id

    @property
    def client(self) -> int:
        return self._frame.client

    @property
    def seq(self) -> int:
        return self._frame.id

    @property
    def zero_copy(self) -> bool:
        return True

    @property
    def raw(self) -> Any:
        """The native request (flatlane.Request)."""
        return self._frame

    def __repr__(self) -> str:
        state = " released" if self._view is None else ""
        return f"<flatlane.TypedRequest {type(self.msg).__name__} id={self._frame.id}{state}>"


class TypedReply(Received[T]):
    """A reply as the client sees it: ``msg`` over the client's reply ring, ``id`` of its request,
    ``more`` True while a streaming method sends further replies."""

    __slots__ = ()

    @property
    def id(self) -> int:
        return self._frame.id

    @property
    def seq(self) -> int:
        return self._frame.id

    @property
    def more(self) -> bool:
        return self._frame.more

    @property
    def zero_copy(self) -> bool:
        return True

    def __repr__(self) -> str:
        state = " released" if self._view is None else ""
        return f"<flatlane.TypedReply {type(self.msg).__name__} id={self._frame.id} more={self._frame.more}{state}>"


class _TypedService:
    """What Client and Server share: the bound channel and its two message types."""

    __slots__ = ()
    spec: ClassVar[Optional[ChannelSpec]] = None
    request: ClassVar[Optional[MessageTraits[Any]]] = None
    response: ClassVar[Optional[MessageTraits[Any]]] = None

    @classmethod
    def of(cls, spec: ChannelSpec, request: MessageTraits[Any], response: MessageTraits[Any]) -> Any:
        """This endpoint class bound to one service channel (what generated code calls)."""
        if spec.kind is not ChannelKind.SERVICE:
            raise TypeError(
                f"flatlane: {cls.__name__} needs a service channel; {spec.name} is a {spec.kind.value} channel"
            )
        return type(
            cls.__name__,
            (cls,),
            {
                "__slots__": (),
                "__qualname__": f"{spec.name}.{cls.__name__}",
                "__doc__": f"{cls.__name__} of service method {spec.name} "
                           f"({request.type_name} -> {response.type_name}).",
                "spec": spec,
                "request": request,
                "response": response,
            },
        )

    @classmethod
    def _bound(cls) -> "tuple[ChannelSpec, MessageTraits[Any], MessageTraits[Any]]":
        if cls.spec is None or cls.request is None or cls.response is None:
            raise TypeError(
                f"flatlane: {cls.__name__} is not bound to a service channel: use the generated class "
                f"(x_flatlane.Service.method.{cls.__name__}) or {cls.__name__}.of(spec, request, response)"
            )
        return cls.spec, cls.request, cls.response

    @classmethod
    def _service_kwargs(
        cls,
        name: Optional[str],
        mode: ModeLike,
        ring_capacity: int,
        max_message: int,
        wait: Optional[WaitLike],
        type_check: TypeCheckLike,
        send_timeout: Optional[float],
        spin_budget_ms: float,
        liveness_interval_ms: float,
    ) -> "tuple[str, dict[str, Any], int]":
        spec, req, resp = cls._bound()
        check = _str_enum(TypeCheck, type_check, "type check")
        schema_max = _DEFAULT_SERVICE_MAX if spec.max_message >= 1 << 32 else spec.max_message
        limit = min(max_message or schema_max, 1 << 30)
        max_request = (limit + 15) & ~15
        ring = ring_capacity or spec.ring_capacity
        one_reply = 1 << (2 * (max_request + 64) - 1).bit_length()  # bit_ceil: one reply fits a frame
        kwargs: "dict[str, Any]" = dict(
            mode=_enum_value(OpenMode, mode, "open mode"),
            max_request=max_request,
            reply_ring=max(ring, one_reply),
            request_type_name=req.type_name,
            request_type_hash=req.type_hash,
            reply_type_name=resp.type_name,
            reply_type_hash=resp.type_hash,
            type_name_only=check is TypeCheck.NAME_ONLY,
            wait=_enum_value(WaitStrategy, spec.wait if wait is None else wait, "wait strategy"),
            spin_budget_ns=round(spin_budget_ms * 1_000_000),
            liveness_interval_ns=round(liveness_interval_ms * 1_000_000),
        )
        if send_timeout is not None:
            if send_timeout < 0:
                raise ValueError("flatlane: send_timeout must be >= 0 milliseconds, or None for the default")
            kwargs["send_timeout_ns"] = round(send_timeout * 1_000_000)
        return name or spec.name, kwargs, max_request

    def __enter__(self: Any) -> Any:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError

    def _too_large(self, size: int, when: str) -> MessageTooLargeError:
        name = getattr(self, "_name", "?")
        exc = MessageTooLargeError(
            f"flatlane: message_too_large: {self._what} on service '{name}': {size} bytes {when}; a "
            f"message must fit max_message {self._limit} bytes (services do not chunk); nothing was sent"
        )
        exc.errc = Errc.MESSAGE_TOO_LARGE
        exc.channel = name
        return exc


class Client(_TypedService, Generic[T]):
    """Calls one service method: builds each request in its request slot and reads the replies in
    place (verified root). Not thread-safe (one builder); give each thread its own client.

    Options (keyword, optional): name, mode, ring_capacity (reply ring bytes), max_message, wait,
    type_check, send_timeout (ms a send waits while the server's queue is full; None = the
    runtime's default), spin_budget_ms, liveness_interval_ms, verify (default True: every reply
    passes the generated verifier; False for trusted peers).
    """

    __slots__ = ("_flatlane_aio_state", "_c", "_name", "_builder", "_fid", "_rfid", "_verify", "_limit", "_what")

    def __init__(
        self,
        *,
        name: Optional[str] = None,
        mode: ModeLike = OpenMode.CREATE_OR_OPEN,
        ring_capacity: int = 0,
        max_message: int = 0,
        wait: Optional[WaitLike] = None,
        type_check: TypeCheckLike = TypeCheck.EXACT,
        send_timeout: Optional[float] = None,
        spin_budget_ms: float = 0.05,
        liveness_interval_ms: float = 50.0,
        verify: bool = True,
    ) -> None:
        spec, req, resp = self._bound()
        seg_name, kwargs, limit = self._service_kwargs(
            name, mode, ring_capacity, max_message, wait, type_check, send_timeout, spin_budget_ms,
            liveness_interval_ms,
        )
        self._c = _native.ServiceClient(seg_name, **kwargs)
        self._name = seg_name
        self._limit = limit
        self._what = "send()"
        self._fid = None if req.file_identifier is None else req.file_identifier.encode()
        self._rfid = None if resp.file_identifier is None else resp.file_identifier.encode()
        self._verify = resp.verifier if verify else None
        self._builder = _SlotBuilder(self)  # type: ignore[arg-type]

    def _give_back(self) -> None:
        if not self._c.closed:
            self._c.abort_prepared()

    def send(self, build: Callable[..., int], *args: Any, **fields: Any) -> int:
        """Builds one request in the request slot (``build(builder, *args)`` returns the root
        offset) and sends it; returns its id. Raises MessageTooLargeError (nothing sent),
        ChannelNotFoundError (no server), BufferFullError, ClosedError."""
        c = self._c
        b = self._builder
        view = c.prepare(c.max_request)
        size = len(view)
        b._begin(view, size)
        try:
            _finish(b, build(b, *args, **fields), self._fid)
        except BaseException:
            b._abandon()
            raise
        used = size - b.head
        b._in_frame = False
        b.Bytes = _NO_BYTES
        return c.send_prepared_tail(used)

    def receive(self, id: int, timeout: Optional[float] = None) -> TypedReply[Any]:
        """The next reply to request ``id`` (streaming methods: call again while ``more``).
        Raises FlatlaneTimeoutError, PeerDeadError (the server died), CorruptMessageError."""
        return self._take(self._c.receive(id, timeout), id)

    async def receive_async(self, id: int, timeout: Optional[float] = None) -> TypedReply[Any]:
        """``await``-able receive(id). Cancelled: a reply taken meanwhile is kept for the next
        receive_async of the same request."""
        c = self._c
        return self._take(await _wait(self, f"reply {id}", lambda t: c.receive(id, t), timeout, "receive_async()"), id)

    async def call_async(self, build: Callable[..., int], *args: Any, timeout: Optional[float] = None,
                         **fields: Any) -> TypedReply[Any]:
        """send (at once) + ``await receive_async``: the (first) reply to one request."""
        return await self.receive_async(self.send(build, *args, **fields), timeout)

    def _take(self, r: Any, id: int) -> TypedReply[Any]:
        view = r.data
        root = _root_ok(view, len(view), self._rfid, self._verify)
        if root.__class__ is int:
            msg = self.response.reader()  # type: ignore[union-attr]
            msg.Init(view, root)
            return TypedReply(r, view, msg)
        raise _corrupt(self._name, self.response.type_name if self.response else "?", r, view, root,
                       what=f"reply to request {id}", call="receive()")

    def call(self, build: Callable[..., int], *args: Any, timeout: Optional[float] = None, **fields: Any) -> TypedReply[Any]:
        """send + receive: the (first) reply to one request."""
        return self.receive(self.send(build, *args, **fields), timeout)

    @property
    def name(self) -> str:
        return self._name

    @property
    def max_message(self) -> int:
        return self._limit

    @property
    def raw(self) -> Any:
        """The underlying native service client."""
        return self._c

    @property
    def closed(self) -> bool:
        return self._c.closed

    def close(self) -> None:
        self._builder._abandon()
        self._c.close()

    def __repr__(self) -> str:
        return f"<flatlane {type(self).__qualname__} {self._name!r} {'closed' if self._c.closed else 'open'}>"


class Server(_TypedService, Generic[T]):
    """Serves one service method: hands out verified requests in place and builds each reply in
    the calling client's reply ring. A client that is gone or whose ring is full loses the reply
    (counted by the runtime); the server never waits for a client.

    Options as for :class:`Client`.
    """

    __slots__ = ("_flatlane_aio_state", "_s", "_name", "_builder", "_fid", "_rfid", "_verify", "_limit", "_what", "_rejected")

    def __init__(
        self,
        *,
        name: Optional[str] = None,
        mode: ModeLike = OpenMode.CREATE_OR_OPEN,
        ring_capacity: int = 0,
        max_message: int = 0,
        wait: Optional[WaitLike] = None,
        type_check: TypeCheckLike = TypeCheck.EXACT,
        spin_budget_ms: float = 0.05,
        liveness_interval_ms: float = 50.0,
        verify: bool = True,
    ) -> None:
        spec, req, resp = self._bound()
        seg_name, kwargs, limit = self._service_kwargs(
            name, mode, ring_capacity, max_message, wait, type_check, None, spin_budget_ms, liveness_interval_ms,
        )
        self._s = _native.ServiceServer(seg_name, **kwargs)
        self._name = seg_name
        self._limit = limit
        self._what = "reply()"
        self._rejected = 0
        self._fid = None if resp.file_identifier is None else resp.file_identifier.encode()
        self._rfid = None if req.file_identifier is None else req.file_identifier.encode()
        self._verify = req.verifier if verify else None
        self._builder = _SlotBuilder(self)  # type: ignore[arg-type]

    def _give_back(self) -> None:
        if not self._s.closed:
            self._s.abort_reply()

    def receive(self, timeout: Optional[float] = None) -> TypedRequest[Any]:
        """The next request. One that fails the root check is released and reported as
        CorruptMessageError (counted in ``rejected``); the next one comes through normally."""
        return self._take(self._s.receive(timeout))

    async def receive_async(self, timeout: Optional[float] = None) -> TypedRequest[Any]:
        """``await``-able receive(): the event loop runs on while it waits (see flatlane.aio)."""
        s = self._s
        return self._take(await _wait(self, "receive", lambda t: s.receive(t), timeout, "receive_async()"))

    def __aiter__(self) -> AsyncIterator[TypedRequest[Any]]:
        """``async for req in server``: until it is closed."""
        return _until_closed(self.receive_async)

    def _take(self, r: Any) -> TypedRequest[Any]:
        view = r.data
        root = _root_ok(view, len(view), self._rfid, self._verify)
        if root.__class__ is int:
            msg = self.request.reader()  # type: ignore[union-attr]
            msg.Init(view, root)
            return TypedRequest(r, view, msg)
        self._rejected += 1
        rid = r.id
        raise _corrupt(self._name, self.request.type_name if self.request else "?", r, view, root,
                       what=f"request {rid}", call="receive()")

    def reply(self, request: TypedRequest[Any], build: Callable[..., int], *args: Any, more: bool = False,
              **fields: Any) -> None:
        """Builds the reply to ``request`` in its client's reply ring and sends it. ``more``: another
        reply to this request follows (streaming methods)."""
        s = self._s
        b = self._builder
        view = s.prepare_reply(request._frame, self._limit)
        size = len(view)
        b._begin(view, size)
        try:
            _finish(b, build(b, *args, **fields), self._fid)
        except BaseException:
            b._abandon()
            raise
        used = size - b.head
        b._in_frame = False
        b.Bytes = _NO_BYTES
        s.commit_reply_tail(used, more)

    @property
    def rejected(self) -> int:
        return self._rejected

    @property
    def name(self) -> str:
        return self._name

    @property
    def max_message(self) -> int:
        return self._limit

    @property
    def raw(self) -> Any:
        """The underlying native service server."""
        return self._s

    @property
    def closed(self) -> bool:
        return self._s.closed

    def close(self) -> None:
        self._builder._abandon()
        self._s.close()

    def __repr__(self) -> str:
        return f"<flatlane {type(self).__qualname__} {self._name!r} {'closed' if self._s.closed else 'open'}>"


# --- in-place duplex --------------------------------------------------------------------------------
#
# Generated InPlaceClient/InPlaceServer for duplex channels, over flatlane.DuplexClient /
# DuplexServer (docs/PROTOCOL.md section 16), as C++'s typed/duplex.hpp: the client builds the
# FlatBuffer back to front in a reserved frame and publishes it where it ends (commit_tail); the
# server gets flatc's reader over the request bytes, writable, modifies them where they lie (a
# vector through a writable NumPy array, a scalar through :func:`mutate`) and hands the same bytes
# back; the client reads them in place. Both sides check the root offset (and file identifier).
# A message must fit one frame: it is never chunked, since a copy could not be modified in place.

_DUPLEX_ALIGN = 32  # duplex frames are 32-aligned; reservations are multiples of 32 so ends are too


class _ScalarProbe:
    """Stands in for a reader's ``_tab`` while one accessor runs, to learn where a scalar field
    lies: flatc's Python accessors read a present scalar as ``_tab.Get(flags, o + _tab.Pos)``."""

    __slots__ = ("_t", "hit")

    def __init__(self, table: Any) -> None:
        self._t = table
        self.hit: Optional["tuple[Any, int]"] = None

    @property
    def Bytes(self) -> Any:
        return self._t.Bytes

    @property
    def Pos(self) -> int:
        return self._t.Pos

    def Offset(self, vtable_offset: int) -> int:
        return self._t.Offset(vtable_offset)

    def Get(self, flags: Any, off: int) -> Any:
        if self.hit is None:
            self.hit = (flags, off)
        return self._t.Get(flags, off)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"flatlane.typed.mutate: not a scalar field accessor (it uses _tab.{name})")


def _accessor_name(field: str) -> str:
    """flatc's Python accessor of a schema field: ``pixel_data`` -> ``PixelData``."""
    if field[:1].isupper():
        return field
    return "".join(p[:1].upper() + p[1:] for p in field.split("_"))


def mutate(msg: Any, field: str, value: Any) -> bool:
    """Sets scalar ``field`` of flatc's reader ``msg`` (a table over a writable buffer, e.g. an
    :class:`InPlaceCall`'s ``msg`` or a nested table of it) in place, like C++'s
    ``mutate_<field>()``. ``field`` is the schema name (``checksum``) or flatc's accessor
    (``Checksum``). Returns False when the field is absent from the buffer (it holds the default
    and has no bytes to patch: rebuild the message instead). Raises struct.error for a value out of
    the field's range, TypeError for a read-only buffer, AttributeError for a non-scalar field."""
    accessor = getattr(type(msg), _accessor_name(field), None)
    if accessor is None or not callable(accessor):
        raise AttributeError(f"flatlane.typed.mutate: {type(msg).__name__} has no field {field!r}")
    table = msg._tab
    probe = _ScalarProbe(table)
    shadow = type(msg).__new__(type(msg))
    shadow._tab = probe
    current = accessor(shadow)
    if probe.hit is None:
        if isinstance(current, (int, float, bool)):
            return False  # absent: the default, nothing to patch
        raise AttributeError(f"flatlane.typed.mutate: {type(msg).__name__}.{field} is not a scalar field")
    flags, off = probe.hit
    if isinstance(current, bool):
        value = bool(value)
    packed = flags.packer_type.pack(flags.py_type(value))  # first: a failed pack_into leaves zeros
    table.Bytes[off : off + len(packed)] = packed
    return True


@dataclasses.dataclass(frozen=True)
class InPlaceStats:
    """Counters of a typed duplex endpoint (C++'s ``InPlaceStats``)."""

    sent: int
    """Client: requests built and published."""
    received: int
    """Client: replies received; server: calls handed out."""
    rejected: int
    """Client: replies that came back rejected; server: requests that failed the root check."""
    corrupt: int
    """Client: replies that failed the root check."""
    regrown: int
    """Client: messages that outgrew their first reservation (moved once)."""


class InPlaceReply(Received[T]):
    """The client's view of an answered request: ``msg`` is flatc's reader over the FlatBuffer as
    the server left it, in the client's own frame (no copy; None when ``rejected``). The frame goes
    back to the ring on :meth:`release`, at the end of ``with``, or when dropped."""

    __slots__ = ()

    @property
    def rejected(self) -> bool:
        return self._frame.rejected

    @property
    def zero_copy(self) -> bool:
        return True

    @property
    def raw(self) -> Any:
        """The native response (flatlane.DuplexResponse)."""
        return self._frame

    def numpy_view(self, field: str) -> Any:
        """Field ``field``'s vector as a NumPy array over the frame (zero copy, writable)."""
        return _vector_view(self, field)

    def __repr__(self) -> str:
        state = " rejected" if self._frame.rejected else " released" if self._view is None else ""
        name = type(self.msg).__name__ if self.msg is not None else "-"
        return f"<flatlane.InPlaceReply {name} seq={self._frame.seq}{state}>"


class InPlaceCall(Received[T]):
    """The server's view of a request: ``msg`` is flatc's reader over the request bytes in the
    client's frame, over a writable buffer. Modify it in place: ``numpy_view("data")`` (or flatc's
    ``msg.DataAsNumpy()``) is a writable NumPy array over a vector field, ``mutate("checksum", v)``
    patches a scalar field. Then :meth:`respond` (or ``InPlaceServer.respond(call)``) hands the same
    bytes back, or :meth:`reject`. Released or dropped unanswered, it is rejected."""

    __slots__ = ()

    @property
    def zero_copy(self) -> bool:
        return True

    @property
    def raw(self) -> Any:
        """The native request (flatlane.DuplexRequest)."""
        return self._frame

    @property
    def answered(self) -> bool:
        return self._frame.answered

    def numpy_view(self, field: str) -> Any:
        """Field ``field``'s vector (schema name or flatc accessor) as a writable NumPy array over
        the frame: writes go straight into the message the client will read back."""
        return _vector_view(self, field)

    def mutate(self, field: str, value: Any) -> bool:
        """Sets scalar field ``field`` of the root table in place (see :func:`mutate`)."""
        if self._view is None:
            raise ValueError(f"flatlane: call {self._frame.seq} was released")
        return mutate(self.msg, field, value)

    def respond(self) -> None:
        """Hands the (modified) message back to the client, where it lies."""
        self._frame.respond()
        self.release()

    def reject(self) -> None:
        """Rejects the request (the client's reply is ``rejected``)."""
        self._frame.reject()
        self.release()

    def __repr__(self) -> str:
        state = " answered" if self._frame.answered else " released" if self._view is None else ""
        return f"<flatlane.InPlaceCall {type(self.msg).__name__} seq={self._frame.seq}{state}>"


def _vector_view(m: Received[Any], field: str) -> Any:
    if m._view is None or m.msg is None:
        raise ValueError(f"flatlane: message {m._frame.seq} was released or rejected")
    name = _accessor_name(field) + "AsNumpy"
    fn = getattr(m.msg, name, None)
    if fn is None:
        raise AttributeError(f"flatlane: {type(m.msg).__name__} has no scalar vector field {field!r} ({name})")
    a = fn()
    if isinstance(a, int):  # flatc returns 0 for an absent vector
        raise ValueError(f"flatlane: vector {field!r} is absent from message {m._frame.seq}")
    return a


class _DuplexBuilder(_FrameBuilder):
    """A Builder whose buffer is the client's reserved frame: the message is built back to front
    and published where it ends. Growth moves it once into a larger reservation, up to a frame."""

    __slots__ = ()

    def _abandon(self) -> None:
        if self._in_frame:
            self._in_frame = False
            c = self._sender._c
            if not c.closed:
                c.abort()
        self.Bytes = _NO_BYTES

    def growByteBuffer(self) -> None:
        s = self._sender
        old = self.Bytes
        old_size = len(old)
        used = old_size - self.head
        if old_size >= s._cap:
            raise s._too_large(used, "built so far, and more did not fit a frame")
        self._grew = True
        new_size = min(max(old_size * 2, 64), s._cap)
        tail = bytes(old[self.head :])  # the larger reservation overlaps the old one
        c = s._c
        c.abort()
        self._in_frame = False
        view = c.reserve(new_size, s._timeout)
        self._in_frame = True
        view[new_size - used :] = tail
        self.Bytes = view


class _InPlaceEndpoint(_TypedEndpoint):
    __slots__ = ()
    _kind = ChannelKind.DUPLEX

    @classmethod
    def _duplex_kwargs(
        cls,
        name: Optional[str],
        mode: ModeLike,
        ring_capacity: int,
        wait: Optional[WaitLike],
        type_check: TypeCheckLike,
        permissions: int,
        spin_budget_ms: float,
        liveness_interval_ms: float,
        unlink_on_close: bool,
    ) -> "tuple[str, dict[str, Any]]":
        spec, message = cls._bound()
        check = _str_enum(TypeCheck, type_check, "type check")
        return name or spec.name, dict(
            mode=_enum_value(OpenMode, mode, "open mode"),
            ring_capacity=ring_capacity or spec.ring_capacity,
            permissions=permissions,
            type_name=message.type_name,
            type_hash=message.type_hash,
            type_name_only=check is TypeCheck.NAME_ONLY,
            wait=_enum_value(WaitStrategy, spec.wait if wait is None else wait, "wait strategy"),
            spin_budget_ns=round(spin_budget_ms * 1_000_000),
            liveness_interval_ns=round(liveness_interval_ms * 1_000_000),
            unlink_on_close=unlink_on_close,
        )

    def _corrupt(self, r: Any, view: memoryview, why: str, what: str, role: str) -> CorruptMessageError:
        exc = _corrupt(self._name, self.message.type_name if self.message else "?", r, view, why,  # type: ignore[attr-defined]
                       what=what, call="receive()")
        exc.args = (exc.args[0].replace(f"on channel '{self._name}'", f"on duplex channel '{self._name}'"),)  # type: ignore[attr-defined]
        exc.role = role
        return exc


class InPlaceClient(_InPlaceEndpoint, Generic[T]):
    """The client of a generated duplex channel: builds each request in a reserved frame and reads
    the server's answer in the same frame (checked root).

    ``seq = client.send(build, *args)`` (``build(builder, *args)`` returns the root offset, as for
    Publisher.send); ``with client.receive(timeout) as reply:`` gives ``reply.msg`` (None when
    ``reply.rejected``). Replies come in request order. Not thread-safe (one builder).

    Options (keyword, optional; zero / None means "as the schema says"): name, mode, ring_capacity,
    max_message (at most a frame), wait, type_check, send_timeout (ms a reservation waits for frames
    a previous client left; a ring full of our own requests raises BufferFullError at once),
    size_hint (first reservation), permissions, spin_budget_ms, liveness_interval_ms,
    unlink_on_close, verify (default True: every reply passes the generated verifier).
    """

    __slots__ = ("_flatlane_aio_state", "_c", "_name", "_builder", "_fid", "_verify", "_cap", "_max_message", "_timeout", "_hint",
                 "_sent", "_received", "_rejected", "_corrupt_count", "_regrown")

    def __init__(
        self,
        *,
        name: Optional[str] = None,
        mode: ModeLike = OpenMode.CREATE_OR_OPEN,
        ring_capacity: int = 0,
        max_message: int = 0,
        wait: Optional[WaitLike] = None,
        type_check: TypeCheckLike = TypeCheck.EXACT,
        send_timeout: Optional[float] = None,
        size_hint: int = 0,
        permissions: int = 0o600,
        spin_budget_ms: float = 0.05,
        liveness_interval_ms: float = 50.0,
        unlink_on_close: bool = True,
        verify: bool = True,
    ) -> None:
        spec, message = self._bound()
        if send_timeout is not None and send_timeout < 0:
            raise ValueError("flatlane: send_timeout must be >= 0 milliseconds, or None to wait forever")
        seg_name, kwargs = self._duplex_kwargs(name, mode, ring_capacity, wait, type_check, permissions,
                                               spin_budget_ms, liveness_interval_ms, unlink_on_close)
        self._c = _native.DuplexClient(seg_name, **kwargs)
        self._name = seg_name
        self._fid = None if message.file_identifier is None else message.file_identifier.encode()
        self._verify = message.verifier if verify else None
        frame = self._c.max_frame_payload & ~(_DUPLEX_ALIGN - 1)
        self._max_message = min(max_message or spec.max_message, frame)
        self._cap = min((self._max_message + _DUPLEX_ALIGN - 1) & ~(_DUPLEX_ALIGN - 1), frame)
        self._timeout = send_timeout
        self._hint = size_hint or _INITIAL_HINT
        self._sent = self._received = self._rejected = self._corrupt_count = self._regrown = 0
        self._builder = _DuplexBuilder(self)  # type: ignore[arg-type]

    def _too_large(self, size: int, when: str) -> MessageTooLargeError:
        exc = MessageTooLargeError(
            f"flatlane: message_too_large: send() on duplex channel '{self._name}': {size} bytes {when}; a "
            f"message must fit max_message {self._max_message} bytes (one frame: duplex messages are "
            f"never chunked); nothing was sent"
        )
        exc.errc = Errc.MESSAGE_TOO_LARGE
        exc.channel = self._name
        exc.role = "client"
        return exc

    def send(self, build: Callable[..., int], *args: Any, **fields: Any) -> int:
        """Builds one request in a frame (``build(builder, *args)`` returns the root offset) and
        publishes it where it lies; returns its seq. Raises MessageTooLargeError (nothing sent),
        BufferFullError (the ring is full of requests whose replies were not received and
        released), ClosedError."""
        c = self._c
        b = self._builder
        n = min((self._hint + _DUPLEX_ALIGN - 1) & ~(_DUPLEX_ALIGN - 1), self._cap)
        view = c.reserve(n, self._timeout)
        b._begin(view, n)
        try:
            _finish(b, build(b, *args, **fields), self._fid)
        except BaseException:
            b._abandon()
            raise
        used = len(b.Bytes) - b.head
        if b._grew:
            self._regrown += 1
        if used > self._max_message:
            b._abandon()
            raise self._too_large(used, "built")
        b._in_frame = False
        b.Bytes = _NO_BYTES
        self._hint = used + 64  # the next request is likely the same size
        self._sent += 1
        return c.commit_tail(used)

    def receive(self, timeout: Optional[float] = None) -> InPlaceReply[Any]:
        """The reply to the oldest outstanding request, read in place (``msg`` None when
        ``rejected``). Raises FlatlaneTimeoutError, PeerDeadError (the server died; a new server
        rejects what the dead one held), PeerClosedError, CorruptMessageError (the frame is
        released), InvalidArgumentError (nothing outstanding)."""
        return self._take(self._c.receive(timeout))

    async def receive_async(self, timeout: Optional[float] = None) -> InPlaceReply[Any]:
        """``await``-able receive(): the event loop runs on while it waits (see flatlane.aio)."""
        c = self._c
        return self._take(await _wait(self, "receive", lambda t: c.receive(t), timeout, "receive_async()"))

    def _take(self, r: Any) -> InPlaceReply[Any]:
        self._received += 1
        view = memoryview(r)
        if r.rejected:
            self._rejected += 1
            return InPlaceReply(r, view, None)
        n = len(view)
        root = _root_ok(view, n, self._fid, self._verify)
        if root.__class__ is int:
            msg = self.message.reader()  # type: ignore[union-attr]
            msg.Init(view, root)
            return InPlaceReply(r, view, msg)
        self._corrupt_count += 1
        raise self._corrupt(r, view, root, f"reply to request {r.seq}", "client")

    def stats(self) -> InPlaceStats:
        return InPlaceStats(self._sent, self._received, self._rejected, self._corrupt_count, self._regrown)

    @property
    def outstanding(self) -> int:
        return self._c.outstanding

    @property
    def peer_attached(self) -> bool:
        return self._c.peer_attached

    @property
    def name(self) -> str:
        return self._name

    @property
    def max_message(self) -> int:
        return self._max_message

    @property
    def raw(self) -> Any:
        """The underlying native duplex client."""
        return self._c

    @property
    def closed(self) -> bool:
        return self._c.closed

    def close(self) -> None:
        self._builder._abandon()
        self._c.close()

    def __repr__(self) -> str:
        return f"<flatlane {type(self).__qualname__} {self._name!r} {'closed' if self._c.closed else 'open'}>"


class InPlaceServer(_InPlaceEndpoint, Generic[T]):
    """The server of a generated duplex channel: hands out each request as an :class:`InPlaceCall`,
    flatc's reader over the client's frame, writable; modify it in place and :meth:`respond`.

    Options (keyword, optional): name, mode, ring_capacity, wait, type_check, permissions,
    spin_budget_ms, liveness_interval_ms, unlink_on_close, verify (default True: every request
    passes the generated verifier; one that fails is rejected back to the client).
    """

    __slots__ = ("_flatlane_aio_state", "_s", "_name", "_fid", "_verify", "_received", "_rejected")

    def __init__(
        self,
        *,
        name: Optional[str] = None,
        mode: ModeLike = OpenMode.CREATE_OR_OPEN,
        ring_capacity: int = 0,
        wait: Optional[WaitLike] = None,
        type_check: TypeCheckLike = TypeCheck.EXACT,
        permissions: int = 0o600,
        spin_budget_ms: float = 0.05,
        liveness_interval_ms: float = 50.0,
        unlink_on_close: bool = True,
        verify: bool = True,
    ) -> None:
        spec, message = self._bound()
        seg_name, kwargs = self._duplex_kwargs(name, mode, ring_capacity, wait, type_check, permissions,
                                               spin_budget_ms, liveness_interval_ms, unlink_on_close)
        self._s = _native.DuplexServer(seg_name, **kwargs)
        self._name = seg_name
        self._fid = None if message.file_identifier is None else message.file_identifier.encode()
        self._verify = message.verifier if verify else None
        self._received = self._rejected = 0

    def receive(self, timeout: Optional[float] = None) -> InPlaceCall[Any]:
        """The next request. One that fails the root check is rejected and reported as
        CorruptMessageError (counted in ``stats().rejected``); the next comes through normally."""
        return self._take(self._s.receive(timeout))

    async def receive_async(self, timeout: Optional[float] = None) -> InPlaceCall[Any]:
        """``await``-able receive(): the event loop runs on while it waits (see flatlane.aio)."""
        s = self._s
        return self._take(await _wait(self, "receive", lambda t: s.receive(t), timeout, "receive_async()"))

    def __aiter__(self) -> AsyncIterator[InPlaceCall[Any]]:
        """``async for call in server``: until it is closed."""
        return _until_closed(self.receive_async)

    def _take(self, r: Any) -> InPlaceCall[Any]:
        view = memoryview(r)  # writable: the reader's NumPy views and mutate() write in place
        n = len(view)
        root = _root_ok(view, n, self._fid, self._verify)
        if root.__class__ is int:
            self._received += 1
            msg = self.message.reader()  # type: ignore[union-attr]
            msg.Init(view, root)
            return InPlaceCall(r, view, msg)
        self._rejected += 1
        raise self._corrupt(r, view, root, f"request {r.seq}", "server")

    def respond(self, call: InPlaceCall[Any]) -> None:
        """Hands the call's (modified) message back where it lies."""
        call.respond()

    def reject(self, call: InPlaceCall[Any]) -> None:
        call.reject()

    def stats(self) -> InPlaceStats:
        return InPlaceStats(0, self._received, self._rejected, 0, 0)

    @property
    def outstanding(self) -> int:
        return self._s.outstanding

    @property
    def peer_attached(self) -> bool:
        return self._s.peer_attached

    @property
    def name(self) -> str:
        return self._name

    @property
    def raw(self) -> Any:
        """The underlying native duplex server."""
        return self._s

    @property
    def closed(self) -> bool:
        return self._s.closed

    def close(self) -> None:
        self._s.close()

    def __repr__(self) -> str:
        return f"<flatlane {type(self).__qualname__} {self._name!r} {'closed' if self._s.closed else 'open'}>"
