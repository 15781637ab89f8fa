"""The untyped, pythonic API: send any Python object over a topic, work queue or service.

::

    with flatlane.Publisher("telemetry") as pub, flatlane.Subscriber("telemetry") as sub:
        pub.send({"x": 1.0, "tags": ["a", "b"]})        # pickle (or codec="msgpack")
        pub.send(numpy.zeros((480, 640), numpy.uint8))   # ndarray: written straight into the slot
        msg = sub.recv(timeout=100)                      # the dict; then a read-only ndarray view

    Pusher/Puller: a work queue (each message to exactly one puller).
    Requester/Replier: request/reply over a service.

Each message carries the small header of ``flatlane._codec`` (codec id; dtype and shape for an
ndarray). Raw bytes-like objects and NumPy arrays are copied once, straight into the loaned slot,
and come back as read-only views of the sample (no copy): the slot is held until the last view
of it is dropped. Pickled and msgpack'd objects are decoded and their slot given back at once.

These classes wrap the runtime endpoints (``TopicPublisher``, ``TopicSubscriber``,
``ServiceServer``, ``ServiceClient``); ``endpoint`` is the one underneath. Every option of that
class may be passed as a keyword argument.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import pickle
from types import TracebackType
from typing import Any, AsyncIterator, Dict, Iterator, Optional, Tuple, Type, TypeVar

from . import _aio
from . import _codec as C
from . import _native
from ._errors import (
    BufferFullError,
    ClosedError,
    Errc,
    FlatlaneError,
    MessageTooLargeError,
    PeerClosedError,
    PeerDeadError,
    SchemaMismatchError,
    serialization_error,
    with_context,
)
from ._service import ServiceClient, ServiceServer
from ._topic import TopicPublisher, TopicSubscriber, _topic_kwargs

logger = logging.getLogger("flatlane")

_MS = 1_000_000
_T = TypeVar("_T", bound="_Untyped")
_SMALL = 2048  # messages up to this size are joined with their header and sent in one call
_HDR_UNPACK = C.BASE_HEADER.unpack_from
_MAGIC, _VERSION = C.MAGIC, C.VERSION


@dataclasses.dataclass(frozen=True)
class MessageStats:
    """Counters of an untyped endpoint, and its runtime endpoint's."""

    messages: int
    """Messages sent (senders, Replier: replies) or received (receivers, Requester: replies)."""
    bytes: int
    """Bytes of those messages, headers included."""
    rejected: int
    """Received messages that could not be decoded (SerializationError raised, message consumed);
    for a Replier, also replies dropped because the client was gone or its ring full."""
    transport: Any
    """The runtime endpoint's ``stats()`` (PublisherStats, SubscriberStats, ServerStats, ClientStats)."""


def _keyword_defaults(cls: type) -> Dict[str, Any]:
    sig = inspect.signature(cls.__init__)  # type: ignore[misc]
    return {k: p.default for k, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


_PUB_DEFAULTS = _keyword_defaults(TopicPublisher)
_SUB_DEFAULTS = _keyword_defaults(TopicSubscriber)
_TOPIC_KEYS = tuple(inspect.signature(_topic_kwargs).parameters)


class _Untyped:
    """What every untyped endpoint shares: codec choice, closing, context management, stats."""

    _role = ""
    _what = ""

    def __init__(self, endpoint: Any, codec: str, raw: bool, allow_pickle: bool) -> None:
        self.endpoint = endpoint
        self._name: str = endpoint.name
        self._raw = raw
        self._codec_name = codec
        self._codec_id, self._encode = C.encoder(codec)
        self._allow_pickle = allow_pickle
        self._messages = 0
        self._bytes = 0
        self._rejected = 0

    # -- life cycle -------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The topic or service name."""
        return self._name

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return bool(self.endpoint.closed)

    @property
    def codec(self) -> str:
        """The codec objects other than bytes-like and ndarrays are sent with ("pickle",
        "msgpack"; "raw" with raw=True). Receivers decode whatever codec a message names."""
        return "raw" if self._raw else self._codec_name

    def close(self) -> None:
        """Detach. Views handed out stay readable (the mapping lives until the last is dropped).
        Idempotent."""
        self.endpoint.close()

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.close()

    def stats(self) -> MessageStats:
        """A snapshot of this endpoint's counters."""
        return MessageStats(self._messages, self._bytes, self._rejected, self.endpoint.stats())

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<flatlane.{type(self).__name__} {self._name!r} {self.codec} {state}>"

    # -- encoding ---------------------------------------------------------------------------------

    def _prepare(self, obj: Any, op: str) -> Tuple[bytes, Any, int, bool]:
        """(header, body, total size, body is an ndarray to copyto) for one message."""
        if self._raw:
            try:
                body = memoryview(obj)
            except TypeError:
                raise TypeError(
                    f"flatlane: {op} on raw {self._what} {self._name!r} takes a bytes-like object, "
                    f"not {type(obj).__name__}"
                ) from None
            if not body.c_contiguous:
                raise ValueError(f"flatlane: {op} on {self._what} {self._name!r}: the buffer is not C-contiguous")
            if body.format != "B" or body.ndim != 1:
                body = body.cast("B")
            return b"", body, body.nbytes, False
        if isinstance(obj, bytes):
            return C.HEADERS[C.CODEC_RAW], obj, C.HEADER_SIZE + len(obj), False
        if isinstance(obj, (bytearray, memoryview)):
            body = memoryview(obj)
            if not body.c_contiguous:
                raise ValueError(f"flatlane: {op} on {self._what} {self._name!r}: the memoryview is not C-contiguous")
            if body.format != "B" or body.ndim != 1:
                body = body.cast("B")
            return C.HEADERS[C.CODEC_RAW], body, C.HEADER_SIZE + body.nbytes, False
        np = C.numpy_module()
        if np is not None and isinstance(obj, np.ndarray):
            typestr = C.ndarray_typestr(obj)
            if typestr is not None:
                header = C.ndarray_header(obj.shape, typestr)
                return header, obj, len(header) + obj.nbytes, True
        try:
            data = self._encode(obj)
        except Exception as exc:  # pickle/msgpack raise many kinds
            raise serialization_error(
                f"flatlane: serialization: {op} on {self._what} {self._name!r}: {self._codec_name} cannot encode "
                f"{type(obj).__name__}: {exc}",
                self._name, self._role, decoding=False,
            ) from exc
        return C.HEADERS[self._codec_id], data, C.HEADER_SIZE + len(data), False

    def _too_large(self, op: str, obj: Any, size: int, limit: int, hint: str) -> FlatlaneError:
        return with_context(
            MessageTooLargeError, Errc.MESSAGE_TOO_LARGE,
            f"flatlane: message_too_large: {op} on {self._what} {self._name!r}: {type(obj).__name__} is {size} "
            f"bytes encoded (header included), above the limit of {limit} bytes ({hint})",
            self._name, self._role,
        )

    @staticmethod
    def _fill(view: memoryview, header: bytes, body: Any, size: int, is_array: bool) -> None:
        h = len(header)
        if h:
            view[:h] = header
        if is_array:
            if body.flags.c_contiguous:
                if body.nbytes:
                    np = C.numpy_module()
                    view[h:size] = body.reshape(-1).view(np.uint8)  # type: ignore[union-attr]
            else:
                np = C.numpy_module()
                dst = np.frombuffer(view, dtype=body.dtype, count=body.size, offset=h)  # type: ignore[union-attr]
                np.copyto(dst.reshape(body.shape), body)  # type: ignore[union-attr]
        elif size > h:
            view[h:size] = body

    # -- decoding ---------------------------------------------------------------------------------

    def _decode(self, msg: Any, op: str) -> Any:
        """The object of a received message (Sample, Request or Reply). Zero copy for raw bytes
        and ndarrays (the message is released when the returned view goes); decoded objects
        release it at once."""
        d: memoryview = msg.data
        n = len(d)
        self._messages += 1
        self._bytes += n
        if self._raw:
            msg.release()  # deferred until `d` and its views are gone
            return d
        try:
            if n >= 8:
                magic, version, codec, _flags, h = _HDR_UNPACK(d)
                if magic != _MAGIC or version != _VERSION or h < 8 or h > n or h & 7:
                    C.parse_header(d)  # raises HeaderError with the reason
            else:
                codec, h = C.parse_header(d)
            if codec == C.CODEC_RAW:
                v = d[h:]
                msg.release()
                return v
            if codec == C.CODEC_NDARRAY:
                return self._decode_ndarray(msg, d, h)
            body = d[h:]
            try:
                if codec == C.CODEC_PICKLE:
                    if not self._allow_pickle:
                        raise C.HeaderError("a pickle message refused (allow_pickle=False)")
                    return pickle.loads(body)
                if codec == C.CODEC_MSGPACK:
                    m = C.msgpack_module()
                    if m is None:
                        raise C.HeaderError("a msgpack message, but the msgpack module is not installed "
                                            "(Debian: python3-msgpack)")
                    return m.unpackb(body, raw=False)
                raise C.HeaderError(f"unknown codec id {codec}")
            finally:
                body.release()
                d.release()
                msg.release()
        except C.HeaderError as exc:
            _drop_view(d)  # the traceback keeps this frame (and `d`) alive: let the slot go now
            msg.release()
            self._rejected += 1
            raise serialization_error(
                f"flatlane: serialization: {op} on {self._what} {self._name!r}: {exc}",
                self._name, self._role, decoding=True,
            ) from None
        except FlatlaneError:
            raise
        except Exception as exc:
            _drop_view(d)
            msg.release()
            self._rejected += 1
            raise serialization_error(
                f"flatlane: serialization: {op} on {self._what} {self._name!r}: decoding a {n}-byte "
                f"{C.CODEC_NAMES.get(codec, '?')} message failed: {type(exc).__name__}: {exc}",
                self._name, self._role, decoding=True,
            ) from exc

    def _decode_ndarray(self, msg: Any, d: memoryview, h: int) -> Any:
        shape, typestr = C.parse_ndarray(d, h)
        np = C.numpy_module()
        if np is None:
            try:
                import numpy as np  # type: ignore[no-redef]
            except ImportError:
                raise C.HeaderError("an ndarray message, but NumPy is not installed (Debian: python3-numpy)") from None
        try:
            dt = np.dtype(typestr)
        except TypeError:
            raise C.HeaderError(f"ndarray dtype {typestr!r} unknown to this NumPy") from None
        count = math.prod(shape)
        need = h + count * dt.itemsize
        if need != len(d):
            raise C.HeaderError(f"ndarray {typestr} {tuple(shape)} needs {need} bytes, the message has {len(d)}")
        if count == 0:
            msg.release()
            return np.empty(shape, dtype=dt)
        arr = np.frombuffer(d, dtype=dt, count=count, offset=h).reshape(shape)
        msg.release()  # deferred: the array holds the sample (arr.base.obj is it) until it goes
        return arr


def _drop_view(d: memoryview) -> None:
    try:
        d.release()
    except BufferError:  # something still exports from it: the slot goes when that does
        pass


# ------------------------------------------------------------------------------------------------
# Topics and work queues


class _Sender(_Untyped):
    endpoint: TopicPublisher

    def send(self, obj: Any, timeout: Optional[float] = None) -> None:
        """Send one object. bytes/bytearray/memoryview and NumPy arrays are copied once, straight
        into a loaned slot; other objects are encoded with the codec first.

        ``timeout`` (ms; None forever, 0 never waits) bounds the wait for a free slot
        (BufferFullError). Raises MessageTooLargeError above the slot size, SerializationError
        when the codec refuses the object (nothing sent)."""
        header, body, size, is_array = self._prepare(obj, "send()")
        ep = self.endpoint
        limit = ep.max_message
        if size > limit:
            raise self._too_large("send()", obj, size, limit, "the topic's slot_size")
        if size <= _SMALL and not is_array:
            # Small: one native call (loan + copy + publish) beats four; joining the header costs
            # less than the calls it saves.
            ep.send(header + body if header else body, timeout)
            self._messages += 1
            self._bytes += size
            return
        view = ep.loan(size, timeout)
        try:
            self._fill(view, header, body, size, is_array)
        except BaseException:
            ep.discard()
            raise
        finally:
            view.release()
        ep.publish(size)
        self._messages += 1
        self._bytes += size

    def loan_array(self, shape: Any, dtype: Any, timeout: Optional[float] = None) -> "ArrayLoan":
        """A writable ndarray of ``shape``/``dtype`` inside a loaned slot, published at the end of
        ``with``: build the array in shared memory, nothing is copied::

            with pub.loan_array((480, 640), "u1") as a:
                a[:] = camera_frame
        """
        np = C.numpy_module()
        if np is None:
            import numpy as np  # type: ignore[no-redef]
        dt = np.dtype(dtype)
        shape_t = (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)
        typestr = C.ndarray_typestr(np.empty(0, dt))
        if typestr is None:
            raise ValueError(f"flatlane: loan_array: dtype {dt} cannot travel as a raw ndarray (object or structured)")
        header = C.ndarray_header(shape_t, typestr)
        size = len(header) + math.prod(shape_t) * dt.itemsize
        if size > self.endpoint.max_message:
            raise self._too_large("loan_array()", np.empty(0, dt), size, self.endpoint.max_message,
                                  "the topic's slot_size")
        view = self.endpoint.loan(size, timeout)
        view[: len(header)] = header
        arr = np.frombuffer(view, dtype=dt, count=math.prod(shape_t), offset=len(header)).reshape(shape_t)
        return ArrayLoan(self, arr, view, size)


class ArrayLoan:
    """A loaned slot seen as an ndarray (see ``Publisher.loan_array``): published on a normal
    exit of ``with``, discarded on an exception. The array must not be used afterwards."""

    def __init__(self, sender: _Sender, array: Any, view: memoryview, size: int) -> None:
        self.array = array
        self._sender = sender
        self._view = view
        self._size = size
        self._done = False

    def __enter__(self) -> Any:
        return self.array

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        if exc_type is None:
            self.publish()
        else:
            self.discard()

    def publish(self) -> None:
        """Publish the slot."""
        if self._done:
            raise ValueError("flatlane: this array loan was published or discarded already")
        self._done = True
        self.array = None
        self._sender.endpoint.publish(self._size)
        self._sender._messages += 1
        self._sender._bytes += self._size

    def discard(self) -> None:
        """Give the slot back unpublished."""
        if not self._done:
            self._done = True
            self.array = None
            self._sender.endpoint.discard()


class _Receiver(_Untyped):
    endpoint: TopicSubscriber

    def _stash(self) -> Any:
        st = getattr(self.endpoint, _aio._STATE_ATTR, None)
        if st is None:
            return None
        d = st.stashes.get("receive")
        return d.popleft() if d else None

    def recv(self, timeout: Optional[float] = None) -> Any:
        """The next object (ms; None forever, 0 never waits): a decoded object, or a read-only
        memoryview / ndarray over the sample for raw bytes and ndarrays (zero copy).

        Raises FlatlaneTimeoutError, SerializationError (an undecodable message, consumed),
        ChannelBusyError (``max_held`` samples held by live views), PeerDeadError /
        PeerClosedError (every publisher gone, nothing queued), ClosedError."""
        s = self._stash()
        if s is None:
            s = self.endpoint.receive(timeout)
        return self._decode(s, "recv()")

    async def recv_async(self, timeout: Optional[float] = None) -> Any:
        """``await``-able recv(): the loop keeps running while it waits (see flatlane.aio)."""
        s = await _aio.receive(self.endpoint, timeout)
        return self._decode(s, "recv_async()")

    def __iter__(self) -> Iterator[Any]:
        """Receive forever; ends when this endpoint is closed or every peer left cleanly."""
        while True:
            try:
                yield self.recv()
            except (ClosedError, PeerClosedError):
                return

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[Any]:
        while True:
            try:
                obj = await self.recv_async()
            except (ClosedError, PeerClosedError):
                return
            yield obj


def _split_options(options: Dict[str, Any], defaults: Dict[str, Any], cls: str) -> Dict[str, Any]:
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise TypeError(f"flatlane: {cls}: unknown option(s) {', '.join(unknown)} (see help(flatlane.{cls}))")
    merged = dict(defaults)
    merged.update(options)
    return merged


def _type_options(raw: bool, options: Dict[str, Any]) -> None:
    if not raw:
        options.setdefault("type_name", C.TYPE_NAME)
        options.setdefault("type_hash", C.TYPE_HASH)


def _open_topic(cls: type, name: str, work_queue: bool, options: Dict[str, Any], role: str) -> Any:
    defaults = _PUB_DEFAULTS if cls is TopicPublisher else _SUB_DEFAULTS
    merged = _split_options(options, defaults, "Pusher" if cls is TopicPublisher else "Puller")
    if work_queue:
        if merged.get("history"):
            raise ValueError("flatlane: a work queue keeps no history (history must be 0)")
        # TopicPublisher/TopicSubscriber.__init__ has no distribution option: initialise the
        # native base directly, with the same keyword translation.
        ep = cls.__new__(cls)
        kw = _topic_kwargs(**{k: merged[k] for k in _TOPIC_KEYS})
        if cls is TopicPublisher:
            b = merged["block_timeout_ms"]
            kw["block_timeout_ns"] = -1 if b is None else round(b * _MS)
            _native.TopicPublisher.__init__(ep, name, **kw, distribution=1)
        else:
            from ._channel import _enum_value
            from ._topic import SubscriberMode

            kw["subscriber_mode"] = _enum_value(SubscriberMode, merged["subscriber_mode"], "subscriber mode")
            kw["history_request"] = merged["history_request"]
            _native.TopicSubscriber.__init__(ep, name, **kw, distribution=1)
        logger.debug("%s attached to work queue %r", role, name)
    else:
        ep = cls(name, **options)
    is_queue = bool(ep.work_queue)
    if is_queue != work_queue:
        ep.close()
        have = "a work queue (push/pull)" if is_queue else "a publish/subscribe topic"
        want = "Pusher/Puller" if work_queue else "Publisher/Subscriber"
        raise with_context(
            SchemaMismatchError, Errc.LAYOUT_MISMATCH,
            f"flatlane: layout_mismatch: topic {name!r} is {have}; a {role} ({want}) cannot attach to it",
            name, role,
        )
    return ep


class Publisher(_Sender):
    """Publishes Python objects on a topic: every attached Subscriber gets every message.

    Args:
        name: topic name ([A-Za-z0-9_.-]).
        codec: "pickle" (default: any picklable object) or "msgpack" (needs python3-msgpack;
            plain data only: tuples arrive as lists). bytes-like objects and NumPy arrays always
            travel raw, zero copy on the receiving side.
        raw: no header at all: send takes bytes-like objects only, for peers in other languages
            (the topic then carries no type name either).
        **options: any option of flatlane.TopicPublisher (slot_size — the largest message,
            header included —, slot_count, history, wait, block_timeout_ms, ...).
    """

    _role = "publisher"
    _what = "topic"

    def __init__(self, name: str, *, codec: str = "pickle", raw: bool = False, **options: Any) -> None:
        C.encoder(codec)  # validate before attaching
        _type_options(raw, options)
        super().__init__(_open_topic(TopicPublisher, name, False, options, "publisher"), codec, raw, True)

    @property
    def subscriber_count(self) -> int:
        """Subscribers attached now."""
        return int(self.endpoint.subscriber_count)


class Subscriber(_Receiver):
    """Receives the objects published on a topic (see Publisher) after it attached.

    Args:
        name: topic name.
        raw: return every message as a read-only memoryview of the whole payload (no header).
        allow_pickle: False refuses pickle messages (SerializationError): unpickling runs code
            chosen by the sender (any process of this user that can open the topic).
        **options: any option of flatlane.TopicSubscriber (subscriber_mode, history_request,
            max_held — how many received views may be alive at once —, ...).
    """

    _role = "subscriber"
    _what = "topic"

    def __init__(self, name: str, *, raw: bool = False, allow_pickle: bool = True, **options: Any) -> None:
        _type_options(raw, options)
        super().__init__(_open_topic(TopicSubscriber, name, False, options, "subscriber"), "pickle", raw,
                         allow_pickle)


class Pusher(_Sender):
    """Pushes Python objects into a work queue: each message goes to exactly one Puller (whichever
    takes it first), waits in the queue while none is attached, and is never dropped (a full
    queue makes send wait up to ``block_timeout_ms``, then BufferFullError). Arguments as for
    Publisher."""

    _role = "pusher"
    _what = "work queue"

    def __init__(self, name: str, *, codec: str = "pickle", raw: bool = False, **options: Any) -> None:
        C.encoder(codec)
        _type_options(raw, options)
        super().__init__(_open_topic(TopicPublisher, name, True, options, "pusher"), codec, raw, True)


class Puller(_Receiver):
    """Takes objects from a work queue (see Pusher). Arguments as for Subscriber."""

    _role = "puller"
    _what = "work queue"

    def __init__(self, name: str, *, raw: bool = False, allow_pickle: bool = True, **options: Any) -> None:
        _type_options(raw, options)
        super().__init__(_open_topic(TopicSubscriber, name, True, options, "puller"), "pickle", raw, allow_pickle)


# ------------------------------------------------------------------------------------------------
# Request/reply


def _service_options(raw: bool, options: Dict[str, Any]) -> None:
    if not raw:
        options.setdefault("request_type", (C.TYPE_NAME, C.TYPE_HASH))
        options.setdefault("reply_type", (C.TYPE_NAME, C.TYPE_HASH))


class Requester(_Untyped):
    """Sends requests (any Python object) to a Replier and gets its replies.

    ``requester.request(obj, timeout)`` sends and waits for the reply;
    ``send(obj)`` then ``recv(timeout)`` does it in two steps, and reads the further replies of a
    streamed answer while ``more`` is True. ``await request_async(obj)`` for asyncio.

    Args: codec, raw, allow_pickle as for Publisher/Subscriber; **options: any option of
    flatlane.ServiceClient (max_request — the largest request, header included —, reply_ring —
    a reply may use half of it —, send_timeout_ms, ...).
    """

    _role = "client"
    _what = "service"
    endpoint: ServiceClient

    def __init__(self, name: str, *, codec: str = "pickle", raw: bool = False, allow_pickle: bool = True,
                 **options: Any) -> None:
        C.encoder(codec)
        _service_options(raw, options)
        super().__init__(ServiceClient(name, **options), codec, raw, allow_pickle)
        self._rid: Optional[int] = None
        self._more = False
        self._sent = 0

    @property
    def more(self) -> bool:
        """True when the last reply said another one follows (streaming)."""
        return self._more

    def send(self, obj: Any) -> int:
        """Send a request; returns its id. Raises ChannelNotFoundError while no Replier is
        attached, MessageTooLargeError above max_request, BufferFullError when the server's queue
        stayed full for send_timeout_ms."""
        header, body, size, is_array = self._prepare(obj, "send()")
        ep = self.endpoint
        limit = ep.max_request
        if size > limit:
            raise self._too_large("send()", obj, size, limit, "the service's max_request")
        view = ep.prepare(size)
        try:
            self._fill(view, header, body, size, is_array)
        except BaseException:
            ep.abort_prepared()
            raise
        finally:
            view.release()
        rid = int(ep.send_prepared(size))
        self._rid = rid
        self._more = False
        self._sent += 1
        return rid

    def _pending(self, op: str) -> int:
        if self._rid is None:
            raise ValueError(f"flatlane: {op} on service {self._name!r}: no request is waiting for a reply "
                             "(send() first; the last reply had more=False)")
        return self._rid

    def _take(self, rep: Any, op: str) -> Any:
        self._more = bool(rep.more)
        if not self._more:
            self._rid = None
        return self._decode(rep, op)

    def recv(self, timeout: Optional[float] = None) -> Any:
        """The next reply to the last request (ms; None forever). FlatlaneTimeoutError when none
        came (the request is then still pending: recv again, or send another), PeerDeadError when
        the Replier died."""
        rid = self._pending("recv()")
        st = getattr(self.endpoint, _aio._STATE_ATTR, None)
        d = st.stashes.get(f"reply:{rid}") if st is not None else None
        rep = d.popleft() if d else self.endpoint.receive(rid, timeout)
        return self._take(rep, "recv()")

    def request(self, obj: Any, timeout: Optional[float] = None) -> Any:
        """send(obj) then recv(timeout): the (first) reply."""
        self.send(obj)
        return self.recv(timeout)

    async def recv_async(self, timeout: Optional[float] = None) -> Any:
        """``await``-able recv(). Cancelled: a reply taken meanwhile is kept for the next recv."""
        rid = self._pending("recv_async()")
        rep = await _aio.receive_reply(self.endpoint, rid, timeout)
        return self._take(rep, "recv_async()")

    async def request_async(self, obj: Any, timeout: Optional[float] = None) -> Any:
        """send(obj) (at once) then ``await recv_async(timeout)``."""
        self.send(obj)
        return await self.recv_async(timeout)



class IncomingRequest:
    """A request as a Replier received it: ``value`` (the decoded object, or a zero-copy view),
    ``reply(obj, more=False)``. The request's slot is held until the last reply (more=False),
    ``release()``, or the request is dropped."""

    __slots__ = ("value", "_replier", "_native", "_open")

    def __init__(self, replier: "Replier", native: Any, value: Any) -> None:
        self.value = value
        self._replier = replier
        self._native = native
        self._open = True

    @property
    def id(self) -> int:
        """The request id (chosen by the client)."""
        return int(self._native.id)

    @property
    def client(self) -> int:
        """The client's index."""
        return int(self._native.client)

    @property
    def answered(self) -> bool:
        """True once the final reply was sent (or the request released)."""
        return not self._open

    def reply(self, obj: Any, more: bool = False) -> bool:
        """Answer (``more=True``: another reply follows). Never waits for the client: returns
        False when the reply was dropped (client gone, or its reply ring full; counted in
        ``stats().rejected``). MessageTooLargeError above half the client's reply_ring."""
        if not self._open:
            raise ValueError(f"flatlane: reply() on service {self._replier.name!r}: request {self.id} was answered "
                             "(more=False) or released already")
        ok = self._replier._reply(self._native, obj, more)
        if not more:
            self.release()
        return ok

    def release(self) -> None:
        """Give the request's slot back (unanswered requests get no reply)."""
        if self._open:
            self._open = False
            self._native.release()


class Replier(_Untyped):
    """Serves requests of Requesters on a service.

    Lock-step use: ``obj = rep.recv(timeout)`` then ``rep.send(reply)`` answers it (``send(x,
    more=True)`` streams several replies). ``recv_request()`` returns an :class:`IncomingRequest`
    to answer later or out of order. ``async for obj in rep: rep.send(...)`` for asyncio.

    Args: codec (of replies), raw, allow_pickle as for Publisher/Subscriber; **options: any
    option of flatlane.ServiceServer.
    """

    _role = "server"
    _what = "service"
    endpoint: ServiceServer

    def __init__(self, name: str, *, codec: str = "pickle", raw: bool = False, allow_pickle: bool = True,
                 **options: Any) -> None:
        C.encoder(codec)
        _service_options(raw, options)
        super().__init__(ServiceServer(name, **options), codec, raw, allow_pickle)
        self._current: Optional[IncomingRequest] = None

    def _reply(self, native: Any, obj: Any, more: bool) -> bool:
        header, body, size, is_array = self._prepare(obj, "reply")
        ep = self.endpoint
        try:
            view = ep.prepare_reply(native, size)
        except (PeerClosedError, PeerDeadError, BufferFullError):
            self._rejected += 1
            return False
        except MessageTooLargeError as exc:
            raise with_context(
                MessageTooLargeError, Errc.MESSAGE_TOO_LARGE,
                f"flatlane: message_too_large: reply on service {self._name!r}: {type(obj).__name__} is {size} "
                f"bytes encoded (header included), above what the client's reply ring takes "
                f"(half of its reply_ring) ({exc})",
                self._name, self._role,
            ) from None
        try:
            self._fill(view, header, body, size, is_array)
        except BaseException:
            ep.abort_reply()
            raise
        finally:
            view.release()
        ep.commit_reply(size, more=more)
        self._messages += 1
        self._bytes += size
        return True

    def _incoming(self, native: Any, op: str) -> IncomingRequest:
        n = len(native)
        try:
            value = self._decode_request(native, op)
        except FlatlaneError:
            native.release()
            raise
        self._messages -= 1  # counted as replies sent, not requests
        self._bytes -= n
        return IncomingRequest(self, native, value)

    def _decode_request(self, native: Any, op: str) -> Any:
        # Like _decode, but the Request stays held until answered: decode from a view and keep
        # `native` alive (released by IncomingRequest).
        return self._decode(_Held(native), op)

    def recv_request(self, timeout: Optional[float] = None) -> IncomingRequest:
        """The next request (ms; None forever) as an IncomingRequest."""
        st = getattr(self.endpoint, _aio._STATE_ATTR, None)
        d = st.stashes.get("receive") if st is not None else None
        native = d.popleft() if d else self.endpoint.receive(timeout)
        return self._incoming(native, "recv_request()")

    async def recv_request_async(self, timeout: Optional[float] = None) -> IncomingRequest:
        """``await``-able recv_request()."""
        native = await _aio.receive(self.endpoint, timeout)
        return self._incoming(native, "recv_request_async()")

    def _check_answered(self, op: str) -> None:
        if self._current is not None and not self._current.answered:
            raise ValueError(
                f"flatlane: {op} on service {self._name!r}: request {self._current.id} is not answered yet: send() "
                "its reply first (or use recv_request() to hold several)"
            )

    def recv(self, timeout: Optional[float] = None) -> Any:
        """The next request's object; answer it with send() before the next recv()."""
        self._check_answered("recv()")
        self._current = self.recv_request(timeout)
        return self._current.value

    async def recv_async(self, timeout: Optional[float] = None) -> Any:
        """``await``-able recv()."""
        self._check_answered("recv_async()")
        self._current = await self.recv_request_async(timeout)
        return self._current.value

    def send(self, obj: Any, more: bool = False) -> bool:
        """Answer the request of the last recv() (see IncomingRequest.reply)."""
        if self._current is None or self._current.answered:
            raise ValueError(f"flatlane: send() on service {self._name!r}: no request to answer (recv() first)")
        return self._current.reply(obj, more)

    def __iter__(self) -> Iterator[Any]:
        """recv() forever (answer each with send()); ends when closed."""
        while True:
            try:
                yield self.recv()
            except ClosedError:
                return

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[Any]:
        while True:
            try:
                obj = await self.recv_async()
            except ClosedError:
                return
            yield obj


class _Held:
    """A Request seen through _decode without releasing it: ``release()`` is a no-op here (the
    IncomingRequest releases the request itself once answered)."""

    __slots__ = ("_m",)

    def __init__(self, m: Any) -> None:
        self._m = m

    @property
    def data(self) -> memoryview:
        return self._m.data  # type: ignore[no-any-return]

    def release(self) -> None:
        pass
