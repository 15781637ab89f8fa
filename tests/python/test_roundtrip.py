"""Single-process behaviour: round trips of every size class, zero copy, commit variants, stats."""

from __future__ import annotations

import ctypes
import threading

import numpy as np
import pytest

import flatlane

RING = 1 << 16  # max frame payload 32736, chunk size 32736


def pattern(n: int) -> bytes:
    return bytes((i * 7 + 3) & 0xFF for i in range(n)) if n < 4096 else np.arange(n, dtype=np.uint32).tobytes()[:n]


@pytest.fixture
def pair(channel: str):
    with flatlane.Writer(channel, mode="create", ring_capacity=RING) as w, flatlane.Reader(channel, mode="open") as r:
        yield w, r


def test_geometry(pair) -> None:
    w, r = pair
    assert w.ring_capacity == r.ring_capacity == RING
    assert w.max_frame_payload == r.max_frame_payload == RING // 2 - 32
    assert w.chunk_size == r.chunk_size
    assert w.peer_attached and r.peer_attached


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 64, 4095, 4096, 32736])
def test_reserve_commit_read(pair, size: int) -> None:
    w, r = pair
    data = pattern(size)
    view = w.reserve(size)
    assert isinstance(view, memoryview) and len(view) == size and not view.readonly
    view[:] = data
    w.commit(size)
    with r.read(timeout=1000) as frame:
        assert len(frame) == size
        assert frame.data.readonly
        assert bytes(frame.data) == data
        assert frame.chunk is None


@pytest.mark.parametrize("size", [0, 1, 64, 32736, 32737, 3 * 32736 + 5, (1 << 20) + 3])
def test_send_recv_sizes(pair, size: int) -> None:
    w, r = pair
    data = pattern(size)
    got: list = []
    # Messages larger than the ring need the reader to drain while the writer waits for space:
    # read in a thread (send releases the GIL while it waits).
    t = threading.Thread(target=lambda: got.append(r.recv(timeout=10_000)))
    t.start()
    w.send(data, timeout=10_000)
    t.join(20)
    assert not t.is_alive()
    assert got == [data]


def test_large_message_arrives_as_chunk_frames(pair) -> None:
    w, r = pair
    size = w.max_frame_payload + w.max_frame_payload // 2  # two chunks; both fit in the ring at once
    data = pattern(size)
    w.send(data, timeout=1000)
    parts = []
    for i in range(2):
        with r.read(timeout=1000) as f:
            index, count, message_size = f.chunk
            assert (index, count, message_size) == (i, 2, size)
            parts.append(bytes(f.data))
    assert b"".join(parts) == data


def test_reserve_view_and_frame_alias_the_same_shared_memory(pair) -> None:
    """Zero copy both ways: the writer's reservation view and the reader's frame view are the
    same bytes of the segment (each endpoint maps it at its own address), so a byte changed
    through the first after publication shows through the second. Misuse in real code, proof here."""
    w, r = pair
    view = w.reserve(256)
    np.frombuffer(view, dtype=np.uint32)[:] = np.arange(64, dtype=np.uint32)  # written through NumPy
    w.commit(256)
    frame = r.read(timeout=1000)
    seen = frame.data
    assert np.array_equal(frame.numpy(np.uint32), np.arange(64, dtype=np.uint32))
    view[0] = 0xAB
    view[255] = 0xCD
    assert seen[0] == 0xAB and seen[255] == 0xCD
    del seen
    frame.release()


def test_commit_tail_publishes_in_place(pair) -> None:
    w, r = pair
    view = w.reserve(200)
    tail = bytes(range(37))
    view[200 - 37 :] = tail
    w.commit_tail(37)
    with r.read(timeout=1000) as f:
        data = f.data
        assert bytes(data) == tail
        view[200 - 37] = 0xEE  # the frame is the tail of the reservation itself, not a copy
        assert data[0] == 0xEE
        del data


def test_commit_prefix_and_abort(pair) -> None:
    w, r = pair
    view = w.reserve(100)
    view[:3] = b"abc"
    w.commit(3)
    w.reserve(50)
    w.abort()
    w.send(b"after abort")
    assert r.recv(timeout=1000) == b"abc"
    assert r.recv(timeout=1000) == b"after abort"
    with pytest.raises(flatlane.FlatlaneTimeoutError):
        r.read(timeout=0)


def test_commit_needs_a_reservation_and_fits_it(pair) -> None:
    w, _ = pair
    with pytest.raises(ValueError, match="without a reservation"):
        w.commit(1)
    w.reserve(10)
    with pytest.raises(ValueError, match="exceeds the reservation"):
        w.commit(11)
    w.commit(10)
    with pytest.raises(ValueError, match="without a reservation"):
        w.commit_tail(1)


def test_frame_data_is_read_only(pair) -> None:
    w, r = pair
    w.send(b"immutable")
    with r.read(timeout=1000) as f:
        with pytest.raises(TypeError):
            f.data[0] = 0
        with pytest.raises((ValueError, BufferError)):
            f.numpy()[0] = 0
        # A writable export is refused outright.
        with pytest.raises((BufferError, TypeError)):
            ctypes.c_char.from_buffer(f)


def test_send_numpy_array(pair) -> None:
    w, r = pair
    arr = np.linspace(0.0, 1.0, 1000, dtype=np.float64)
    w.send(arr)
    with r.read(timeout=1000) as f:
        assert np.array_equal(f.numpy(np.float64), arr)
    with pytest.raises((BufferError, ValueError)):
        w.send(arr[::2])  # not contiguous: would need a copy, so it is refused
    w.send(np.ascontiguousarray(arr[::2]))
    assert np.array_equal(np.frombuffer(r.recv(timeout=1000), np.float64), arr[::2])


def test_send_rejects_non_buffers(pair) -> None:
    w, _ = pair
    with pytest.raises(TypeError):
        w.send("text is not bytes")  # type: ignore[arg-type]


def test_frames_released_out_of_order_free_the_ring(pair) -> None:
    w, r = pair
    size = 4000
    n = 0
    while True:  # fill the ring
        try:
            w.send(bytes(size), timeout=0)
            n += 1
        except flatlane.BufferFullError:
            break
    assert n >= 10
    frames = [r.read(timeout=1000) for _ in range(n)]
    assert r.held_frames == n
    with pytest.raises(flatlane.BufferFullError):
        w.send(bytes(size), timeout=0)  # everything is still held
    for f in frames[1::2] + frames[0::2]:  # odd ones first, then the rest
        f.release()
    assert r.held_frames == 0
    assert r.stats().occupancy_bytes == 0
    for _ in range(n - 1):  # the ring is free again (one record may go to wrap padding)
        w.send(bytes(size), timeout=0)


def test_sequence_numbers_are_consecutive(pair) -> None:
    w, r = pair
    for i in range(50):
        w.send(i.to_bytes(4, "little"))
    seqs = []
    for i in range(50):
        with r.read(timeout=1000) as f:
            assert int.from_bytes(f.data, "little") == i
            seqs.append(f.seq)
    assert seqs == list(range(seqs[0], seqs[0] + 50))


def test_stats(pair) -> None:
    w, r = pair
    for i in range(10):
        w.send(bytes(i))
    ws = w.stats()
    assert isinstance(ws, flatlane.EndpointStats)
    assert (ws.frames, ws.messages, ws.bytes, ws.capacity_bytes) == (10, 10, 45, RING)
    assert ws.occupancy_bytes > 0
    for _ in range(10):
        r.recv(timeout=1000)
    rs = r.stats()
    assert (rs.frames, rs.messages, rs.bytes) == (10, 10, 45)


def test_context_managers_and_repr(channel: str) -> None:
    with flatlane.Writer(channel, mode="create") as w:
        assert repr(w) == f"<flatlane.Writer {channel!r} open>"
        w.send(b"x")
        with flatlane.Reader(channel) as r:
            with r.read(timeout=1000) as f:
                assert "seq=1 size=1" in repr(f)
            assert f.released
        assert r.closed
    assert w.closed and repr(w).endswith("closed>")


def test_enum_and_string_options(channel: str) -> None:
    with flatlane.Writer(channel, mode="create", wait="busy_spin") as w, flatlane.Reader(
        channel, mode=flatlane.OpenMode.OPEN, wait=flatlane.WaitStrategy.BLOCKING
    ) as r:
        w.send(b"ok")
        assert r.recv(timeout=1000) == b"ok"
    with pytest.raises(ValueError, match="unknown wait strategy"):
        flatlane.Writer(channel, wait="sometimes")


def test_read_message_is_in_place_for_one_frame_and_a_copy_for_chunks(pair) -> None:
    """read_message(): a whole message as a Frame; in place when it fits a frame (the writer's
    view aliases it), reassembled into a private copy when it came in chunks."""
    w, r = pair
    view = w.reserve(64)
    view[:] = bytes(range(64))
    w.commit(64)
    with r.read_message(timeout=1000) as f:
        assert f.zero_copy and f.chunk is None and bytes(f.data) == bytes(range(64))
        seen = f.data
        view[3] = 0xEE  # same shared bytes
        assert seen[3] == 0xEE
        del seen
    assert r.held_frames == 0
    big = bytes(np.arange(RING + 1000, dtype=np.uint8))  # larger than the ring: chunks
    sender = threading.Thread(target=w.send, args=(big,), kwargs={"timeout": 10_000})
    sender.start()
    f = r.read_message(timeout=10_000)
    sender.join(10)
    assert not f.zero_copy and f.chunk is None and len(f) == len(big) and bytes(f.data) == big
    assert r.held_frames == 0  # a copy holds no ring space
    assert "copy" in repr(f)
    f.release()
    with pytest.raises(flatlane.FlatlaneTimeoutError):
        r.read_message(timeout=0)


def test_type_name_only_ignores_the_hash(channel: str) -> None:
    with flatlane.Writer(channel, mode="create", type_name="demo.T", type_hash=1):
        with pytest.raises(flatlane.TypeMismatchError, match="'demo.T' \\(hash 0000000000000001\\)"):
            flatlane.Reader(channel, type_name="demo.T", type_hash=2)
        with pytest.raises(flatlane.TypeMismatchError):
            flatlane.Reader(channel, type_name="demo.U", type_hash=1, type_name_only=True)
        with flatlane.Reader(channel, type_name="demo.T", type_hash=2, type_name_only=True) as r:
            assert r.peer_attached
