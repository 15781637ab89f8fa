"""Generated typed endpoints (flatlane-gen --lang python over flatlane.typed) on the channels of
tests/cpp/schema/typed_test.fbs, over the runtime's topics and work queues: built in the loaned
slot, read in place, slot sizes and limits, overflow policies and subscriber modes, history, type
identity, and real processes with the C++ typed peer (many subscribers, many workers, kill -9)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, List

import numpy as np
import pytest

import flatlane
from flatlane import _native, typed
from peers import Peer, child_env, exit_ok
from typed_content import (
    blob_bytes,
    blob_size,
    build_blob,
    build_blob_generated,
    build_sample,
    build_sample_generated,
    check_blob,
    check_sample,
    checksum,
    mix64,
    sample_values,
)

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "tests" / "cpp" / "schema" / "typed_test.fbs"
RING = 1 << 16  # ring_capacity of the typed_test channels: slot bytes per publisher


@pytest.fixture(scope="session")
def typed_peer() -> Path:
    """tests/cpp/peer_typed.cpp. Missing = the build is incomplete: fail, never skip."""
    from conftest import BUILD_DIR

    path = BUILD_DIR / "tests" / "cpp" / "flatlane_peer_typed"
    if not path.exists():
        pytest.fail(f"{path} not found: build the flatlane_peer_typed target (FLATLANE_BUILD_DIR={BUILD_DIR})")
    return path


def empty_sample(b: Any, sid: int) -> int:
    return build_sample(b, sid, 0)


def flatbuffer_size(build: Any, *args: Any) -> int:
    """Size of the message `build` makes, built by a stock flatbuffers.Builder in the heap."""
    from flatbuffers.builder import Builder

    b = Builder(0)
    b.Finish(build(b, *args))
    return len(b.Output())


# --- the reliance on flatbuffers internals -----------------------------------------------------------


def test_builder_internals_are_those_of_flatbuffers_2_0_8() -> None:
    """flatlane.typed replaces Builder.Bytes/head and overrides growByteBuffer: pinned here so an
    upgrade of python3-flatbuffers fails this test rather than building wrong messages."""
    import flatbuffers
    from flatbuffers.builder import Builder

    assert flatbuffers.__version__.startswith("2.0.8")
    assert set(Builder.__slots__) == {"Bytes", "current_vtable", "head", "minalign", "objectEnd", "vtables",
                                      "nested", "forceDefaults", "finished", "vectorNumElems"}
    # A stock builder pointed at a memoryview of a larger region writes the same bytes, ending at
    # the region's end, as one that owns its bytearray.
    def make(b: Builder) -> None:
        s = b.CreateString("abc")
        b.StartObject(2)
        b.PrependUint64Slot(0, 7, 0)
        b.PrependUOffsetTRelativeSlot(1, s, 0)
        b.Finish(b.EndObject())

    plain = Builder(0)
    make(plain)
    region = bytearray(256)
    inplace = Builder(0)
    inplace.Bytes, inplace.head = memoryview(region), len(region)
    make(inplace)
    assert bytes(region[inplace.head :]) == bytes(plain.Output())


# --- generated module ------------------------------------------------------------------------------


def test_generated_traits_and_specs(gen: ModuleType) -> None:
    from fltest.Blob import Blob
    from fltest.Sample import Sample

    sample = gen.MESSAGES["fltest.Sample"]
    assert (sample.type_name, sample.reader, sample.file_identifier) == ("fltest.Sample", Sample, None)
    assert gen.MESSAGES["fltest.Blob"].reader is Blob
    ch = gen.Samples.strict
    assert ch.message is sample
    assert ch.spec == typed.ChannelSpec(name="fltest.Samples.strict", kind=typed.ChannelKind.TOPIC,
                                        ring_capacity=RING, max_message=1 << 32, chunk_size=0,
                                        overflow=typed.Overflow.FAIL,
                                        wait=flatlane.WaitStrategy.SPIN_THEN_SLEEP)
    assert gen.Bulk.blobs.spec.chunk_size == 8192 and gen.Bulk.blobs.spec.max_message == 1 << 20
    assert issubclass(gen.Bulk.blobs.Pusher, typed.Pusher) and gen.Bulk.blobs.Pusher.spec is gen.Bulk.blobs.spec
    assert gen.Samples.lossy.Publisher.__qualname__ == "fltest.Samples.lossy.Publisher"
    assert set(gen.CHANNELS) == {"fltest.Samples.samples", "fltest.Samples.strict", "fltest.Samples.lossy",
                                 "fltest.Bulk.blobs", "fltest.Bulk.capped", "fltest.Calc.Add",
                                 "fltest.Calc.Count", "fltest.Inplace.invert"}
    with pytest.raises(TypeError, match="Subscriber needs a topic channel; fltest.Bulk.blobs is a pipeline"):
        typed.Subscriber.of(gen.Bulk.blobs.spec, gen.Bulk.blobs.message)
    with pytest.raises(TypeError, match="not bound to a channel"):
        typed.Publisher()


# --- round trips -----------------------------------------------------------------------------------


def test_samples_round_trip_in_place(gen: ModuleType, channel: str) -> None:
    with gen.Samples.samples.Publisher(name=channel) as pub, gen.Samples.samples.Subscriber(name=channel) as sub:
        for i in range(300):
            assert pub.send(build_sample, i) is True
            with sub.recv(timeout=1000) as m:
                assert check_sample(m.msg, i) == ""
                assert m.zero_copy and m.seq == i + 1 and len(m.bytes) == len(m) and m.publisher == 0
        assert pub.stats() == typed.TopicSenderStats(sent=300, dropped=0, too_large=0)
        assert sub.stats() == typed.TopicReceiverStats(received=300, rejected=0, dropped=0, queued=0, held=0)
        assert pub.topic_stats().messages == 300 and pub.subscriber_count == 1
        assert sub.subscriber.held_samples == 0


def test_send_passes_args_and_non_ascii_strings(gen: ModuleType, channel: str) -> None:
    """flatbuffers 2.0.8 sizes a str by characters; the slot builder encodes first."""
    from fltest import Sample as S

    label = "ünïcødé ✓ " * 20

    def build(b: Any, text: str) -> int:
        s = b.CreateString(text)
        S.SampleStart(b)
        S.SampleAddLabel(b, s)
        return S.SampleEnd(b)

    with gen.Samples.samples.Publisher(name=channel) as pub, gen.Samples.samples.Subscriber(name=channel) as sub:
        pub.send(build, label)
        with sub.recv(timeout=1000) as m:
            assert m.msg.Label().decode() == label


def test_the_builder_writes_into_the_loaned_slot(gen: ModuleType, channel: str) -> None:
    """Zero copy on the sending side: the builder's buffer is the loaned topic slot (a writable
    view exported by the publisher, not a bytearray), the whole slot, and the received message is
    exactly its tail: it ends where the slot ends, at the same offset of the topic segment."""
    seen: List[Any] = []

    def build(b: Any, sid: int) -> int:
        view = b.Bytes
        seen.append((type(view), type(view.obj), view.readonly, len(view)))
        seen.append(np.frombuffer(view, np.uint8).__array_interface__["data"][0] + len(view))
        root = build_sample(b, sid)
        seen.append(bytes(view[b.head:]))  # what is built, where it lies
        return root

    with gen.Samples.samples.Publisher(name=channel) as pub, gen.Samples.samples.Subscriber(name=channel) as sub:
        assert pub.max_message == 64 * 1024  # the schema leaves max_message: one 64 KiB slot
        pub.send(build, 5)
        (kind, owner, readonly, length), slot_end, built = seen
        assert kind is memoryview and owner is _native.SlotExport and not readonly and length == pub.max_message
        with sub.recv(timeout=1000) as m:
            rx = m.bytes
            # What the builder had built in the slot is the tail of the finished FlatBuffer.
            assert len(rx) > len(built) and bytes(rx).endswith(built)
            end = np.frombuffer(rx, np.uint8).__array_interface__["data"][0] + len(rx)
            # Publisher and subscriber map the segment at different addresses: compare offsets
            # within a slot (slots are 64-aligned and the message ends at its slot's end).
            assert end % 64 == 0 and slot_end % 64 == 0
            del rx


def test_numpy_vector_is_a_zero_copy_view_that_keeps_the_slot(gen: ModuleType, channel: str) -> None:
    with gen.Samples.samples.Publisher(name=channel) as pub, gen.Samples.samples.Subscriber(name=channel) as sub:
        pub.send(build_sample, 9, 40)
        m = sub.recv(timeout=1000)
        values = m.msg.ValuesAsNumpy()
        assert values.dtype == np.float32 and not values.flags.writeable
        frame_start = np.frombuffer(m.bytes, np.uint8).__array_interface__["data"][0]
        vec_start = values.__array_interface__["data"][0]
        assert frame_start < vec_start < frame_start + len(m)  # inside the slot: not a copy
        assert np.array_equal(values, np.float32(4.5) + np.arange(40, dtype=np.float32))
        m.release()
        assert m.released and sub.subscriber.held_samples == 1  # the array still holds the slot
        assert float(values[39]) == 43.5  # and stays valid...
        with pytest.raises(ValueError):
            m.msg.Id()  # ...while the message itself can no longer be read
        del values
        assert sub.subscriber.held_samples == 0


def test_a_released_message_cannot_be_read(gen: ModuleType, channel: str) -> None:
    with gen.Samples.samples.Publisher(name=channel) as pub, gen.Samples.samples.Subscriber(name=channel) as sub:
        pub.send(build_sample, 4)
        with sub.recv(timeout=1000) as m:
            msg = m.msg
            assert msg.Id() == 4
        assert sub.subscriber.held_samples == 0  # given back at the end of `with`, msg still referenced
        with pytest.raises(ValueError):
            msg.Id()  # its memoryview is released: no read of a recycled slot
        with pytest.raises(ValueError, match="released"):
            m.bytes


def test_uninitialized_vector_of_no_elements(gen: ModuleType, channel: str) -> None:
    with gen.Bulk.blobs.Pusher(name=channel) as push, gen.Bulk.blobs.Puller(name=channel) as pull:
        push.send(build_blob, 3, 0)
        with pull.recv(timeout=1000) as m:
            assert check_blob(m.msg, 3, 0) == "" and m.msg.DataLength() == 0


# --- slot sizes and limits ---------------------------------------------------------------------------


def test_slot_size_comes_from_max_message(gen: ModuleType, channel: str) -> None:
    with gen.Bulk.blobs.Pusher(name=channel) as push, gen.Bulk.capped.Pusher(name=channel + "c") as capped, \
            gen.Samples.samples.Publisher(name=channel + "s", max_message=100) as small:
        assert push.max_message == 1 << 20 and capped.max_message == 16 * 1024 and small.max_message == 128
        # 64 KiB ring / slot, at least 8 slots per publisher.
        assert push.topic_stats().slot_count == 8 and capped.topic_stats().slot_count == 8


def test_messages_up_to_the_slot_travel_in_place(gen: ModuleType, channel: str) -> None:
    sizes = [100_000, 5, 200 * 1024 - 1, (1 << 20) - 128]
    got: List[str] = []

    def pull_all() -> None:
        with gen.Bulk.blobs.Puller(name=channel, mode="open") as pull:
            for k, size in enumerate(sizes):
                with pull.recv(timeout=10_000) as m:
                    got.append(check_blob(m.msg, k, size) or f"ok {m.zero_copy}")

    with gen.Bulk.blobs.Pusher(name=channel, mode="create") as push:
        t = threading.Thread(target=pull_all)
        t.start()
        for k, size in enumerate(sizes):
            push.send(build_blob, k, size)
        t.join(30)
        assert not t.is_alive()
        assert got == ["ok True"] * 4
        assert push.stats().sent == 4


def test_message_too_large_publishes_nothing(gen: ModuleType, channel: str) -> None:
    """capped: 16 KiB slots; blobs: 1 MiB. Topics do not chunk."""
    with gen.Bulk.capped.Pusher(name=channel) as push, gen.Bulk.capped.Puller(name=channel) as pull:
        with pytest.raises(flatlane.MessageTooLargeError, match="must fit one slot of 16384 bytes") as e:
            push.send(build_blob, 1, 20_000)
        assert e.value.errc is flatlane.Errc.MESSAGE_TOO_LARGE and e.value.channel == channel
        with pytest.raises(flatlane.MessageTooLargeError, match="do not chunk"):
            push.send(build_blob, 2, 100_000)

        def many_vectors(b: Any) -> int:
            for _ in range(40):
                b.CreateByteVector(bytes(4000))
            return empty_sample(b, 0)

        with pytest.raises(flatlane.MessageTooLargeError, match="built so far"):
            push.send(many_vectors)
        with pytest.raises(flatlane.FlatlaneTimeoutError):
            pull.recv(timeout=0)
        push.send(build_blob, 3, 16_000)  # the sender is still usable
        with pull.recv(timeout=1000) as m:
            assert check_blob(m.msg, 3, 16_000) == ""
        assert push.stats() == typed.TopicSenderStats(sent=1, dropped=0, too_large=3)
        assert push.topic_stats().free_slots == push.topic_stats().slot_count  # every slot came back
    with gen.Bulk.blobs.Pusher(name=channel + "b") as push:
        with pytest.raises(flatlane.MessageTooLargeError):
            push.send(build_blob, 4, 1_100_000)
        assert push.stats().sent == 0
    with gen.Samples.samples.Publisher(name=channel + "c", max_message=100) as pub:
        with pytest.raises(flatlane.MessageTooLargeError, match="one slot of 128 bytes"):
            pub.send(build_sample, 1, 63)


def test_exception_in_build_publishes_nothing(gen: ModuleType, channel: str) -> None:
    def bad(b: Any) -> int:
        b.CreateString("half a message")
        raise RuntimeError("user code failed")

    with gen.Samples.samples.Publisher(name=channel) as pub, gen.Samples.samples.Subscriber(name=channel) as sub:
        with pytest.raises(RuntimeError, match="user code failed"):
            pub.send(bad)
        with pytest.raises(flatlane.FlatlaneTimeoutError):
            sub.recv(timeout=0)
        pub.send(build_sample, 7)
        with sub.recv(timeout=1000) as m:
            assert check_sample(m.msg, 7) == "" and m.seq == 1
        assert pub.stats().sent == 1


# --- overflow policies and subscriber modes --------------------------------------------------------


def fill(pub: Any, limit: int = 10_000) -> int:
    """Sends empty samples until one is refused; returns how many went out."""
    for i in range(limit):
        if not pub.send(empty_sample, i):
            return i
    raise AssertionError("the topic never filled")


def test_overflow_fail_raises_buffer_full_and_counts(gen: ModuleType, channel: str) -> None:
    """fail: subscribers default to block_publisher; a subscriber that does not read holds every
    slot of the pool in its queue, and the next send fails at once."""
    with gen.Samples.strict.Publisher(name=channel) as pub, gen.Samples.strict.Subscriber(name=channel) as sub:
        t0 = time.monotonic()
        with pytest.raises(flatlane.BufferFullError):
            fill(pub)
        assert time.monotonic() - t0 < 0.5
        sent = pub.stats().sent
        assert sent == pub.topic_stats().slot_count == 8 and pub.stats().dropped == 1 and pub.dropped == 1
        t0 = time.monotonic()
        with pytest.raises(flatlane.BufferFullError):
            pub.send(empty_sample, 0, timeout=30)  # an explicit wait overrides the policy...
        assert time.monotonic() - t0 >= 0.025
        assert pub.stats().dropped == 1  # ...and is not a drop
        for i in range(sent):
            with sub.recv(timeout=1000) as m:
                assert m.msg.Id() == i
        pub.send(empty_sample, 99)  # room again
        assert pub.stats().sent == sent + 1
        assert sub.stats().dropped == 0


def test_overflow_drop_oldest_drops_at_the_subscriber(gen: ModuleType, channel: str) -> None:
    """drop_oldest: subscribers default to drop_oldest; the publisher never waits and never fails,
    a subscriber that does not keep up loses its oldest messages (counted) and keeps the newest."""
    with gen.Samples.lossy.Publisher(name=channel) as pub, gen.Samples.lossy.Subscriber(name=channel) as sub:
        t0 = time.monotonic()
        for i in range(3000):
            assert pub.send(empty_sample, i) is True
        assert time.monotonic() - t0 < 5
        assert pub.stats().dropped == 0
        ids = []
        while True:
            try:
                with sub.recv(timeout=0) as m:
                    ids.append(m.msg.Id())
            except flatlane.FlatlaneTimeoutError:
                break
        assert ids == sorted(ids) and ids[-1] == 2999
        assert sub.stats().dropped > 0 and len(ids) + sub.stats().dropped == 3000


def test_a_pusher_without_room_drops_the_new_message(gen: ModuleType, channel: str) -> None:
    """A pipeline never drops queued work: with overflow drop_oldest and no puller, the pool fills
    and further sends return False (counted); the queued work is all delivered later."""
    with gen.Bulk.capped.Pusher(name=channel, overflow="drop_oldest") as push:
        sent = fill(push)
        assert sent == 8 and push.stats().dropped == 1
        with gen.Bulk.capped.Puller(name=channel) as pull:
            for i in range(sent):
                with pull.recv(timeout=1000) as m:
                    assert m.msg.Id() == i


def test_overflow_block_waits_send_timeout(gen: ModuleType, channel: str) -> None:
    with gen.Samples.samples.Publisher(name=channel, send_timeout=40) as pub, \
            gen.Samples.samples.Subscriber(name=channel):
        t0 = time.monotonic()
        with pytest.raises(flatlane.BufferFullError):
            fill(pub)
        assert time.monotonic() - t0 >= 0.035
        assert pub.stats().dropped == 0  # block never drops; it timed out
    with gen.Samples.samples.Publisher(name=channel + "b", overflow="fail") as pub, \
            gen.Samples.samples.Subscriber(name=channel + "b"):
        with pytest.raises(flatlane.BufferFullError):
            fill(pub)
        assert pub.stats().dropped == 1  # the option overrides the schema's policy


def test_subscriber_mode_is_an_option(gen: ModuleType, channel: str) -> None:
    """On a blocking topic a drop_oldest subscriber never holds the publisher up, while the
    block_publisher subscriber beside it gets everything."""
    with gen.Samples.samples.Publisher(name=channel, send_timeout=1000) as pub, \
            gen.Samples.samples.Subscriber(name=channel) as all_, \
            gen.Samples.samples.Subscriber(name=channel, subscriber_mode="drop_oldest") as lossy:
        for i in range(100):
            pub.send(empty_sample, i)
            with all_.recv(timeout=1000) as m:
                assert m.msg.Id() == i
        got = 0
        while True:
            try:
                lossy.recv(timeout=0).release()
                got += 1
            except flatlane.FlatlaneTimeoutError:
                break
        assert lossy.dropped > 0 and got + lossy.stats().dropped == 100
    with pytest.raises(ValueError, match="subscriber mode"):
        gen.Samples.samples.Subscriber(name=channel + "x", subscriber_mode="sometimes")


def test_late_joiner_gets_retained_history(gen: ModuleType, channel: str) -> None:
    with gen.Samples.samples.Publisher(name=channel, history=4) as pub:
        for i in range(10):
            pub.send(empty_sample, i)
        with gen.Samples.samples.Subscriber(name=channel, history_request=3) as sub:
            assert [sub.recv(timeout=1000).msg.Id() for _ in range(3)] == [7, 8, 9]
            with pytest.raises(flatlane.FlatlaneTimeoutError):
                sub.recv(timeout=0)


# --- type identity and corrupt messages -------------------------------------------------------------


def test_attaching_with_another_type_names_both(gen: ModuleType, channel: str) -> None:
    sample, blob = gen.MESSAGES["fltest.Sample"], gen.MESSAGES["fltest.Blob"]
    with gen.Samples.samples.Publisher(name=channel):
        with pytest.raises(flatlane.TypeMismatchError) as e:
            typed.Subscriber.of(gen.Samples.samples.spec, blob)(name=channel)
        text = str(e.value)
        assert f"carries 'fltest.Sample' (hash {sample.type_hash:016x})" in text
        assert f"expects 'fltest.Blob' (hash {blob.type_hash:016x})" in text
        assert isinstance(e.value, flatlane.SchemaMismatchError)
        with pytest.raises(flatlane.TypeMismatchError):
            gen.Bulk.blobs.Puller(name=channel, type_check="name_only")  # names differ too


def test_a_pipeline_endpoint_on_a_topic_is_refused(gen: ModuleType, channel: str) -> None:
    sample = gen.MESSAGES["fltest.Sample"]
    as_pipeline = typed.ChannelSpec(name="x", kind=typed.ChannelKind.PIPELINE, ring_capacity=RING)
    with gen.Samples.samples.Publisher(name=channel):
        with pytest.raises(flatlane.InvalidArgumentError, match="is a publish/subscribe topic, this endpoint "
                                                                 r"expects a push/pull work queue \(pipeline\)"):
            typed.Puller.of(as_pipeline, sample)(name=channel)


def test_name_only_check_accepts_another_version(gen: ModuleType, channel: str) -> None:
    """A topic created by another version of fltest.Sample (same name, other hash)."""
    sample = gen.MESSAGES["fltest.Sample"]
    old_hash = sample.type_hash ^ 0x5A5A
    with flatlane.TopicPublisher(channel, mode="create", slot_size=1 << 16, type_name="fltest.Sample",
                                 type_hash=old_hash):
        with pytest.raises(flatlane.TypeMismatchError, match="fltest.Sample"):
            gen.Samples.samples.Subscriber(name=channel)
        with gen.Samples.samples.Subscriber(name=channel, type_check="name_only") as sub:
            assert sub.stats().received == 0
    with gen.Samples.samples.Subscriber(name=channel + "b", mode="create") as sub:
        other = typed.MessageTraits("fltest.Sample", old_hash, None, sample.reader)
        with typed.Publisher.of(gen.Samples.samples.spec, other)(name=channel + "b", type_check="name_only") as pub:
            pub.send(build_sample, 3)
            with sub.recv(timeout=1000) as m:
                assert check_sample(m.msg, 3) == ""
    with pytest.raises(ValueError, match="unknown type check 'loose'"):
        gen.Samples.samples.Subscriber(name=channel + "c", type_check="loose")


def test_corrupt_messages_are_rejected_and_counted(gen: ModuleType, channel: str) -> None:
    """A raw publisher of the same type (a buggy peer) publishes slots that are not a Sample."""
    sample = gen.MESSAGES["fltest.Sample"]
    with flatlane.TopicPublisher(channel, type_name=sample.type_name, type_hash=sample.type_hash) as w, \
            gen.Samples.samples.Subscriber(name=channel) as sub:
        w.send(b"\xf0\xff\x00\x00" + bytes(12))  # root offset far outside the message
        w.send(b"\x01\x00")  # too short
        with pytest.raises(flatlane.CorruptMessageError, match="root offset 65520 outside the message of 16 bytes"):
            sub.recv(timeout=1000)
        with pytest.raises(flatlane.CorruptSegmentError, match="too short"):
            sub.recv(timeout=1000)
        # A root offset that passes the root check over garbage: the generated verifier rejects it
        # and says where; the publisher's next good message comes through.
        garbage = b"\x08\x00\x00\x00" + bytes(4) + b"\xff\xff\xff\x7f" + bytes(4)
        w.send(garbage)
        with pytest.raises(flatlane.CorruptMessageError, match=r"fltest\.Sample: vtable at -2147483639 outside"):
            sub.recv(timeout=1000)
        w.send(b"\x04\x00\x00\x00")  # fine structure but 4 bytes: rejected, then all is normal
        with pytest.raises(flatlane.CorruptMessageError, match="too short"):
            sub.recv(timeout=1000)
        assert sub.stats() == typed.TopicReceiverStats(received=0, rejected=4, dropped=0, queued=0, held=0)
        assert sub.subscriber.held_samples == 0
    # verify=False (trusted peers): only the root check; reading garbage raises, it never crashes.
    with flatlane.TopicPublisher(channel + "u", type_name=sample.type_name, type_hash=sample.type_hash) as w, \
            gen.Samples.samples.Subscriber(name=channel + "u", verify=False) as sub:
        w.send(garbage)
        with sub.recv(timeout=1000) as m:
            with pytest.raises(Exception):
                m.msg.Id()
        assert sub.stats().received == 1


def test_closed_endpoints_raise(gen: ModuleType, channel: str) -> None:
    pub = gen.Samples.samples.Publisher(name=channel)
    sub = gen.Samples.samples.Subscriber(name=channel)
    pub.close()
    pub.close()
    assert pub.closed
    with pytest.raises(flatlane.ClosedError):
        pub.send(build_sample, 1)
    with pytest.raises(flatlane.PeerClosedError):
        sub.recv(timeout=100)
    sub.close()
    with pytest.raises(flatlane.ClosedError):
        sub.recv(timeout=0)


# --- the content functions agree with C++ -----------------------------------------------------------


def test_content_ports_match_known_values() -> None:
    # Values computed by tests/cpp/typed_test_util.hpp's functions (splitmix64 finaliser).
    assert mix64(0) == 0xE220A8397B1DCDAF
    assert sample_values(0) == 0xE220A8397B1DCDAF % 64
    data = blob_bytes(7, 20)
    assert [int(x) for x in data] == [(mix64(7 * 1_000_003 + i // 8) >> (8 * (i % 8))) & 0xFF for i in range(20)]
    s = 0
    for x in data:
        s = (s * 31 + int(x)) & ((1 << 64) - 1)
    assert checksum(data) == s
    assert blob_size(1) == mix64(1) % (200 * 1024)


# --- real processes: C++ peer -----------------------------------------------------------------------


@pytest.mark.parametrize("builder", [build_sample, build_sample_generated], ids=["flatc", "generated"])
def test_python_publisher_to_cpp_subscriber(gen: ModuleType, channel: str, typed_peer: Path,
                                            builder: Callable[..., int]) -> None:
    count = 2000
    with gen.Samples.samples.Publisher(name=channel, mode="create") as pub, Peer(
        [str(typed_peer), "subscribe", channel, str(count)]
    ) as peer:
        peer.expect("ready")
        for i in range(count):
            pub.send(builder, i, timeout=10_000)
        assert peer.expect("done") == ["done", str(count)]
        exit_ok(peer)  # exit 0: every sample passed check_sample in C++


def test_cpp_publisher_to_python_subscriber(gen: ModuleType, channel: str, typed_peer: Path) -> None:
    count = 2000
    with gen.Samples.samples.Subscriber(name=channel, mode="create") as sub, Peer(
        [str(typed_peer), "publish", channel, str(count)]
    ) as peer:
        peer.expect("ready")
        for i in range(count):
            with sub.recv(timeout=10_000) as m:
                assert check_sample(m.msg, i) == ""
                assert m.zero_copy
        exit_ok(peer)


def test_cpp_pusher_to_python_puller(gen: ModuleType, channel: str, typed_peer: Path) -> None:
    count = 60
    with gen.Bulk.blobs.Puller(name=channel, mode="create") as pull, Peer(
        [str(typed_peer), "push", channel, str(count)]
    ) as peer:
        peer.expect("ready")
        for i in range(count):
            with pull.recv(timeout=10_000) as m:
                assert check_blob(m.msg, i, blob_size(i)) == ""
                assert m.zero_copy
        assert peer.expect("done") == ["done", str(count)]
        exit_ok(peer)


@pytest.mark.parametrize("builder", [build_blob, build_blob_generated], ids=["flatc", "generated"])
def test_python_pusher_to_cpp_puller(gen: ModuleType, channel: str, typed_peer: Path,
                                     builder: Callable[..., int]) -> None:
    count = 60
    with gen.Bulk.blobs.Pusher(name=channel, mode="create") as push, Peer(
        [str(typed_peer), "pull", channel, str(count)]
    ) as peer:
        for i in range(count):  # work waits in the queue until the puller attaches
            push.send(builder, i, blob_size(i), timeout=10_000)
        assert push.stats().sent == count
        assert peer.expect("done") == ["done", str(count)]
        exit_ok(peer)


def test_python_publisher_to_three_cpp_subscriber_processes(gen: ModuleType, channel: str, typed_peer: Path) -> None:
    count = 1500
    with gen.Samples.samples.Publisher(name=channel, mode="create", send_timeout=10_000) as pub:
        peers = [Peer([str(typed_peer), "subscribe", channel, str(count)]) for _ in range(3)]
        try:
            for p in peers:
                p.expect("ready")
            assert pub.subscriber_count == 3
            for i in range(count):
                pub.send(build_sample, i)
            for p in peers:
                assert p.expect("done") == ["done", str(count)]
                exit_ok(p)  # every one of them checked every sample in C++
        finally:
            for p in peers:
                p.close()


def test_python_pusher_to_three_cpp_workers_each_message_once(gen: ModuleType, channel: str,
                                                               typed_peer: Path) -> None:
    count = 1200
    with gen.Bulk.capped.Pusher(name=channel, mode="create", send_timeout=10_000) as push:
        peers = [Peer([str(typed_peer), "work", channel, "0", "delay_us=20"]) for _ in range(3)]
        try:
            for p in peers:
                p.expect("ready")
            for i in range(count):
                push.send(build_blob, i, i % 100)
            push.close()  # the workers drain the queue, then see the pusher gone
            seen: List[int] = []
            for p in peers:
                words = p.expect("ids", timeout=30)
                ids = [int(x) for x in words[1].split(",")] if len(words) > 1 else []
                assert ids, "a worker got nothing"
                seen += ids
                p.expect("done")
                exit_ok(p)
            assert sorted(seen) == list(range(count))  # each message exactly once
        finally:
            for p in peers:
                p.close()


def test_killed_cpp_subscriber_does_not_stall_a_python_publisher(gen: ModuleType, channel: str,
                                                                  typed_peer: Path) -> None:
    count = 2000
    with gen.Samples.samples.Publisher(name=channel, mode="create", send_timeout=10_000) as pub, Peer(
        [str(typed_peer), "subscribe", channel, str(count), "delay_us=200"]
    ) as victim, Peer([str(typed_peer), "subscribe", channel, str(count)]) as survivor:
        victim.expect("ready")
        survivor.expect("ready")
        t0 = time.monotonic()
        for i in range(count):
            if i == 300:
                victim.kill9()
            pub.send(build_sample, i)
        assert time.monotonic() - t0 < 20
        assert survivor.expect("done") == ["done", str(count)]
        exit_ok(survivor)


# --- the generated module, imported, against the IR ---------------------------------------------------


def test_generated_modules_import_and_match_the_ir(tmp_path: Path) -> None:
    """robot_cell (every channel kind, flatlane.Void from the runtime package, a file identifier)
    and typed_test, imported in a fresh interpreter, say what the generator's IR says."""
    probe = r"""
import importlib, json, sys
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
from flatlane_gen.frontend import load
ir = load(sys.argv[3], sys.argv[4:], None)
mod = importlib.import_module(sys.argv[3].rsplit("/", 1)[1][:-4] + "_flatlane")
from flatlane import typed
assert set(mod.MESSAGES) == {m.name for m in ir.messages}
for m in ir.messages:
    t = mod.MESSAGES[m.name]
    assert (t.type_name, t.type_hash, t.file_identifier) == (m.type_name, m.type_hash, m.file_identifier), m.name
    assert t.reader.__name__ == m.name.rsplit(".", 1)[1] and hasattr(t.reader, "GetRootAs")
kinds = {}
for c in ir.channels:
    ch = mod.CHANNELS[c.qualified_name]
    s = ch.spec
    assert (s.name, s.kind.value, s.ring_capacity, s.max_message, s.chunk_size, s.overflow.value, s.wait.name.lower()) == (
        c.qualified_name, c.kind.value, c.ring_capacity, c.max_message, c.chunk_size, c.overflow.value, c.wait.value)
    if c.message:
        assert ch.message is mod.MESSAGES[c.message]
        sender, receiver = {"topic": ("Publisher", "Subscriber"), "pipeline": ("Pusher", "Puller")}[c.kind.value]
        assert issubclass(getattr(ch, sender), getattr(typed, sender)) and getattr(ch, receiver).spec is s
    else:
        assert ch.request is mod.MESSAGES[c.request] and ch.response is mod.MESSAGES[c.response]
        assert not hasattr(ch, "Publisher") and not hasattr(ch, "Pusher")
    kinds[c.kind.value] = kinds.get(c.kind.value, 0) + 1
print(json.dumps(kinds))
"""
    for schema, includes in ((REPO / "schema" / "examples" / "robot_cell.fbs", [str(REPO / "schema" / "examples")]),
                             (SCHEMA, [])):
        out = tmp_path / schema.stem
        env = dict(os.environ, PYTHONPATH=str(REPO / "generator"))
        args = [a for d in includes for a in ("-I", d)]
        r = subprocess.run([sys.executable, "-m", "flatlane_gen", *args, "--lang", "python", "-o", str(out),
                            str(schema)], capture_output=True, text=True, env=env, check=False)
        assert r.returncode == 0, r.stderr
        r = subprocess.run([sys.executable, "-c", probe, str(out), str(REPO / "generator"), str(schema), *includes],
                           capture_output=True, text=True, env=child_env(), check=False)
        assert r.returncode == 0, r.stderr
        if schema.stem == "robot_cell":  # every kind was checked
            assert json.loads(r.stdout) == {"topic": 2, "service": 3, "pipeline": 2, "duplex": 2}


# --- services: generated Client / Server ------------------------------------------------------------


def add_request(b: Any, a: int, c: int) -> int:
    from fltest import AddRequest as R

    R.AddRequestStart(b)
    R.AddRequestAddA(b, a)
    R.AddRequestAddB(b, c)
    return R.AddRequestEnd(b)


def add_reply(b: Any, total: int) -> int:
    from fltest import AddReply as R

    R.AddReplyStart(b)
    R.AddReplyAddSum(b, total)
    return R.AddReplyEnd(b)


def count_request(b: Any, to: int) -> int:
    from fltest import CountRequest as R

    R.CountRequestStart(b)
    R.CountRequestAddTo(b, to)
    return R.CountRequestEnd(b)


def count_reply(b: Any, n: int) -> int:
    from fltest import CountReply as R

    R.CountReplyStart(b)
    R.CountReplyAddN(b, n)
    return R.CountReplyEnd(b)


def test_service_endpoints_are_generated(gen: ModuleType) -> None:
    add = gen.Calc.Add
    assert issubclass(add.Client, typed.Client) and issubclass(add.Server, typed.Server)
    assert add.Client.request is gen.MESSAGES["fltest.AddRequest"] and add.Server.response is gen.MESSAGES["fltest.AddReply"]
    assert add.Client.__qualname__ == "fltest.Calc.Add.Client" and gen.Calc.Count.streaming is True
    with pytest.raises(TypeError, match="Client needs a service channel; fltest.Samples.samples is a topic"):
        typed.Client.of(gen.Samples.samples.spec, add.request, add.response)
    with pytest.raises(TypeError, match="not bound to a service channel"):
        typed.Server()


def test_calls_are_built_in_place_and_read_in_place(gen: ModuleType, channel: str) -> None:
    with gen.Calc.Add.Server(name=channel) as server, gen.Calc.Add.Client(name=channel) as client:
        assert server.max_message == client.max_message == 1024  # flatlane_max_message: "1KiB"
        seen: List[Any] = []

        def build(b: Any, a: int, c: int) -> int:
            seen.append((type(b.Bytes), type(b.Bytes.obj)))  # the request slot, not a bytearray
            return add_request(b, a, c)

        for i in range(50):
            rid = client.send(build, i, 2 * i)
            req = server.receive(timeout=1000)
            assert (req.msg.A(), req.msg.B(), req.id) == (i, 2 * i, rid) and req.zero_copy
            server.reply(req, add_reply, req.msg.A() + req.msg.B())
            req.release()
            with client.receive(rid, timeout=1000) as rep:
                assert rep.msg.Sum() == 3 * i and rep.id == rid and not rep.more
        assert seen[0][0] is memoryview and seen[0][1] is not bytearray
        with _serve_one(server, client, 20, 22) as rep:
            assert rep.msg.Sum() == 42


def _serve_one(server: Any, client: Any, a: int, c: int) -> Any:
    rid = client.send(add_request, a, c)
    with server.receive(timeout=1000) as req:
        server.reply(req, add_reply, req.msg.A() + req.msg.B())
    return client.receive(rid, timeout=1000)


def test_streaming_replies_carry_more_until_the_last(gen: ModuleType, channel: str) -> None:
    with gen.Calc.Count.Server(name=channel) as server, gen.Calc.Count.Client(name=channel) as client:
        rid = client.send(count_request, 5)
        with server.receive(timeout=1000) as req:
            to = req.msg.To()
            for n in range(1, to + 1):
                server.reply(req, count_reply, n, more=n < to)
        got = []
        while True:
            with client.receive(rid, timeout=1000) as rep:
                got.append((rep.msg.N(), rep.more))
                if not rep.more:
                    break
        assert got == [(1, True), (2, True), (3, True), (4, True), (5, False)]


def test_oversize_requests_and_replies_are_refused(gen: ModuleType, channel: str) -> None:
    def big_request(b: Any) -> int:
        b.CreateByteVector(bytes(2000))
        return add_request(b, 1, 2)

    def big_reply(b: Any) -> int:
        b.CreateByteVector(bytes(2000))
        return add_reply(b, 3)

    with gen.Calc.Add.Server(name=channel) as server, gen.Calc.Add.Client(name=channel) as client:
        with pytest.raises(flatlane.MessageTooLargeError, match="must fit max_message 1024 bytes"):
            client.send(big_request)
        with pytest.raises(flatlane.FlatlaneTimeoutError):
            server.receive(timeout=0)
        rid = client.send(add_request, 1, 2)  # still usable
        with server.receive(timeout=1000) as req:
            with pytest.raises(flatlane.MessageTooLargeError, match="services do not chunk"):
                server.reply(req, big_reply)
            server.reply(req, add_reply, 3)
        with client.receive(rid, timeout=1000) as rep:
            assert rep.msg.Sum() == 3


def test_a_malformed_request_is_rejected_and_the_server_goes_on(gen: ModuleType, channel: str) -> None:
    req_t, rep_t = gen.MESSAGES["fltest.AddRequest"], gen.MESSAGES["fltest.AddReply"]
    with gen.Calc.Add.Server(name=channel) as server, flatlane.ServiceClient(
        channel, max_request=1024, reply_ring=4096, request_type=(req_t.type_name, req_t.type_hash),
        reply_type=(rep_t.type_name, rep_t.type_hash)
    ) as raw:
        raw.send(b"\xf0\xff\x00\x00" + bytes(12))
        with pytest.raises(flatlane.CorruptMessageError, match="request .* is not a fltest.AddRequest FlatBuffer"):
            server.receive(timeout=1000)
        assert server.rejected == 1 and server.raw.held_requests == 0


def test_service_type_mismatch_names_both(gen: ModuleType, channel: str) -> None:
    with gen.Calc.Add.Server(name=channel):
        with pytest.raises(flatlane.TypeMismatchError) as e:
            gen.Calc.Count.Client(name=channel)
        assert "fltest.AddRequest" in str(e.value) and "fltest.CountRequest" in str(e.value)


def test_python_client_to_cpp_server(gen: ModuleType, channel: str, typed_peer: Path) -> None:
    with Peer([str(typed_peer), "calc", channel, "0"]) as peer:
        peer.expect("ready")
        with gen.Calc.Add.Client(name=channel) as client:
            for i in range(500):
                with client.call(add_request, i, -3 * i, timeout=5000) as rep:
                    assert rep.msg.Sum() == -2 * i


def test_cpp_client_to_python_server(gen: ModuleType, channel: str, typed_peer: Path) -> None:
    count = 500
    with gen.Calc.Add.Server(name=channel, mode="create") as server, Peer(
        [str(typed_peer), "add", channel, str(count)]
    ) as peer:
        peer.expect("ready")
        for _ in range(count):
            with server.receive(timeout=10_000) as req:
                server.reply(req, add_reply, req.msg.A() + req.msg.B())
        assert peer.expect("done") == ["done", str(count)]
        exit_ok(peer)  # every sum checked in C++
