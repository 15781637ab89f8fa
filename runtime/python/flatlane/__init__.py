"""Flatlane for Python: zero-copy shared-memory channels, over the C++ runtime.

Quick use::

    import flatlane

    with flatlane.Writer("demo") as w:          # process A
        view = w.reserve(5)                       # writable memoryview inside the ring
        view[:] = b"hello"
        w.commit(5)
        w.send(b"any bytes-like object")          # copies; chunks large messages

    with flatlane.Reader("demo") as r:           # process B
        with r.read(timeout=100) as frame:        # timeout in milliseconds
            print(bytes(frame.data))              # frame.data: read-only memoryview, zero copy
        print(r.recv(timeout=100))                # whole message as bytes

Publish/subscribe and request/reply (any number of Python and C++ processes)::

    pub = flatlane.TopicPublisher("telemetry")   # every subscriber gets every message
    sub = flatlane.TopicSubscriber("telemetry")
    pub.send(b"state")
    with sub.receive(timeout=100) as s:           # s.data: read-only view of the publisher's slot
        print(s.seq, bytes(s.data))

    server = flatlane.ServiceServer("control")
    client = flatlane.ServiceClient("control")
    rid = client.send(b"ping")
    with server.receive(timeout=100) as req:
        server.reply(req, b"pong")
    with client.receive(rid, timeout=100) as rep:
        print(bytes(rep.data))

Any Python object, over topics, work queues and services (pickle, msgpack; bytes and NumPy
arrays zero copy), blocking or with asyncio::

    pub = flatlane.Publisher("telemetry")        # Subscriber, Pusher/Puller, Requester/Replier
    sub = flatlane.Subscriber("telemetry")
    pub.send({"pose": [1.0, 2.0]})
    print(sub.recv(timeout=100))
    msg = await sub.recv_async()                  # or: async for msg in sub

Typed endpoints generated from a schema (``flatlane-gen --lang python``) build FlatBuffers in the
ring and read them in place: see ``flatlane.typed``.

See docs/PYTHON.md for lifetimes, threads and errors.
"""

from __future__ import annotations

from . import _native
from ._channel import EndpointStats, OpenMode, Reader, WaitStrategy, Writer
from ._duplex import DuplexClient, DuplexRequest, DuplexResponse, DuplexServer, DuplexStats
from ._service import ClientStats, Reply, Request, ServerStats, ServiceClient, ServiceServer
from ._topic import PublisherStats, Sample, SubscriberMode, SubscriberStats, TopicPublisher, TopicSubscriber
from . import _aio as aio
from ._codec import msgpack_available
from ._untyped import (
    ArrayLoan,
    IncomingRequest,
    MessageStats,
    Publisher,
    Puller,
    Pusher,
    Replier,
    Requester,
    Subscriber,
)
from ._errors import (
    BufferFullError,
    ChannelBusyError,
    ChannelExistsError,
    ChannelNotFoundError,
    ChannelPermissionError,
    ClosedError,
    CorruptMessageError,
    CorruptSegmentError,
    Errc,
    FlatlaneConnectionError,
    FlatlaneError,
    FlatlaneOSError,
    FlatlaneTimeoutError,
    InvalidArgumentError,
    MessageTooLargeError,
    NoSpaceError,
    PeerClosedError,
    PeerDeadError,
    SchemaMismatchError,
    SerializationError,
    TypeMismatchError,
    make_error as _make_error,
)

_native._set_error_factory(_make_error)

import sys as _sys

_sys.modules[__name__ + ".aio"] = aio  # `import flatlane.aio` / `from flatlane.aio import receive`

Frame = _native.Frame
"""A received frame (see Reader.read): ``data``, ``seq``, ``chunk``, ``numpy()``, ``release()``."""

PROTOCOL_VERSION: int = _native.PROTOCOL_VERSION
__version__ = "0.1.0"

__all__ = [
    "ArrayLoan",
    "IncomingRequest",
    "MessageStats",
    "Publisher",
    "Puller",
    "Pusher",
    "Replier",
    "Requester",
    "SerializationError",
    "Subscriber",
    "aio",
    "msgpack_available",
    "BufferFullError",
    "ChannelBusyError",
    "ChannelExistsError",
    "ChannelNotFoundError",
    "ChannelPermissionError",
    "ClientStats",
    "ClosedError",
    "DuplexClient",
    "DuplexRequest",
    "DuplexResponse",
    "DuplexServer",
    "DuplexStats",
    "CorruptMessageError",
    "CorruptSegmentError",
    "EndpointStats",
    "Errc",
    "FlatlaneConnectionError",
    "FlatlaneError",
    "FlatlaneOSError",
    "FlatlaneTimeoutError",
    "Frame",
    "InvalidArgumentError",
    "MessageTooLargeError",
    "NoSpaceError",
    "OpenMode",
    "PROTOCOL_VERSION",
    "PeerClosedError",
    "PeerDeadError",
    "PublisherStats",
    "Reader",
    "Reply",
    "Request",
    "Sample",
    "SchemaMismatchError",
    "ServerStats",
    "ServiceClient",
    "ServiceServer",
    "SubscriberMode",
    "SubscriberStats",
    "TopicPublisher",
    "TopicSubscriber",
    "TypeMismatchError",
    "WaitStrategy",
    "Writer",
]
