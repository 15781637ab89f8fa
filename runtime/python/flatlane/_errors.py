"""Flatlane's exceptions: one base class, one subclass per kind of failure.

Every C++ ``flatlane::Errc`` value maps to exactly one class (see ``ERROR_CLASSES``). Each
exception carries ``errc`` (the :class:`Errc`), ``channel`` (the channel name) and ``role``
("writer", "reader" or "") besides a message that names the channel and the sizes or timeout
involved. Where a built-in exception means the same thing (``TimeoutError``,
``FileNotFoundError``, ``PermissionError``, ``ConnectionError``, ...) the class also derives from
it, so ``except TimeoutError`` works as expected.
"""

from __future__ import annotations

import builtins
import enum
from typing import Dict, Type


class Errc(enum.IntEnum):
    """Error codes of the C++ runtime (``flatlane::Errc``), same values."""

    OK = 0
    NOT_FOUND = 1
    NOT_FLATLANE = 2
    INCOMPATIBLE_VERSION = 3
    LAYOUT_MISMATCH = 4
    TYPE_MISMATCH = 5
    TRUNCATED = 6
    PERMISSION_DENIED = 7
    ALREADY_EXISTS = 8
    BUSY = 9
    NO_SPACE = 10
    INVALID_ARGUMENT = 11
    MESSAGE_TOO_LARGE = 12
    TIMEOUT = 13
    PEER_DEAD = 14
    PEER_CLOSED = 15
    CLOSED = 16
    CORRUPT = 17
    SYSTEM = 18


class FlatlaneError(Exception):
    """Base class of every error Flatlane raises.

    Attributes:
        errc: the runtime's error code.
        channel: the channel name ("" when not tied to one).
        role: "writer", "reader", "publisher", "subscriber", "server", "client" or "" (setup
            helpers).
    """

    errc: Errc = Errc.SYSTEM
    channel: str = ""
    role: str = ""


class ChannelNotFoundError(FlatlaneError, builtins.FileNotFoundError):
    """No channel of that name exists (opening with ``mode=OpenMode.OPEN``), or a service client
    sent a request while no server was attached."""


class ChannelExistsError(FlatlaneError, builtins.FileExistsError):
    """``mode=OpenMode.CREATE`` found a live channel of that name."""


class ChannelBusyError(FlatlaneError):
    """The writer or reader role is held by another live endpoint (channels are single-producer,
    single-consumer), a topic has its maximum of live publishers or subscribers, or a subscriber
    already holds ``max_held`` samples."""


class ChannelPermissionError(FlatlaneError, builtins.PermissionError):
    """The OS refused to create or open the segment."""


class NoSpaceError(FlatlaneError):
    """/dev/shm cannot hold the segment."""


class InvalidArgumentError(FlatlaneError, builtins.ValueError):
    """A bad channel name, size or option."""


class SchemaMismatchError(FlatlaneError):
    """The segment is not one this build can use: not a Flatlane segment, another protocol version
    or layout, or (``TypeMismatchError``) another message type."""


class TypeMismatchError(SchemaMismatchError):
    """The channel carries a different message type (name or hash) than this endpoint asked for."""


class CorruptSegmentError(FlatlaneError):
    """Shared memory holds values that violate the protocol (or the segment file is truncated)."""


class CorruptMessageError(CorruptSegmentError):
    """A typed receiver got a message that is not a FlatBuffer of the channel's type (root offset
    outside the message, or another file identifier). It was consumed; the next one comes through
    normally (``flatlane.typed``)."""


class MessageTooLargeError(FlatlaneError):
    """Bigger than the frame (``reserve``) or than ``max_message_size`` (receiving)."""


class FlatlaneTimeoutError(FlatlaneError, builtins.TimeoutError):
    """The wait ran out: nothing arrived (reader side) within the timeout."""


class BufferFullError(FlatlaneTimeoutError):
    """Sender side: no ring space (writer), no free slot or a full block_publisher subscriber
    (topic publisher), or a full server queue (service client) within the timeout
    (``timeout=0``: would block)."""


class FlatlaneConnectionError(FlatlaneError, builtins.ConnectionError):
    """The peer endpoint is gone."""


class PeerDeadError(FlatlaneConnectionError):
    """The peer process died (detected through its pid and start time, within ~50 ms)."""


class PeerClosedError(FlatlaneConnectionError):
    """The peer closed the channel cleanly; everything it sent has been read."""


class ClosedError(FlatlaneError):
    """This endpoint was closed (possibly by another thread while a call was waiting)."""


class FlatlaneOSError(FlatlaneError, builtins.OSError):
    """Another OS error; the message carries errno's text."""


class SerializationError(FlatlaneError):
    """The untyped API (``flatlane.Publisher`` & co.) could not encode an object (pickle or
    msgpack refused it; ``errc`` INVALID_ARGUMENT, nothing was sent) or decode a received message
    (no valid untyped header, an unknown codec, msgpack not installed, pickle refused by
    ``allow_pickle=False``, or the codec failed; ``errc`` CORRUPT, the message was consumed). The
    codec's own exception is the ``__cause__``."""

    errc = Errc.INVALID_ARGUMENT


def serialization_error(message: str, channel: str, role: str, decoding: bool) -> SerializationError:
    """A SerializationError with its context attributes set (used by the untyped API)."""
    exc = SerializationError(message)
    exc.errc = Errc.CORRUPT if decoding else Errc.INVALID_ARGUMENT
    exc.channel = channel
    exc.role = role
    return exc


def with_context(cls: Type[FlatlaneError], errc: Errc, message: str, channel: str, role: str) -> FlatlaneError:
    """An exception of a Flatlane class raised by Python code, with errc/channel/role set."""
    exc = cls(message)
    exc.errc = errc
    exc.channel = channel
    exc.role = role
    return exc


ERROR_CLASSES: Dict[Errc, Type[FlatlaneError]] = {
    Errc.NOT_FOUND: ChannelNotFoundError,
    Errc.NOT_FLATLANE: SchemaMismatchError,
    Errc.INCOMPATIBLE_VERSION: SchemaMismatchError,
    Errc.LAYOUT_MISMATCH: SchemaMismatchError,
    Errc.TYPE_MISMATCH: TypeMismatchError,
    Errc.TRUNCATED: CorruptSegmentError,
    Errc.PERMISSION_DENIED: ChannelPermissionError,
    Errc.ALREADY_EXISTS: ChannelExistsError,
    Errc.BUSY: ChannelBusyError,
    Errc.NO_SPACE: NoSpaceError,
    Errc.INVALID_ARGUMENT: InvalidArgumentError,
    Errc.MESSAGE_TOO_LARGE: MessageTooLargeError,
    Errc.TIMEOUT: FlatlaneTimeoutError,
    Errc.PEER_DEAD: PeerDeadError,
    Errc.PEER_CLOSED: PeerClosedError,
    Errc.CLOSED: ClosedError,
    Errc.CORRUPT: CorruptSegmentError,
    Errc.SYSTEM: FlatlaneOSError,
}


# Indexed by code: make_error runs on every error, including polls that time out.
_BY_CODE = tuple((errc, ERROR_CLASSES.get(errc, FlatlaneError)) for errc in Errc)


def make_error(code: int, message: str, channel: str, role: str, full: bool = False) -> FlatlaneError:
    """Builds the exception for a runtime error code (called by the native module). ``full``: the
    error comes from a sender waiting for space (a topic publisher's slot or a service client's
    queue), so a timeout is a BufferFullError there too."""
    if 0 <= code < len(_BY_CODE):
        errc, cls = _BY_CODE[code]
    else:
        errc, cls = Errc.SYSTEM, FlatlaneOSError
    if cls is FlatlaneTimeoutError and (full or role == "writer"):
        cls = BufferFullError
    # One positional argument only: the OSError-derived classes would read more as errno/filename.
    exc = cls(message)
    exc.errc = errc
    exc.channel = channel
    exc.role = role
    return exc


for _cls in (FlatlaneError, *set(ERROR_CLASSES.values()), BufferFullError, FlatlaneConnectionError,
             CorruptMessageError, SerializationError):
    _cls.__module__ = "flatlane"  # tracebacks show flatlane.PeerDeadError, the public name
