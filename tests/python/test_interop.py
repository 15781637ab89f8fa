"""Real processes: Python <-> C++ (tests/cpp/peer_process.cpp) and Python <-> Python, plus
kill -9 of a peer."""

from __future__ import annotations

import time

import pytest

import flatlane
from payload_pattern import check_message, message, message_size, payload, payload_size
from peers import Peer, exit_ok

RING = 1 << 16  # messages up to 100 KB: larger than a frame (32 KB) and the ring, so chunked


def test_cpp_writemsg_to_python_recv(channel: str, peer_program) -> None:
    count, seed, lo, hi = 200, 7, 8, 100_000
    with flatlane.Reader(channel, mode="create", ring_capacity=RING) as r, Peer.cpp(
        peer_program, "writemsg", channel, count=count, seed=seed, minsize=lo, maxsize=hi
    ) as peer:
        peer.expect("ready")
        for k in range(count):
            assert check_message(seed, r.recv(timeout=10_000), lo, hi) == k
        assert peer.expect("done") == ["done", str(count), str(count)]
        exit_ok(peer)


def test_python_send_to_cpp_readmsg(channel: str, peer_program) -> None:
    count, seed, lo, hi = 200, 11, 8, 100_000
    with flatlane.Writer(channel, mode="create", ring_capacity=RING) as w, Peer.cpp(
        peer_program, "readmsg", channel, count=count, seed=seed, minsize=lo, maxsize=hi
    ) as peer:
        peer.expect("ready")
        for k in range(count):
            w.send(message(seed, k, message_size(seed, k, lo, hi)), timeout=10_000)
        assert peer.expect("done") == ["done", str(count), str(count - 1)]
        exit_ok(peer)


def test_cpp_frames_to_python_read(channel: str, peer_program) -> None:
    """The C++ writer's frames (reserve/commit, payload derived from the sequence number) read
    zero-copy by Python."""
    count, seed, maxsize = 2000, 3, 3072
    with flatlane.Reader(channel, mode="create", ring_capacity=RING) as r, Peer.cpp(
        peer_program, "write", channel, count=count, seed=seed, maxsize=maxsize
    ) as peer:
        peer.expect("ready")
        last = 0
        for _ in range(count):
            with r.read(timeout=10_000) as f:
                assert last == 0 or f.seq == last + 1
                assert len(f) == payload_size(seed, f.seq, maxsize)
                assert f.data == payload(seed, f.seq, len(f))
                last = f.seq
        peer.expect("done")
        exit_ok(peer)


def test_python_reserve_commit_to_cpp_read(channel: str, peer_program) -> None:
    count, seed, maxsize = 2000, 5, 3072
    with flatlane.Writer(channel, mode="create", ring_capacity=RING) as w, Peer.cpp(
        peer_program, "read", channel, count=count, seed=seed, maxsize=maxsize
    ) as peer:
        peer.expect("ready")
        for _ in range(count):
            seq = w.stats().frames + 1  # the sequence number commit() stamps on this frame
            n = payload_size(seed, seq, maxsize)
            view = w.reserve(n, timeout=10_000)
            view[:] = payload(seed, seq, n)
            w.commit(n)
        peer.expect("done")
        exit_ok(peer)


@pytest.mark.parametrize("direction", ["parent_writes", "parent_reads"])
def test_python_to_python_processes(channel: str, direction: str) -> None:
    count, seed, lo, hi = 300, 13, 8, 100_000
    if direction == "parent_writes":
        with flatlane.Writer(channel, mode="create", ring_capacity=RING) as w, Peer.python(
            "recvmsg", channel, count, seed, lo, hi
        ) as peer:
            peer.expect("ready")
            for k in range(count):
                w.send(message(seed, k, message_size(seed, k, lo, hi)), timeout=10_000)
            peer.expect("done")
            exit_ok(peer)
    else:
        with flatlane.Reader(channel, mode="create", ring_capacity=RING) as r, Peer.python(
            "sendmsg", channel, count, seed, lo, hi
        ) as peer:
            peer.expect("ready")
            for k in range(count):
                assert check_message(seed, r.recv(timeout=10_000), lo, hi) == k
            peer.expect("done")
            exit_ok(peer)


def _reader_sees_peer_dead(r: flatlane.Reader, peer: Peer) -> float:
    """Kills the writer, then reads until PeerDeadError; returns seconds from the kill."""
    for _ in range(10):  # the writer is streaming
        r.read(timeout=10_000).release()
    t0 = time.monotonic()
    peer.kill9()
    with pytest.raises(flatlane.PeerDeadError) as info:
        while time.monotonic() - t0 < 10:
            r.read(timeout=10_000).release()  # drains what the writer committed, then fails
    assert info.value.role == "reader" and "writer process died" in str(info.value)
    return time.monotonic() - t0


def test_kill9_cpp_writer_python_reader_sees_peer_dead(channel: str, peer_program) -> None:
    with flatlane.Reader(channel, mode="create", ring_capacity=RING, wait="blocking") as r, Peer.cpp(
        peer_program, "write", channel, count="inf", maxsize=256, timeout_ms=60000
    ) as peer:
        peer.expect("ready")
        assert _reader_sees_peer_dead(r, peer) < 1.0  # liveness interval 50 ms, plus the drain


def test_kill9_python_writer_python_reader_sees_peer_dead(channel: str) -> None:
    with flatlane.Reader(channel, mode="create", ring_capacity=RING) as r, Peer.python("stream", channel) as peer:
        peer.expect("ready")
        assert _reader_sees_peer_dead(r, peer) < 1.0


def test_kill9_cpp_reader_python_writer_sees_peer_dead(channel: str, peer_program) -> None:
    with flatlane.Writer(channel, mode="create", ring_capacity=4096) as w, Peer.cpp(
        peer_program, "hold", channel, frames=3
    ) as peer:
        for _ in range(3):
            w.send(bytes(100))
        peer.expect("ready")  # holds 3 frames: the writer fills the rest of the ring
        with pytest.raises(flatlane.BufferFullError):
            while True:
                w.send(bytes(500), timeout=0)
        t0 = time.monotonic()
        peer.kill9()
        with pytest.raises(flatlane.PeerDeadError) as info:
            w.reserve(500, timeout=10_000)  # blocked on the full ring until the reader is found dead
        assert time.monotonic() - t0 < 1.0
        assert info.value.role == "writer" and "reader process died" in str(info.value)
