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

Typed endpoints generated from a schema (``flatlane-gen --lang python``) build FlatBuffers in the
ring and read them in place: see ``flatlane.typed``.

See docs/PYTHON.md for lifetimes, threads and errors.
"""

from __future__ import annotations

from . import _native
from ._channel import EndpointStats, OpenMode, Reader, WaitStrategy, Writer
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
    TypeMismatchError,
    make_error as _make_error,
)

_native._set_error_factory(_make_error)

Frame = _native.Frame
"""A received frame (see Reader.read): ``data``, ``seq``, ``chunk``, ``numpy()``, ``release()``."""

PROTOCOL_VERSION: int = _native.PROTOCOL_VERSION
__version__ = "0.1.0"

__all__ = [
    "BufferFullError",
    "ChannelBusyError",
    "ChannelExistsError",
    "ChannelNotFoundError",
    "ChannelPermissionError",
    "ClosedError",
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
    "Reader",
    "SchemaMismatchError",
    "TypeMismatchError",
    "WaitStrategy",
    "Writer",
]
