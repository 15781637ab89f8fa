"""Flatlane's rules on top of what flatc already checks, and resolution of channels.

flatc guarantees a well-formed schema (types exist, rpc request/response are tables, method and
service names are unique, attributes are declared). It knows nothing about Flatlane: attribute
values are free strings and `streaming` is not even checked. This module checks every Flatlane
rule, collects all violations (users fix a schema in one round, not one error per run) and
resolves each rpc method into an `ir.Channel` with its effective settings.
"""

from __future__ import annotations

import difflib
import enum
import logging
from dataclasses import dataclass
from typing import Mapping, Optional, TypeVar

from . import attributes as A
from .bfbs import RObject, RRPCCall, RSchema, RService
from .errors import Collector
from .ir import VOID, Channel, ChannelKind, Overflow, Service, Streaming, Wait
from .lower import fs_path

log = logging.getLogger("flatlane.gen")

TYPE_NAME_MAX = 127  # bytes; the segment header's type_name field (PROTOCOL.md §3.1)

E = TypeVar("E", bound=enum.Enum)


@dataclass(frozen=True)
class _Setting:
    """An effective channel setting and where it was written (for error placement)."""

    value: object       # parsed value; None if the written text was invalid
    at_method: bool     # written on the method (else on the service or defaulted)


def _choice(raw: str, cls: type[E], attr: str, file: str, element: str,
            col: Collector) -> Optional[E]:
    for member in cls:
        if member.value == raw:
            return member
    hint = ' (a valueless attribute reads as "0")' if raw == "0" else ""
    allowed = ", ".join(m.value for m in cls)
    col.error(file, element, f'{attr} "{raw}" is not one of {allowed}{hint}')
    return None


def _size(raw: str, attr: str, lo: int, hi: int, file: str, element: str,
          col: Collector) -> Optional[int]:
    n = A.parse_size(raw)
    if n is None:
        col.error(file, element, f'{attr} "{raw}" is not a size (write bytes as an integer, or '
                                 f'a string with a KiB, MiB, GiB or TiB suffix, e.g. "64KiB")')
        return None
    if not lo <= n <= hi:
        col.error(file, element, f'{attr} "{raw}" is out of range: it must lie in '
                                 f'[{A.format_size(lo)}, {A.format_size(hi)}]')
        return None
    return n


def _parse_settings(attrs: Mapping[str, str], file: str, element: str,
                    col: Collector) -> dict[str, object]:
    """Parse the channel settings written on one element; invalid ones map to None."""
    out: dict[str, object] = {}
    for attr in A.CHANNEL_SETTINGS:
        raw = attrs.get(attr)
        if raw is None:
            continue
        value: object
        if attr == A.RING_CAPACITY:
            value = _size(raw, attr, A.RING_MIN, A.RING_MAX, file, element, col)
            if value is not None and value & (value - 1):  # type: ignore[operator]
                col.error(file, element, f'{attr} "{raw}" is not a power of two')
                value = None
        elif attr == A.MAX_MESSAGE:
            value = _size(raw, attr, A.MAX_MESSAGE_MIN, A.MAX_MESSAGE_MAX, file, element, col)
        elif attr == A.CHUNK_SIZE:
            value = _size(raw, attr, A.CHUNK_MIN, A.frame_limit(A.RING_MAX), file, element, col)
        elif attr == A.OVERFLOW:
            value = _choice(raw, Overflow, attr, file, element, col)
        else:
            value = _choice(raw, Wait, attr, file, element, col)
        out[attr] = value
    return out


def _suggest(unknown: str) -> Optional[str]:
    """A likely intended attribute, or None. Compared without the shared prefix (which would
    make everything look close); a shared first word wins (`ring_size` -> `ring_capacity`)."""
    words = {a[len(A.PREFIX):]: a for a in A.ALL}
    rest = unknown[len(A.PREFIX):]
    first = rest.split("_")[0]
    same_first = [a for w, a in words.items() if w.split("_")[0] == first]
    if len(same_first) == 1:
        return same_first[0]
    close = difflib.get_close_matches(rest, list(words), n=1, cutoff=0.6)
    return words[close[0]] if close else None


def _check_unknown(attrs: Mapping[str, str], file: str, element: str, col: Collector) -> None:
    for key in attrs:
        if key.startswith(A.PREFIX) and key not in A.ALL:
            close = _suggest(key)
            hint = f" (did you mean {close}?)" if close else ""
            col.error(file, element, f"unknown Flatlane attribute {key}{hint}")


def _check_misplaced(attrs: Mapping[str, str], file: str, element: str, col: Collector) -> None:
    _check_unknown(attrs, file, element, col)
    for key in attrs:
        if key in A.ALL:
            col.error(file, element, f"{key} is not valid here: Flatlane attributes belong on an "
                                     f"rpc_service or its methods")


class _Validator:
    def __init__(self, schema: RSchema, col: Collector) -> None:
        self.schema = schema
        self.col = col
        self.objects: dict[str, RObject] = {o.name: o for o in schema.objects}

    def run(self) -> tuple[Service, ...]:
        for o in self.schema.objects:
            kind = "struct" if o.is_struct else "table"
            file = fs_path(o.declaration_file)
            _check_misplaced(o.attributes, file, f"{kind} {o.name}", self.col)
            for f in sorted(o.fields, key=lambda f: f.id):
                _check_misplaced(f.attributes, file, f"field {o.name}.{f.name}", self.col)
        for e in self.schema.enums:
            kind = "union" if e.is_union else "enum"
            _check_misplaced(e.attributes, fs_path(e.declaration_file), f"{kind} {e.name}",
                             self.col)
        services = [self.service(s) for s in self.schema.services]
        return tuple(s for s in services if s is not None)

    def service(self, svc: RService) -> Optional[Service]:
        file = fs_path(svc.declaration_file)
        element = f"rpc_service {svc.name}"
        _check_unknown(svc.attributes, file, element, self.col)
        raw_pattern = svc.attributes.get(A.PATTERN)
        pattern: Optional[ChannelKind] = A.DEFAULT_PATTERN
        if raw_pattern is not None:
            pattern = _choice(raw_pattern, ChannelKind, A.PATTERN, file, element, self.col)
        defaults = _parse_settings(svc.attributes, file, element, self.col)

        channels = []
        by_key: dict[str, str] = {}
        for call in svc.calls:
            # Generated identifiers change case per language (C# PascalCase, Python snake_case):
            # two methods differing only in case or underscores would collide somewhere.
            key = call.name.lower().replace("_", "")
            if key in by_key:
                a, b = sorted((by_key[key], call.name))
                self.col.error(file, element, f'duplicate channel: methods "{a}" and "{b}" map to '
                                              f'the same generated name')
            by_key[key] = call.name
            ch = self.channel(svc, call, pattern, defaults, file, f"{element}, method {call.name}")
            if ch is not None:
                channels.append(ch)
        if pattern is None:
            return None
        return Service(name=svc.name, pattern=pattern, channels=tuple(channels),
                       declaration_file=file, documentation=svc.documentation)

    def channel(self, svc: RService, call: RRPCCall, pattern: Optional[ChannelKind],
                defaults: Mapping[str, object], file: str, element: str) -> Optional[Channel]:
        col = self.col
        _check_unknown(call.attributes, file, element, col)
        if A.PATTERN in call.attributes:
            col.error(file, element, f"{A.PATTERN} belongs on the rpc_service (it applies to all "
                                     f"of its methods), not on a method")
        own = _parse_settings(call.attributes, file, element, col)

        def setting(attr: str, default: object) -> _Setting:
            if attr in own:
                return _Setting(own[attr], True)
            return _Setting(defaults.get(attr, default), False)

        ring = setting(A.RING_CAPACITY, A.DEFAULT_RING_CAPACITY)
        chunk = setting(A.CHUNK_SIZE, A.DEFAULT_CHUNK_SIZE)
        overflow = setting(A.OVERFLOW, A.DEFAULT_OVERFLOW)
        wait = setting(A.WAIT, A.DEFAULT_WAIT)
        streaming = self.streaming(call, pattern, file, element)
        types_ok = self.check_types(call, pattern, file, element)

        # A duplex request is modified in place and handed back, so it must fit in one frame
        # (a chunked message is reassembled into private memory); its default limit is the frame.
        max_default = A.DEFAULT_MAX_MESSAGE
        if pattern is ChannelKind.DUPLEX and isinstance(ring.value, int):
            max_default = A.duplex_frame_limit(ring.value)
        max_message = setting(A.MAX_MESSAGE, max_default)

        if isinstance(ring.value, int):
            limit = A.frame_limit(ring.value)
            where = element if (ring.at_method or chunk.at_method) else f"rpc_service {svc.name}"
            if isinstance(chunk.value, int) and chunk.value > limit:
                col.error(file, where, f"{A.CHUNK_SIZE} {chunk.value} exceeds the largest frame "
                                       f"payload ({limit}) of a {A.format_size(ring.value)} ring "
                                       f"(at most ring_capacity/2 - 32)")
            where = element if (ring.at_method or max_message.at_method) \
                else f"rpc_service {svc.name}"
            if pattern is ChannelKind.DUPLEX and ring.value > A.DUPLEX_RING_MAX:
                col.error(file, where, f"{A.RING_CAPACITY} {A.format_size(ring.value)} exceeds "
                                       f"the largest duplex ring ({A.format_size(A.DUPLEX_RING_MAX)})")
            dlimit = A.duplex_frame_limit(ring.value)
            if (pattern is ChannelKind.DUPLEX and isinstance(max_message.value, int)
                    and max_message.value > dlimit):
                col.error(file, where, f"{A.MAX_MESSAGE} {max_message.value} exceeds the largest "
                                       f"frame payload ({dlimit}) of a {A.format_size(ring.value)} "
                                       f"duplex ring: a duplex message is modified in place, so it "
                                       f"must fit in one frame (at most ring_capacity/2 - 64; raise "
                                       f"{A.RING_CAPACITY})")

        values = (ring.value, chunk.value, max_message.value, overflow.value, wait.value)
        if pattern is None or streaming is None or not types_ok or any(v is None for v in values):
            return None
        message = request = response = None
        if pattern in (ChannelKind.TOPIC, ChannelKind.PIPELINE):
            message = call.request
        else:
            request, response = call.request, call.response
        assert isinstance(ring.value, int) and isinstance(chunk.value, int)
        assert isinstance(max_message.value, int)
        assert isinstance(overflow.value, Overflow) and isinstance(wait.value, Wait)
        return Channel(
            kind=pattern, service=svc.name, name=call.name, message=message, request=request,
            response=response, streaming=streaming, max_message=max_message.value,
            ring_capacity=ring.value, chunk_size=chunk.value, overflow=overflow.value,
            wait=wait.value, declaration_file=file, documentation=call.documentation)

    def streaming(self, call: RRPCCall, pattern: Optional[ChannelKind], file: str,
                  element: str) -> Optional[Streaming]:
        raw = call.attributes.get(A.STREAMING)
        if raw is None or raw == "none":
            return Streaming.NONE
        if pattern is None:
            return None
        if pattern is not ChannelKind.SERVICE:
            self.col.error(file, element, f'streaming applies only to request/reply services '
                                          f'({A.PATTERN} "service"); this rpc_service is a '
                                          f'"{pattern.value}"')
            return None
        if raw == "server":
            return Streaming.SERVER
        if raw in A.STREAMINGS_FLATC:
            self.col.error(file, element, f'streaming "{raw}" is not supported by Flatlane '
                                          f'(use "none" or "server")')
        else:
            hint = ' (a valueless attribute reads as "0")' if raw == "0" else ""
            self.col.error(file, element, f'streaming "{raw}" is not a valid value (flatc accepts '
                                          f'none, client, server, bidi; Flatlane supports none '
                                          f'and server){hint}')
        return None

    def check_types(self, call: RRPCCall, pattern: Optional[ChannelKind], file: str,
                    element: str) -> bool:
        col = self.col
        ok = True
        carried = [call.request]
        if pattern in (ChannelKind.TOPIC, ChannelKind.PIPELINE):
            if call.response != VOID:
                col.error(file, element, f"response type must be {VOID}: a {pattern.value} "
                                         f"channel carries one message type, its request "
                                         f"(got {call.response})")
                ok = False
        elif pattern is ChannelKind.DUPLEX:
            if call.response != call.request:
                col.error(file, element, f"a duplex method must return its request type (the "
                                         f"request is modified in place and handed back): "
                                         f"request {call.request}, response {call.response}")
                ok = False
        else:
            carried.append(call.response)
        if pattern in (ChannelKind.TOPIC, ChannelKind.PIPELINE, ChannelKind.DUPLEX) \
                and call.request == VOID:
            col.error(file, element, f"{VOID} cannot be the message of a {pattern.value} channel "
                                     f"(it has no content)")
            ok = False
        for name in dict.fromkeys(carried):
            obj = self.objects.get(name)
            if obj is None:
                col.error(file, element, f"message type {name} is not defined")
                ok = False
            elif obj.is_struct:
                # flatc 2.0.8 rejects structs as rpc types already; kept for other front ends.
                col.error(file, element, f"message type {name} is a struct; Flatlane messages "
                                         f"must be tables")
                ok = False
            elif len(name.encode("utf-8")) > TYPE_NAME_MAX:
                col.error(file, element, f"message type name {name} is longer than "
                                         f"{TYPE_NAME_MAX} bytes (the segment header's type_name "
                                         f"limit)")
                ok = False
        return ok


def validate(schema: RSchema) -> tuple[Service, ...]:
    """Check every Flatlane rule; return the resolved services or raise ValidationError."""
    col = Collector()
    services = _Validator(schema, col).run()
    col.raise_if_any()
    log.debug("validated %d rpc_service(s), %d channel(s)", len(services),
              sum(len(s.channels) for s in services))
    return services
