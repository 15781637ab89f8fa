"""The untyped API (flatlane.Publisher/Subscriber, Pusher/Puller, Requester/Replier): every
pattern, both codecs, raw bytes and NumPy arrays zero copy, lifetimes, errors, and real processes
(tests/python/untyped_peer.py) including kill -9."""

from __future__ import annotations

import dataclasses
import gc
import logging
import sys
import time
from pathlib import Path
from typing import Any, Iterator, List, Set, Tuple

import numpy as np
import pytest

import flatlane
from flatlane import _codec
from peers import Peer, exit_ok

UNTYPED_PEER = Path(__file__).resolve().parent / "untyped_peer.py"


def peer(*args: object) -> Peer:
    return Peer([sys.executable, str(UNTYPED_PEER), *(str(a) for a in args)])


def mappings(name: str) -> List[Tuple[int, int]]:
    """Address ranges of this process's mappings of /dev/shm/flatlane.<name>."""
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            if line.rstrip().endswith(f"/dev/shm/flatlane.{name}"):
                lo, hi = line.split()[0].split("-")
                out.append((int(lo, 16), int(hi, 16)))
    return out


def address(buf: Any) -> int:
    return int(np.frombuffer(buf, dtype=np.uint8).__array_interface__["data"][0]) if not isinstance(
        buf, np.ndarray
    ) else int(buf.__array_interface__["data"][0])


def inside_segment(name: str, buf: Any) -> bool:
    a = address(buf)
    n = buf.nbytes
    return any(lo <= a and a + n <= hi for lo, hi in mappings(name))


def holds_sample(arr: np.ndarray) -> bool:
    """Walks the base chain to the memoryview whose exporter is the received message."""
    b: Any = arr
    while isinstance(b, np.ndarray):
        b = b.base
    return isinstance(b, memoryview) and isinstance(b.obj, (flatlane.Sample, flatlane.Request, flatlane.Reply))


@dataclasses.dataclass
class Point:
    x: float
    y: float


@pytest.fixture
def topic(channel: str) -> Iterator[Tuple[flatlane.Publisher, flatlane.Subscriber]]:
    with flatlane.Subscriber(channel, slot_size=1 << 16, slot_count=16, queue_depth=16) as sub, flatlane.Publisher(
        channel
    ) as pub:
        yield pub, sub


PICKLE_OBJECTS = [
    {"a": 1, "b": [1, 2.5, "x"], "c": None},
    (1, "two", 3.0),
    {1, 2, 3},
    Point(1.5, -2.0),
    "text ünïcode",
    12345678901234567890,
    [np.arange(3), {"nested": b"bytes"}],
]

MSGPACK_OBJECTS = [
    {"a": 1, "b": [1, 2.5, "x"], "c": None, "d": True},
    [1, "two", 3.0],
    "text ünïcode",
    -17,
    {"blob": b"\x00\x01\x02"},
]


@pytest.mark.parametrize("obj", PICKLE_OBJECTS, ids=lambda o: type(o).__name__)
def test_pickle_roundtrip(topic: Tuple[flatlane.Publisher, flatlane.Subscriber], obj: Any) -> None:
    pub, sub = topic
    assert pub.codec == "pickle"
    pub.send(obj)
    got = sub.recv(timeout=1000)
    if isinstance(obj, list):
        assert (got[0] == obj[0]).all() and got[1] == obj[1]
    else:
        assert got == obj and type(got) is type(obj)
    assert sub.endpoint.held_samples == 0  # decoded objects give the slot back at once


def test_msgpack_is_installed() -> None:
    # scripts/setup.sh installs python3-msgpack; the msgpack tests must not pass by skipping.
    assert flatlane.msgpack_available()


@pytest.mark.parametrize("obj", MSGPACK_OBJECTS, ids=lambda o: type(o).__name__)
def test_msgpack_roundtrip(channel: str, obj: Any) -> None:
    with flatlane.Subscriber(channel) as sub, flatlane.Publisher(channel, codec="msgpack") as pub:
        assert pub.codec == "msgpack"
        pub.send(obj)
        raw = sub.endpoint.receive(timeout=1000)
        assert raw.data[2] == _codec.CODEC_MSGPACK  # the header names the codec
        raw.release()
        pub.send(obj)
        assert sub.recv(timeout=1000) == obj


def test_msgpack_tuple_arrives_as_list_and_set_is_refused(channel: str) -> None:
    with flatlane.Subscriber(channel) as sub, flatlane.Publisher(channel, codec="msgpack") as pub:
        pub.send((1, 2))
        assert sub.recv(timeout=1000) == [1, 2]
        with pytest.raises(flatlane.SerializationError, match=r"msgpack cannot encode set") as ei:
            pub.send({1, 2})
        assert ei.value.errc == flatlane.Errc.INVALID_ARGUMENT and ei.value.channel == channel
        with pytest.raises(flatlane.FlatlaneTimeoutError):
            sub.recv(timeout=0)  # nothing was sent


def test_unknown_codec_and_missing_msgpack(channel: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown codec 'json'"):
        flatlane.Publisher(channel, codec="json")
    with flatlane.Subscriber(channel) as sub, flatlane.Publisher(channel, codec="msgpack") as pub:
        pub.send({"x": 1})
        monkeypatch.setattr(_codec, "_msgpack", None)
        monkeypatch.setattr(_codec, "_msgpack_checked", True)
        with pytest.raises(flatlane.SerializationError, match="msgpack module is not installed"):
            sub.recv(timeout=1000)
        with pytest.raises(ValueError, match="python3-msgpack"):
            flatlane.Publisher(channel, codec="msgpack")


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview"])
def test_raw_bytes_zero_copy(topic: Tuple[flatlane.Publisher, flatlane.Subscriber], kind: str) -> None:
    pub, sub = topic
    payload = bytes(range(64))
    obj: Any = {"bytes": payload, "bytearray": bytearray(payload), "memoryview": memoryview(payload)}[kind]
    pub.send(obj)
    got = sub.recv(timeout=1000)
    assert isinstance(got, memoryview) and got.readonly
    assert bytes(got) == payload
    assert inside_segment(sub.name, got)  # a view of the slot, not a copy
    assert sub.endpoint.held_samples == 1
    del got
    gc.collect()
    assert sub.endpoint.held_samples == 0  # the slot went back with the last view


def test_large_messages_take_the_loan_path(topic: Tuple[flatlane.Publisher, flatlane.Subscriber]) -> None:
    # Above 2 KiB a message is written into the loaned slot instead of joined with its header.
    pub, sub = topic
    blob = bytes(range(256)) * 160
    for obj in (blob, bytearray(blob), memoryview(blob)[1000:], {"text": "z" * 30_000}):
        pub.send(obj)
        got = sub.recv(timeout=1000)
        if isinstance(obj, dict):
            assert got == obj
        else:
            assert bytes(got) == bytes(obj) and inside_segment(sub.name, got)
        del got
    assert sub.endpoint.held_samples == 0
    with pytest.raises(ValueError, match="not C-contiguous"):
        pub.send(memoryview(blob)[::2])  # as Writer.send: make it contiguous first
    with pytest.raises(flatlane.FlatlaneTimeoutError):
        sub.recv(timeout=0)


ARRAYS = [
    np.arange(12, dtype=np.float32).reshape(3, 4),
    np.array(7, dtype=np.int64),
    np.array([True, False, True]),
    np.arange(10, dtype=">i4"),
    np.array(["2024-01-01T00:00:00"], dtype="datetime64[ns]"),
    np.zeros((0, 3), dtype=np.uint16),
    (np.arange(24, dtype=np.complex128) * 1j).reshape(2, 3, 4),
    np.array(["ab", "cde"]),
    np.arange(3).astype("m8[s]"),
]


@pytest.mark.parametrize("arr", ARRAYS, ids=lambda a: f"{a.dtype.str}{a.shape}")
def test_ndarray_zero_copy(topic: Tuple[flatlane.Publisher, flatlane.Subscriber], arr: np.ndarray) -> None:
    pub, sub = topic
    pub.send(arr)
    got = sub.recv(timeout=1000)
    assert isinstance(got, np.ndarray)
    assert got.dtype == arr.dtype and got.shape == arr.shape
    assert np.array_equal(got, arr)
    if arr.size:
        assert not got.flags.writeable
        assert inside_segment(sub.name, got)  # the array's buffer lies inside the mapping
        assert holds_sample(got)  # and its base chain holds the sample
        assert got.__array_interface__["data"][0] % 16 == 0  # the header keeps the data aligned


def test_ndarray_non_contiguous_copied_straight_into_slot(topic: Tuple[flatlane.Publisher, flatlane.Subscriber]) -> None:
    pub, sub = topic
    base = np.arange(100, dtype=np.int32).reshape(10, 10)
    for view in (base.T, base[::2, 1::3], base[:, ::-1]):
        pub.send(view)
        got = sub.recv(timeout=1000)
        assert got.flags.c_contiguous and np.array_equal(got, view)


def test_object_and_structured_arrays_go_through_pickle(topic: Tuple[flatlane.Publisher, flatlane.Subscriber]) -> None:
    pub, sub = topic
    obj = np.array([{"a": 1}, None], dtype=object)
    rec = np.zeros(3, dtype=[("x", "<f4"), ("y", "<i2")])
    rec["x"] = [1, 2, 3]
    for arr in (obj, rec):
        pub.send(arr)
        got = sub.recv(timeout=1000)
        assert got.dtype == arr.dtype and list(got) == list(arr)


def test_loan_array_builds_in_the_slot(topic: Tuple[flatlane.Publisher, flatlane.Subscriber]) -> None:
    pub, sub = topic
    with pub.loan_array((4, 8), np.float64) as a:
        assert inside_segment(pub.name, a) and a.flags.writeable
        a[:] = np.arange(32).reshape(4, 8)
    got = sub.recv(timeout=1000)
    assert np.array_equal(got, np.arange(32).reshape(4, 8))
    del got  # its slot goes back with it
    with pytest.raises(RuntimeError):
        with pub.loan_array(3, "u1") as b:
            b[:] = 1
            raise RuntimeError("abandon")
    with pytest.raises(flatlane.FlatlaneTimeoutError):
        sub.recv(timeout=0)  # discarded, not published
    assert pub.stats().transport.free_slots == pub.stats().transport.slot_count


def test_views_outlive_close(channel: str) -> None:
    sub = flatlane.Subscriber(channel)
    pub = flatlane.Publisher(channel)
    pub.send(np.arange(256, dtype=np.uint16))
    pub.send(b"still here")
    arr = sub.recv(timeout=1000)
    mv = sub.recv(timeout=1000)
    pub.close()
    sub.close()  # no BufferError with views alive
    del pub, sub
    gc.collect()
    assert int(arr.sum()) == sum(range(256))
    assert bytes(mv) == b"still here"
    assert mappings(channel)  # the mapping lives while the views do
    del arr, mv
    gc.collect()
    assert not mappings(channel)  # and goes with the last of them


def test_held_views_limit_and_release(channel: str) -> None:
    with flatlane.Subscriber(channel, max_held=2) as sub, flatlane.Publisher(channel) as pub:
        for k in range(3):
            pub.send(np.full(4, k, dtype=np.int8))
        a = sub.recv(timeout=1000)
        b = sub.recv(timeout=1000)
        with pytest.raises(flatlane.ChannelBusyError, match="max_held"):
            sub.recv(timeout=0)
        del a
        c = sub.recv(timeout=1000)  # a's slot went back with the array
        assert int(b[0]) == 1 and int(c[0]) == 2


def test_oversize_is_refused_with_context(channel: str) -> None:
    with flatlane.Subscriber(channel, slot_size=1024) as sub, flatlane.Publisher(channel) as pub:
        with pytest.raises(flatlane.MessageTooLargeError, match=rf"topic '{channel}'.*ndarray is 2080 bytes.*1024") as ei:
            pub.send(np.zeros(2048, np.uint8))
        assert ei.value.errc == flatlane.Errc.MESSAGE_TOO_LARGE and ei.value.role == "publisher"
        with pytest.raises(flatlane.MessageTooLargeError, match="dict is"):
            pub.send({"x": "y" * 2000})
        with pytest.raises(flatlane.MessageTooLargeError):
            pub.loan_array(2048, np.uint8)
        pub.send(b"x" * (1024 - 8))  # exactly the slot, header included
        assert len(sub.recv(timeout=1000)) == 1016
        assert pub.stats().transport.free_slots == pub.stats().transport.slot_count


def test_timeout_and_buffer_full(channel: str) -> None:
    with flatlane.Subscriber(channel) as sub:
        t0 = time.monotonic()
        with pytest.raises(flatlane.FlatlaneTimeoutError, match="within 30"):
            sub.recv(timeout=30)
        assert time.monotonic() - t0 >= 0.025
    with flatlane.Pusher(channel + ".q", queue_depth=2, block_timeout_ms=30) as push:
        push.send(1)
        push.send(2)  # waits in the queue, no puller attached
        with pytest.raises(flatlane.BufferFullError) as ei:
            push.send(3)
        assert isinstance(ei.value, TimeoutError) and ei.value.channel == channel + ".q"
        with flatlane.Puller(channel + ".q") as pull:
            assert [pull.recv(timeout=1000), pull.recv(timeout=1000)] == [1, 2]
            with pytest.raises(flatlane.FlatlaneTimeoutError):
                pull.recv(timeout=0)


def test_unpicklable_is_a_serialization_error(topic: Tuple[flatlane.Publisher, flatlane.Subscriber]) -> None:
    pub, sub = topic
    with pytest.raises(flatlane.SerializationError, match=r"send\(\) on topic .*pickle cannot encode function") as ei:
        pub.send(lambda: 1)
    assert isinstance(ei.value, flatlane.FlatlaneError) and ei.value.__cause__ is not None
    pub.send("after")
    assert sub.recv(timeout=1000) == "after"


def test_undecodable_messages_are_consumed(channel: str) -> None:
    ident = dict(type_name=_codec.TYPE_NAME, type_hash=_codec.TYPE_HASH)
    with flatlane.Subscriber(channel) as sub, flatlane.TopicPublisher(channel, **ident) as raw:
        bad = [
            (b"abc", "shorter than"),
            (b"\x00" * 16, "magic 0x00"),
            (bytes([0xF1, 9, 1, 0, 8, 0, 0, 0]), "version 9"),
            (bytes([0xF1, 1, 77, 0, 8, 0, 0, 0]), "unknown codec id 77"),
            (bytes([0xF1, 1, 1, 0, 8, 0, 0, 0]) + b"not a pickle", "decoding a 20-byte pickle message failed"),
            (bytes([0xF1, 1, 3, 0, 16, 0, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0]), "overruns"),
        ]
        for data, why in bad:
            raw.send(data)
            with pytest.raises(flatlane.SerializationError, match=why) as ei:
                sub.recv(timeout=1000)
            assert ei.value.errc == flatlane.Errc.CORRUPT and ei.value.role == "subscriber"
        raw.send(_codec.ndarray_header((4,), "<f8") + b"\x00" * 8)  # 4 doubles announced, 1 sent
        with pytest.raises(flatlane.SerializationError, match="needs 64 bytes, the message has 40"):
            sub.recv(timeout=1000)
        assert sub.stats().rejected == len(bad) + 1
        assert sub.endpoint.held_samples == 0
        with flatlane.Publisher(channel) as pub:
            pub.send("fine")
            assert sub.recv(timeout=1000) == "fine"


def test_allow_pickle_false(channel: str) -> None:
    with flatlane.Subscriber(channel, allow_pickle=False) as sub, flatlane.Publisher(channel) as pub:
        pub.send({"x": 1})
        with pytest.raises(flatlane.SerializationError, match="allow_pickle=False"):
            sub.recv(timeout=1000)
        pub.send(b"raw is fine")
        assert bytes(sub.recv(timeout=1000)) == b"raw is fine"


def test_mismatched_peers(channel: str) -> None:
    with flatlane.TopicPublisher(channel, type_name="fltest.Sample", type_hash=0xB3F396F3A97116DE):
        with pytest.raises(flatlane.TypeMismatchError, match="fltest.Sample.*flatlane.py.Object") as ei:
            flatlane.Subscriber(channel)
        assert isinstance(ei.value, flatlane.SchemaMismatchError)
    with flatlane.Pusher(channel + ".q"):
        with pytest.raises(flatlane.SchemaMismatchError, match="is a work queue .*subscriber") as ei2:
            flatlane.Subscriber(channel + ".q")
        assert ei2.value.errc == flatlane.Errc.LAYOUT_MISMATCH
    with flatlane.Subscriber(channel + ".t"):
        with pytest.raises(flatlane.SchemaMismatchError, match="publish/subscribe topic; a pusher"):
            flatlane.Pusher(channel + ".t")
        with pytest.raises(flatlane.SchemaMismatchError, match="publish/subscribe topic; a puller"):
            flatlane.Puller(channel + ".t")
    with pytest.raises(TypeError, match="unknown option.*bogus"):
        flatlane.Pusher(channel + ".u", bogus=1)
    with pytest.raises(ValueError, match="no history"):
        flatlane.Pusher(channel + ".u", history=2)


def test_raw_mode_talks_to_runtime_endpoints(channel: str) -> None:
    # raw=True: no header, no type name: what a C++/C# untyped endpoint sends and reads.
    with flatlane.Subscriber(channel, raw=True) as sub, flatlane.TopicPublisher(channel) as rt_pub:
        rt_pub.send(b"from the runtime")
        got = sub.recv(timeout=1000)
        assert bytes(got) == b"from the runtime" and inside_segment(channel, got)
        del got
    with flatlane.TopicSubscriber(channel + ".b") as rt_sub, flatlane.Publisher(channel + ".b", raw=True) as pub:
        assert pub.codec == "raw"
        pub.send(np.arange(4, dtype=np.uint8))
        with rt_sub.receive(timeout=1000) as s:
            assert bytes(s.data) == bytes([0, 1, 2, 3])
        with pytest.raises(TypeError, match="bytes-like"):
            pub.send({"not": "bytes"})


def test_work_queue_each_message_once(channel: str) -> None:
    with flatlane.Pusher(channel) as push, flatlane.Puller(channel) as a, flatlane.Puller(channel) as b:
        assert push.endpoint.work_queue and a.endpoint.work_queue
        for k in range(30):  # within queue_depth: no puller takes any before the loop below
            push.send({"job": k})
        seen: List[int] = []
        for q in (a, b, a, b) * 30:
            try:
                seen.append(q.recv(timeout=0)["job"])
            except flatlane.FlatlaneTimeoutError:
                pass
        assert sorted(seen) == list(range(30))
        assert a.stats().messages > 0 and b.stats().messages > 0


def test_request_reply(channel: str) -> None:
    with flatlane.Replier(channel) as rep, flatlane.Requester(channel) as req:
        rid = req.send({"op": "add", "args": [2, 3]})
        incoming = rep.recv_request(timeout=1000)
        assert incoming.id == rid and incoming.value == {"op": "add", "args": [2, 3]}
        assert incoming.reply(5) is True
        assert req.recv(timeout=1000) == 5 and not req.more
        with pytest.raises(ValueError, match="no request is waiting"):
            req.recv(timeout=0)
        # lock step
        req.send("ping")
        assert rep.recv(timeout=1000) == "ping"
        with pytest.raises(ValueError, match="not answered yet"):
            rep.recv(timeout=0)
        rep.send("pong")
        assert req.recv(timeout=1000) == "pong"
        with pytest.raises(ValueError, match="no request to answer"):
            rep.send("again")
        # streaming
        req.send("count")
        assert rep.recv(timeout=1000) == "count"
        for k in range(3):
            rep.send(k, more=k < 2)
        got = [req.recv(timeout=1000)]
        while req.more:
            got.append(req.recv(timeout=1000))
        assert got == [0, 1, 2]
        # NumPy both ways, zero copy on receipt
        req.send(np.arange(16, dtype=np.float32))
        arr = rep.recv(timeout=1000)
        assert holds_sample(arr) and inside_segment(channel, arr)
        rep.send(arr * 2)
        back = req.recv(timeout=1000)
        assert np.array_equal(back, np.arange(16, dtype=np.float32) * 2) and holds_sample(back)


def test_request_reply_out_of_order_and_errors(channel: str) -> None:
    with flatlane.Requester(channel + ".none", max_request=256) as lonely:
        with pytest.raises(flatlane.ChannelNotFoundError):
            lonely.send("anyone?")
    with flatlane.Replier(channel, max_request=256, reply_ring=4096) as rep, flatlane.Requester(
        channel, max_request=256, reply_ring=4096
    ) as r1, flatlane.Requester(channel, max_request=256, reply_ring=4096) as r2:
        r1.send("first")
        r2.send("second")
        a = rep.recv_request(timeout=1000)
        b = rep.recv_request(timeout=1000)
        b.reply("to second")
        a.reply("to first")
        assert r2.recv(timeout=1000) == "to second" and r1.recv(timeout=1000) == "to first"
        with pytest.raises(ValueError, match="answered"):
            a.reply("twice")
        with pytest.raises(flatlane.MessageTooLargeError, match="max_request"):
            r1.send(b"x" * 300)
        r1.send("big reply please")
        c = rep.recv_request(timeout=1000)
        with pytest.raises(flatlane.MessageTooLargeError, match="reply ring"):
            c.reply(b"y" * 4096)
        c.reply("small")
        assert r1.recv(timeout=1000) == "small"
        with pytest.raises(flatlane.FlatlaneTimeoutError):
            r1.request("nobody answers", timeout=20)
        assert rep.stats().messages == 3 and r1.stats().messages == 2


def test_stats_and_logging(channel: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="flatlane"):
        with flatlane.Pusher(channel) as push, flatlane.Puller(channel) as pull:
            push.send(b"12345678")
            push.send({"a": 1})
            pull.recv(timeout=1000)
            pull.recv(timeout=1000)
            s = push.stats()
            assert (s.messages, s.rejected) == (2, 0) and s.bytes == pull.stats().bytes
            assert isinstance(s.transport, flatlane.PublisherStats) and s.transport.messages == 2
            assert isinstance(pull.stats().transport, flatlane.SubscriberStats)
            assert repr(push) == f"<flatlane.Pusher {channel!r} pickle open>"
    attach = [r.getMessage() for r in caplog.records if "work queue" in r.getMessage()]
    assert len(attach) == 2  # one line per attach, none per message


# ------------------------------------------------------------------------------------------------
# Real processes


def test_process_publisher_to_subscriber(channel: str) -> None:
    with flatlane.Subscriber(channel, queue_depth=64, subscriber_mode="block_publisher") as sub:
        with peer("publish", channel, 300, "pickle") as p:
            p.expect("ready")
            import untyped_peer

            for k in range(300):
                g = sub.recv(timeout=10_000)
                assert untyped_peer.check(k, g), (k, g)
                if isinstance(g, np.ndarray):
                    assert holds_sample(g) and inside_segment(channel, g)
                del g  # views hold their slot: at most max_held alive
            p.expect("done")
            exit_ok(p)


def test_process_subscriber_gets_everything(channel: str) -> None:
    import untyped_peer

    with peer("subscribe", channel, 300) as p:
        p.expect("ready")
        with flatlane.Publisher(channel) as pub:
            while pub.subscriber_count == 0:
                time.sleep(0.005)
            for k in range(300):
                pub.send(untyped_peer.item(k), timeout=10_000)
            p.expect("done")
            exit_ok(p)


def test_process_workers_share_a_queue(channel: str) -> None:
    workers = [peer("pull", channel) for _ in range(3)]
    try:
        for w in workers:
            w.expect("ready")
        with flatlane.Pusher(channel) as push:
            for k in range(150):
                push.send(k)
            for _ in workers:
                push.send(None)
            counts = [int(w.expect("done", 30)[1]) for w in workers]
            for w in workers:
                exit_ok(w)
        jobs = sorted(int(line.split()[1]) for w in workers for line in w.lines if line.startswith("got"))
        assert jobs == list(range(150))  # each job exactly once
        assert sum(counts) == 150
    finally:
        for w in workers:
            w.close()


def test_process_replier_and_kill9(channel: str) -> None:
    with peer("reply", channel) as p:
        p.expect("ready")
        with flatlane.Requester(channel, max_request=1 << 16, reply_ring=1 << 18) as req:
            for k in range(50):
                assert req.request({"k": k}, timeout=5000) == {"echo": {"k": k}, "pid": p.proc.pid}
            arr = np.arange(1000, dtype=np.int64)
            assert np.array_equal(req.request(arr, timeout=5000), arr * 2)
            req.send("hang")
            p.expect("hanging")  # it took the request and will not answer
            p.kill9()
            t0 = time.monotonic()
            with pytest.raises(flatlane.PeerDeadError) as ei:
                req.recv(timeout=10_000)  # the Replier died: known within ~a liveness interval
            assert time.monotonic() - t0 < 2.0
            assert isinstance(ei.value, flatlane.FlatlaneConnectionError)


def test_process_killed_subscriber_returns_held_slots(channel: str) -> None:
    with flatlane.Publisher(channel, slot_size=1 << 16, slot_count=8) as pub:
        with peer("hold", channel, 3) as p:
            p.expect("ready")
            while pub.subscriber_count == 0:
                time.sleep(0.005)
            for k in range(3):
                pub.send(np.full(1000, k, dtype=np.int32))
            words = p.expect("holding")
            assert words[1] == "3"
            assert pub.stats().transport.free_slots == 5  # three held by the child
            p.kill9()
        deadline = time.monotonic() + 10
        while pub.stats().transport.free_slots != 8:
            assert time.monotonic() < deadline, pub.stats()
            pub.send(b"probe")  # publishing notices the dead subscriber and reclaims its slots
            time.sleep(0.06)
        assert pub.stats().transport.subscribers == 0


# ------------------------------------------------------------------------------------------------
# C++ peers: raw=True endpoints carry exactly the frames a C++ endpoint sends and reads
# (tests/cpp/peer_topic.cpp, its work-queue settings in topic_test_util.hpp).

CPP_WORK = dict(slot_size=1024, slot_count=64, queue_depth=16, max_subscribers=32, max_publishers=4, max_held=16,
                type_name="fltest.Work", type_hash=7)


@pytest.fixture(scope="module")
def peer_topic() -> Path:
    from conftest import BUILD_DIR

    path = BUILD_DIR / "tests" / "cpp" / "flatlane_peer_topic"
    if not path.exists():
        pytest.fail(f"{path} not found: build the flatlane_peer_topic target (FLATLANE_BUILD_DIR={BUILD_DIR})")
    return path


def test_python_pusher_to_cpp_workers(channel: str, peer_topic: Path) -> None:
    from test_topic import topic_message

    with flatlane.Pusher(channel, raw=True, **CPP_WORK) as push:
        workers = [Peer([str(peer_topic), "subscribe", channel, "40", "dist=work"]) for _ in range(2)]
        try:
            for w in workers:
                w.expect("ready")
            for k in range(80):
                push.send(topic_message(k, 200), timeout=10_000)  # C++ checks every payload
            for w in workers:
                w.expect("done")
                exit_ok(w)
        finally:
            for w in workers:
                w.close()


def test_cpp_pusher_to_python_puller(channel: str, peer_topic: Path) -> None:
    from test_topic import message_id, topic_message

    with flatlane.Puller(channel, raw=True, **CPP_WORK) as pull:
        assert pull.endpoint.work_queue
        with Peer([str(peer_topic), "publish", channel, "100", "dist=work", "size=300"]) as p:
            p.expect("ready")
            for k in range(100):
                got = pull.recv(timeout=10_000)
                assert isinstance(got, memoryview) and inside_segment(channel, got)
                assert message_id(got) == k and bytes(got) == topic_message(k, 300)
                del got
            p.expect("done")
            exit_ok(p)


def test_iteration_ends_when_the_publishers_leave(channel: str) -> None:
    with flatlane.Subscriber(channel) as sub:
        pub = flatlane.Publisher(channel)
        for k in range(3):
            pub.send({"k": k})
        pub.close()
        assert [m["k"] for m in sub] == [0, 1, 2]  # everything queued, then PeerClosedError ends it
    with pytest.raises(flatlane.ClosedError):
        sub.recv(timeout=0)
