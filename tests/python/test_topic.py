"""Publish/subscribe topics from Python: fan-out, drop-oldest and blocking subscribers, held
samples, late joiners, history, lifetimes, threads, and real processes with the C++ peer
(tests/cpp/peer_topic.cpp) in both directions, kill -9 included."""

from __future__ import annotations

import gc
import struct
import threading
import time
from pathlib import Path
from typing import Iterator, List

import numpy as np
import pytest

import flatlane
from conftest import BUILD_DIR, shm_path
from peers import Peer, exit_ok

# tests/cpp/topic_test_util.hpp: the options and message format the C++ peer uses.
PEER_TOPIC = dict(
    slot_size=1024,
    slot_count=64,
    queue_depth=16,
    max_subscribers=32,
    max_publishers=4,
    max_held=16,
    type_name="fltest.TopicMessage",
    type_hash=0x5151,
)


def topic_message(msg_id: int, size: int) -> bytes:
    """An 8-byte little-endian id, then byte i = ((id*131 + i*7) ^ (i >> 3)) & 0xff."""
    i = np.arange(size, dtype=np.uint64)
    body = (((np.uint64(msg_id * 131 % 256) + i * np.uint64(7)) ^ (i >> np.uint64(3))) & np.uint64(0xFF)).astype(
        np.uint8
    )
    return struct.pack("<Q", msg_id) + body[8:].tobytes()


def message_id(data: memoryview) -> int:
    return struct.unpack_from("<Q", data)[0]


@pytest.fixture(scope="module")
def peer_topic() -> Path:
    path = BUILD_DIR / "tests" / "cpp" / "flatlane_peer_topic"
    if not path.exists():
        pytest.fail(f"{path} not found: build the flatlane_peer_topic target (FLATLANE_BUILD_DIR={BUILD_DIR})")
    return path


@pytest.fixture
def pub(channel: str) -> Iterator[flatlane.TopicPublisher]:
    with flatlane.TopicPublisher(channel, mode="create", slot_size=256, slot_count=16, queue_depth=8) as p:
        yield p


def test_message_format_matches_cpp() -> None:
    # Spot values of topic_byte computed by hand from the C++ formula.
    m = topic_message(5, 16)
    assert m[:8] == (5).to_bytes(8, "little")
    assert m[8] == ((5 * 131 + 8 * 7) ^ 1) & 0xFF
    assert m[15] == ((5 * 131 + 15 * 7) ^ 1) & 0xFF
    assert topic_message(1 << 40, 9)[8] == (((1 << 40) * 131 + 56) ^ 1) & 0xFF


def test_fan_out_to_several_subscribers_zero_copy(channel: str, pub: flatlane.TopicPublisher) -> None:
    subs = [flatlane.TopicSubscriber(channel) for _ in range(3)]
    try:
        assert pub.subscriber_count == 3
        for k in range(5):
            view = pub.loan(64)
            view[:8] = struct.pack("<Q", k)
            view[8:] = bytes([k]) * 56
            pub.publish(64)
        for s in subs:
            for k in range(5):
                with s.receive(timeout=1000) as sample:
                    assert sample.seq == k + 1
                    assert sample.publisher == pub.index
                    assert len(sample) == 64
                    assert message_id(sample.data) == k and bytes(sample.data[8:]) == bytes([k]) * 56
        # One slot, three readers, no copies: each mapping of the topic maps the same slot, so a
        # write through the publisher's (stale, for this test only) loan view shows in every sample.
        view = pub.loan(6)
        view[:] = b"shared"
        pub.publish(6)
        samples = [s.receive(timeout=1000) for s in subs]
        assert [bytes(x.data) for x in samples] == [b"shared"] * 3
        view[0:1] = b"S"
        for x in samples:
            assert bytes(x.data) == b"Shared"
            with pytest.raises(TypeError):
                x.data[0] = 1  # read-only
            x.release()
        st = pub.stats()
        assert (st.messages, st.subscribers, st.slot_count) == (6, 3, 16)
        assert st.free_slots == 16  # every sample released
        assert subs[0].stats() == flatlane.SubscriberStats(received=6, bytes=5 * 64 + 6, dropped=0, held=0, queued=0)
    finally:
        for s in subs:
            s.close()


def test_publish_tail_discard_and_limits(channel: str, pub: flatlane.TopicPublisher) -> None:
    with flatlane.TopicSubscriber(channel) as sub:
        view = pub.loan(32)
        view[:] = b"x" * 28 + b"tail"
        pub.publish_tail(4)
        assert bytes(sub.receive(timeout=1000).data) == b"tail"
        pub.loan(16)
        pub.discard()
        with pytest.raises(ValueError):
            pub.publish(1)  # nothing loaned any more
        with pytest.raises(flatlane.FlatlaneTimeoutError):
            sub.receive(timeout=0)
        with pytest.raises(flatlane.MessageTooLargeError, match="slot size 256"):
            pub.loan(257)
        with pytest.raises(flatlane.MessageTooLargeError):
            pub.send(b"y" * 300)
        assert pub.max_message == 256
        v = pub.loan(8)
        with pytest.raises(ValueError, match="exceeds the loan"):
            pub.publish(9)
        v[:] = b"12345678"
        pub.publish(8)
        assert bytes(sub.receive(timeout=1000).data) == b"12345678"


def test_drop_oldest_counts_and_keeps_the_newest(channel: str) -> None:
    with flatlane.TopicPublisher(channel, mode="create", slot_size=64, slot_count=16, queue_depth=4) as pub, \
            flatlane.TopicSubscriber(channel) as sub:
        for k in range(10):
            pub.send(struct.pack("<Q", k), timeout=0)  # never waits for a drop_oldest subscriber
        st = sub.stats()
        assert (st.dropped, st.queued) == (6, 4)
        got = [message_id(sub.receive(timeout=1000).data) for _ in range(4)]
        assert got == [6, 7, 8, 9]
        assert sub.stats().dropped == 6
        assert pub.stats().free_slots == 16


def test_block_publisher_waits_then_times_out(channel: str) -> None:
    with flatlane.TopicPublisher(
        channel, mode="create", slot_size=64, slot_count=8, queue_depth=2, block_timeout_ms=50
    ) as pub, flatlane.TopicSubscriber(channel, subscriber_mode="block_publisher") as slow, \
            flatlane.TopicSubscriber(channel) as fast:
        pub.send(b"a")
        pub.send(b"b")
        t0 = time.monotonic()
        with pytest.raises(flatlane.BufferFullError, match="block_publisher"):
            pub.send(b"c")
        assert time.monotonic() - t0 >= 0.04
        assert pub.stats().timeouts == 1
        assert slow.stats().dropped == 1
        # The drop_oldest subscriber (same queue depth) lost its oldest to "c"; the blocking one
        # kept the first two and lost "c".
        assert fast.stats().dropped == 1
        assert [bytes(fast.receive(timeout=1000).data) for _ in range(2)] == [b"b", b"c"]
        assert [bytes(slow.receive(timeout=1000).data) for _ in range(2)] == [b"a", b"b"]
        with pytest.raises(flatlane.FlatlaneTimeoutError):
            slow.receive(timeout=0)


def test_block_publisher_released_by_a_reading_thread(channel: str) -> None:
    """publish() blocked on a full block_publisher queue releases the GIL: another Python thread
    reads and so lets it through."""
    n = 200
    with flatlane.TopicPublisher(
        channel, mode="create", slot_size=64, slot_count=8, queue_depth=2, block_timeout_ms=10_000
    ) as pub, flatlane.TopicSubscriber(channel, subscriber_mode="block_publisher") as sub:
        got: List[int] = []

        def read() -> None:
            for _ in range(n):
                with sub.receive(timeout=10_000) as s:
                    got.append(message_id(s.data))

        t = threading.Thread(target=read)
        t.start()
        for k in range(n):
            pub.send(struct.pack("<Q", k) + b"z" * 24)
        t.join(timeout=30)
        assert not t.is_alive()
        assert got == list(range(n))
        assert sub.stats().dropped == 0


def test_held_samples_are_never_reused(channel: str) -> None:
    with flatlane.TopicPublisher(channel, mode="create", slot_size=64, slot_count=4, queue_depth=2) as pub, \
            flatlane.TopicSubscriber(channel) as sub:
        pub.send(b"keep me" + b"\0" * 57)
        held = sub.receive(timeout=1000)
        data = held.data
        for k in range(50):  # 3 free slots cycle through the queue; the held one never does
            pub.send(struct.pack("<Q", k) + b"\xff" * 56, timeout=1000)
        assert bytes(data) == b"keep me" + b"\0" * 57
        assert pub.stats().free_slots == 4 - 1 - sub.stats().queued
        del data
        held.release()
        assert sub.held_samples == 0
        for _ in range(sub.stats().queued):
            sub.receive(timeout=1000).release()
        assert pub.stats().free_slots == 4


def test_pool_exhausted_by_held_samples(channel: str) -> None:
    with flatlane.TopicPublisher(channel, mode="create", slot_size=64, slot_count=2, queue_depth=2) as pub, \
            flatlane.TopicSubscriber(channel) as sub:
        pub.send(b"1")
        pub.send(b"2")
        a, b = sub.receive(timeout=1000), sub.receive(timeout=1000)
        with pytest.raises(flatlane.BufferFullError, match="no free slot"):
            pub.loan(8, timeout=20)
        a.release()
        pub.send(b"3", timeout=1000)
        assert bytes(sub.receive(timeout=1000).data) == b"3"
        del b


def test_max_held_makes_receive_busy(channel: str) -> None:
    with flatlane.TopicPublisher(channel, mode="create", slot_size=64, slot_count=8, max_held=2) as pub, \
            flatlane.TopicSubscriber(channel) as sub:
        for k in range(3):
            pub.send(bytes([k]))
        a, b = sub.receive(timeout=100), sub.receive(timeout=100)
        with pytest.raises(flatlane.ChannelBusyError, match="max_held"):
            sub.receive(timeout=100)
        view = b.data
        b.release()  # deferred: a view is alive
        with pytest.raises(flatlane.ChannelBusyError):
            sub.receive(timeout=0)
        with pytest.raises(ValueError, match="released"):
            b.data
        del view  # now it goes back
        assert bytes(sub.receive(timeout=100).data) == b"\x02"
        assert bytes(a.data) == b"\x00"


def test_late_joiner_starts_at_the_newest_message(channel: str, pub: flatlane.TopicPublisher) -> None:
    pub.send(b"before")
    assert pub.stats().no_receiver == 1
    with flatlane.TopicSubscriber(channel) as sub:
        with pytest.raises(flatlane.FlatlaneTimeoutError):
            sub.receive(timeout=0)
        pub.send(b"after")
        s = sub.receive(timeout=1000)
        assert (bytes(s.data), s.seq) == (b"after", 2)


def test_history_for_late_joiners(channel: str) -> None:
    with flatlane.TopicPublisher(channel, mode="create", slot_size=64, slot_count=16, history=4) as pub:
        for k in range(6):
            pub.send(struct.pack("<Q", k))
        with flatlane.TopicSubscriber(channel, history_request=3) as sub, flatlane.TopicSubscriber(channel) as plain:
            got = []
            for _ in range(3):
                with sub.receive(timeout=1000) as s:
                    got.append((s.seq, message_id(s.data)))
            assert got == [(4, 3), (5, 4), (6, 5)]
            with pytest.raises(flatlane.FlatlaneTimeoutError):
                sub.receive(timeout=0)
            with pytest.raises(flatlane.FlatlaneTimeoutError):
                plain.receive(timeout=0)
            pub.send(struct.pack("<Q", 6))
            assert message_id(sub.receive(timeout=1000).data) == 6
            assert message_id(plain.receive(timeout=1000).data) == 6


def test_type_mismatch_and_busy_roles(channel: str) -> None:
    with flatlane.TopicPublisher(channel, mode="create", max_publishers=1, type_name="a.A", type_hash=1):
        with pytest.raises(flatlane.TypeMismatchError):
            flatlane.TopicSubscriber(channel, type_name="b.B", type_hash=2)
        with pytest.raises(flatlane.ChannelBusyError, match="publishers"):
            flatlane.TopicPublisher(channel, type_name="a.A", type_hash=1)
        with pytest.raises(flatlane.InvalidArgumentError):
            flatlane.Reader(channel)  # a topic is not a one-to-one channel
    with pytest.raises(ValueError, match="subscriber mode"):
        flatlane.TopicSubscriber(channel, subscriber_mode="sometimes")


def test_views_survive_close_and_deletion(channel: str) -> None:
    pub = flatlane.TopicPublisher(channel, mode="create", slot_size=64)
    sub = flatlane.TopicSubscriber(channel)
    pub.send(np.arange(16, dtype=np.uint32))
    sample = sub.receive(timeout=1000)
    arr = sample.numpy(np.uint32)
    loan = pub.loan(64)
    sub.close()
    pub.close()  # neither raises BufferError
    with pytest.raises(flatlane.ClosedError):
        sub.receive(timeout=0)
    with pytest.raises(flatlane.ClosedError):
        pub.send(b"x")
    del sub, pub, sample
    gc.collect()
    assert int(arr.sum()) == sum(range(16))
    loan[:4] = b"abcd"  # still mapped
    assert shm_path(channel).exists()
    del arr, loan
    gc.collect()
    assert not shm_path(channel).exists()  # the last view unmapped it and the last member unlinked it


def test_close_from_another_thread_interrupts_receive(channel: str, pub: flatlane.TopicPublisher) -> None:
    sub = flatlane.TopicSubscriber(channel)
    errors: List[BaseException] = []

    def wait() -> None:
        try:
            sub.receive(timeout=20_000)
        except BaseException as e:  # noqa: BLE001 (recorded for the assertion)
            errors.append(e)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    sub.close()
    t.join(timeout=5)
    assert not t.is_alive() and time.monotonic() - t0 < 2
    assert len(errors) == 1 and isinstance(errors[0], flatlane.ClosedError)


def test_publisher_close_ends_subscribers(channel: str) -> None:
    pub = flatlane.TopicPublisher(channel, mode="create", slot_size=64)
    with flatlane.TopicSubscriber(channel) as sub:
        pub.send(b"last")
        pub.close()
        assert bytes(sub.receive(timeout=1000).data) == b"last"  # queued messages first
        with pytest.raises(flatlane.PeerClosedError):
            sub.receive(timeout=1000)


# ---- real processes: the C++ peer ----------------------------------------------------------------


def test_python_publisher_to_cpp_subscribers(channel: str, peer_topic: Path) -> None:
    count, size = 500, 200
    with flatlane.TopicPublisher(channel, mode="create", block_timeout_ms=10_000, **PEER_TOPIC) as pub:
        # peer_topic takes MODE TOPIC COUNT, then key=value options.
        peers = [Peer([str(peer_topic), "subscribe", channel, str(count), "mode=block"]) for _ in range(2)]
        try:
            for p in peers:
                p.expect("ready")
            assert pub.subscriber_count == 2
            for k in range(count):
                if k % 2:
                    pub.send(topic_message(k, size))
                else:
                    view = pub.loan(size, timeout=10_000)
                    view[:] = topic_message(k, size)
                    pub.publish(size)
            for p in peers:
                assert p.expect("done") == ["done", str(count)]
                exit_ok(p)
        finally:
            for p in peers:
                p.close()


def test_cpp_publisher_to_python_subscriber(channel: str, peer_topic: Path) -> None:
    count, size = 500, 300
    with flatlane.TopicSubscriber(channel, mode="create", subscriber_mode="block_publisher", **PEER_TOPIC) as sub, \
            Peer([str(peer_topic), "publish", channel, str(count), f"size={size}"]) as peer:
        peer.expect("ready")
        for k in range(count):
            with sub.receive(timeout=10_000) as s:
                assert message_id(s.data) == k
                assert s.data == topic_message(k, size)
                assert s.seq == k + 1
        assert peer.expect("done") == ["done", str(count)]
        exit_ok(peer)
        with pytest.raises(flatlane.PeerClosedError):
            sub.receive(timeout=5000)
        assert sub.stats().dropped == 0


def test_kill9_cpp_publisher_is_reported_dead(channel: str, peer_topic: Path) -> None:
    with flatlane.TopicSubscriber(channel, mode="create", liveness_interval_ms=20, **PEER_TOPIC) as sub, \
            Peer([str(peer_topic), "publish", channel, "0"]) as peer:  # publishes until killed
        peer.expect("ready")
        for _ in range(50):
            with sub.receive(timeout=10_000) as s:
                assert s.data == topic_message(message_id(s.data), len(s))
        peer.kill9()
        with pytest.raises(flatlane.PeerDeadError):
            for _ in range(1000):  # what was queued before the death comes first
                with sub.receive(timeout=10_000) as s:
                    assert s.data == topic_message(message_id(s.data), len(s))


def test_kill9_cpp_subscriber_holding_slots_is_reclaimed(channel: str, peer_topic: Path) -> None:
    held = 16  # the peer's max_held
    with flatlane.TopicPublisher(channel, mode="create", liveness_interval_ms=20, **PEER_TOPIC) as pub, \
            Peer([str(peer_topic), "hold", channel, str(held)]) as peer:
        peer.expect("ready")
        for k in range(held):
            pub.send(topic_message(k, 100))
        assert peer.expect("held") == ["held", str(held)]
        st = pub.stats()
        assert st.subscribers == 1 and st.free_slots == st.slot_count - held
        peer.kill9()
        # The publisher finds the dead subscriber (when its pool runs dry, or every 64
        # publications once a liveness interval passed) and takes its held slots back.
        deadline = time.monotonic() + 10
        k = held
        while True:
            pub.send(topic_message(k, 100), timeout=1000)
            k += 1
            st = pub.stats()
            if st.subscribers == 0 and st.free_slots == st.slot_count:
                break
            assert time.monotonic() < deadline, f"slots not reclaimed: {st}"
            time.sleep(0.001)
