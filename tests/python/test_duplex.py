"""In-place duplex channels (kind 3) from Python: raw DuplexClient/DuplexServer, the typed
InPlaceClient/InPlaceServer of generated channels, and real processes both ways with C++
(tests/cpp/peer_duplex.cpp, which inverts every byte in place) and with a Python server process.
"""

from __future__ import annotations

import gc
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import flatlane
from flatlane import typed
from conftest import BUILD_DIR
from peers import Peer, exit_ok
from typed_content import blob_bytes, build_blob, check_blob, checksum

DUPLEX_PEER = Path(__file__).resolve().parent / "duplex_peer.py"
RING = 1 << 16  # what the C++ peer's duplex_options() uses


@pytest.fixture(scope="session")
def duplex_program() -> Path:
    path = BUILD_DIR / "tests" / "cpp" / "flatlane_peer_duplex"
    if not path.exists():
        pytest.fail(f"{path} not found: build the flatlane_peer_duplex target (FLATLANE_BUILD_DIR={BUILD_DIR})")
    return path


def cpp_peer(program: Path, mode: str, channel: str, count: int, **kv: object) -> Peer:
    return Peer([str(program), mode, channel, str(count), *(f"{k}={v}" for k, v in kv.items())])


def py_peer(mode: str, channel: str, count: int) -> Peer:
    return Peer([sys.executable, str(DUPLEX_PEER), mode, channel, str(count)])


def pattern(seq: int, n: int) -> np.ndarray:
    """tests/cpp/duplex_test_util.hpp pattern_byte(seq, i) for i < n."""
    i = np.arange(n, dtype=np.uint64)
    return ((seq * 131 + i * 7 + (i >> 8)) & 0xFF).astype(np.uint8)


def address(buf: object) -> int:
    return np.frombuffer(buf, dtype=np.uint8).ctypes.data


def invert_and_respond(req: flatlane.DuplexRequest) -> None:
    a = req.numpy(dtype=np.uint8)
    np.invert(a, out=a)
    del a
    req.respond()


def pair(channel: str, ring: int = RING):
    client = flatlane.DuplexClient(channel, mode="create", ring_capacity=ring)
    server = flatlane.DuplexServer(channel, mode="open")
    return client, server


# ------------------------------------------------------------------------------------------------
# Raw endpoints in one process


def test_round_trip_in_place(channel: str) -> None:
    client, server = pair(channel)
    with client, server:
        view = client.reserve(300)
        view[:] = pattern(1, 300).tobytes()
        frame_addr = address(view)
        assert client.commit(300) == 1
        assert client.outstanding == 1
        with server.receive(timeout=1000) as req:
            assert (req.seq, len(req), req.request_offset, req.capacity) == (1, 300, 0, 300)
            assert bytes(req.data) == pattern(1, 300).tobytes()
            assert server.outstanding == 1
            invert_and_respond(req)
            assert req.answered
            assert server.outstanding == 0
        with client.receive(timeout=1000) as resp:
            assert resp.seq == 1 and not resp.rejected and len(resp) == 300
            assert bytes(resp.data) == (~pattern(1, 300)).tobytes()
            assert address(resp) == frame_addr  # the same frame, where it lies
            resp.data[0] = 7  # writable on the client side too
        cs, ss = client.stats(), server.stats()
        assert (cs.requests, cs.responses, cs.rejected, cs.bytes, cs.outstanding) == (1, 1, 0, 300, 0)
        assert (ss.requests, ss.responses, ss.rejected, ss.bytes, ss.outstanding) == (1, 1, 0, 300, 0)
        assert cs.capacity_bytes == RING and client.ring_capacity == RING
        assert client.peer_attached and server.peer_attached


def test_send_capacity_and_respond_anywhere_in_the_frame(channel: str) -> None:
    client, server = pair(channel)
    with client, server:
        seq = client.send(b"abc", capacity=64)
        req = server.receive(timeout=1000)
        assert bytes(req) == b"abc" and req.capacity == 64
        frame = req.frame
        assert len(frame) == 64 and not frame.readonly
        frame[10:20] = b"0123456789"
        del frame
        req.respond(10, 10)
        resp = client.receive(timeout=1000)
        assert resp.seq == seq and bytes(resp) == b"0123456789"
        resp.release()
        # respond(offset) alone: the rest of the frame
        client.send(b"xyz", capacity=32)
        req = server.receive(timeout=1000)
        req.frame[3:32] = b"q" * 29
        req.respond(3)
        with client.receive(timeout=1000) as resp:
            assert bytes(resp) == b"q" * 29
        # past the frame
        client.send(b"xyz", capacity=32)
        req = server.receive(timeout=1000)
        with pytest.raises(flatlane.MessageTooLargeError):
            req.respond(30, 3)
        req.respond()  # still unanswered: a correct answer works
        with client.receive(timeout=1000) as resp:
            assert bytes(resp) == b"xyz"


def test_commit_tail(channel: str) -> None:
    client, server = pair(channel)
    with client, server:
        view = client.reserve(100)
        view[92:] = b"TAILDATA"
        client.commit_tail(8)
        with server.receive(timeout=1000) as req:
            assert bytes(req) == b"TAILDATA" and req.request_offset == 92
            req.data[:4] = b"tail"
            req.respond()
        with client.receive(timeout=1000) as resp:
            assert bytes(resp) == b"tailDATA"
        with pytest.raises(ValueError):
            client.commit(1)  # no reservation
        client.reserve(10)
        client.abort()
        with pytest.raises(ValueError):
            client.commit_tail(1)


def test_several_outstanding_answered_out_of_order(channel: str) -> None:
    client, server = pair(channel)
    with client, server:
        for s in range(1, 6):
            assert client.send(pattern(s, 100 + s).tobytes()) == s
        assert client.outstanding == 5
        reqs = {r.seq: r for r in (server.receive(timeout=1000) for _ in range(5))}
        assert sorted(reqs) == [1, 2, 3, 4, 5] and server.outstanding == 5
        for s in (3, 1, 5, 2, 4):
            invert_and_respond(reqs[s])
        del reqs
        held = [client.receive(timeout=1000) for _ in range(5)]
        assert [r.seq for r in held] == [1, 2, 3, 4, 5]  # request order
        for r in held:
            assert bytes(r) == (~pattern(r.seq, 100 + r.seq)).tobytes()
        assert client.held_responses == 5
        for i in (2, 0, 4, 1, 3):  # released in any order
            held[i].release()
        assert client.held_responses == 0
        assert client.stats().occupancy_bytes == 0


def test_full_ring_fails_at_once_and_recovers(channel: str) -> None:
    client, server = pair(channel)
    with client, server:
        sent = 0
        with pytest.raises(flatlane.BufferFullError) as info:
            while True:
                client.send(b"x" * 1000, timeout=None)
                sent += 1
        assert isinstance(info.value, flatlane.FlatlaneTimeoutError)
        assert info.value.channel == channel and info.value.role == "client"
        assert sent > 10
        t0 = time.monotonic()
        with pytest.raises(flatlane.BufferFullError):
            client.reserve(1000)  # timeout=None: nothing could free our own frames, so at once
        assert time.monotonic() - t0 < 0.5
        for _ in range(sent):
            server.receive(timeout=1000).respond()
        for _ in range(3):  # the oldest frames come back (enough for a frame after a wrap)
            client.receive(timeout=1000).release()
        client.send(b"y" * 1000, timeout=0)


def test_oversize_raises_message_too_large(channel: str) -> None:
    client, server = pair(channel)
    with client, server:
        limit = client.max_frame_payload
        assert limit == server.max_frame_payload and 0 < limit < RING
        with pytest.raises(flatlane.MessageTooLargeError):
            client.reserve(limit + 1)
        with pytest.raises(flatlane.MessageTooLargeError):
            client.send(b"z", capacity=limit + 1)
        view = client.reserve(limit)
        assert len(view) == limit
        client.abort()


def test_rejections(channel: str) -> None:
    client, server = pair(channel)
    with client, server:
        for _ in range(4):
            client.send(b"please")
        r1 = server.receive(timeout=1000)
        r1.reject()
        r1.reject()  # idempotent
        with pytest.raises(flatlane.InvalidArgumentError):
            r1.respond()
        r2 = server.receive(timeout=1000)
        del r2  # dropped unanswered: rejected
        r3 = server.receive(timeout=1000)
        view = r3.data
        r3.release()  # deferred while the view is alive
        assert server.outstanding == 1
        del view
        assert server.outstanding == 0
        r4 = server.receive(timeout=1000)
        r4.respond()
        got = [client.receive(timeout=1000) for _ in range(4)]
        assert [r.rejected for r in got] == [True, True, True, False]
        assert len(got[0]) == 0 and bytes(got[3]) == b"please"
        assert client.stats().rejected == 3 and server.stats().rejected == 3
        del got
        # close() rejects what the server still holds
        client.send(b"late")
        held = server.receive(timeout=1000)
        server.close()
        with client.receive(timeout=1000) as resp:
            assert resp.rejected
        with pytest.raises(flatlane.ClosedError):
            held.respond()
        with pytest.raises(flatlane.PeerClosedError):
            client.send(b"x")
            client.receive(timeout=1000)


def test_errors_carry_context(channel: str) -> None:
    client, server = pair(channel)
    with client, server:
        with pytest.raises(flatlane.InvalidArgumentError) as info:
            client.receive(timeout=0)  # nothing outstanding
        assert info.value.channel == channel and info.value.role == "client"
        client.send(b"q")
        with pytest.raises(flatlane.FlatlaneTimeoutError) as t:
            client.receive(timeout=20)
        assert not isinstance(t.value, flatlane.BufferFullError)
        server.receive(timeout=0).release()
        with pytest.raises(flatlane.FlatlaneTimeoutError) as t2:
            server.receive(timeout=10)
        assert t2.value.role == "server"
        client.receive(timeout=1000).release()
    with pytest.raises(flatlane.ClosedError):
        client.send(b"x")
    with pytest.raises(flatlane.ClosedError):
        server.receive(timeout=0)
    with pytest.raises(flatlane.ChannelNotFoundError):
        flatlane.DuplexServer(channel + "none", mode="open")


def test_wrong_kind_refused(channel: str) -> None:
    with flatlane.Writer(channel):
        with pytest.raises(flatlane.InvalidArgumentError):
            flatlane.DuplexClient(channel, mode="open")


def test_views_outlive_close(channel: str) -> None:
    client, server = pair(channel)
    client.send(pattern(1, 64).tobytes())
    req = server.receive(timeout=1000)
    req_view = req.data
    req_frame = req.frame
    req_view[0] = 0xAA
    req.respond()
    resp = client.receive(timeout=1000)
    resp_view = resp.data
    arr = resp.numpy(dtype=np.uint8)
    client.close()
    server.close()
    gc.collect()
    # Still mapped: reading and writing the stale views never crashes.
    assert resp_view[0] == 0xAA and arr[0] == 0xAA
    req_view[1] = 1
    assert req_frame[1] == 1
    assert int(arr.sum()) >= 0
    with pytest.raises(ValueError):
        memoryview(resp)  # given back by close(): no new views
    with pytest.raises(ValueError):
        memoryview(req)
    del req, resp
    assert resp_view[0] == 0xAA
    del resp_view, req_view, req_frame
    gc.collect()
    assert arr[0] == 0xAA
    del arr
    gc.collect()
    assert not Path(f"/dev/shm/flatlane.{channel}").exists()


def test_blocked_waits_end_on_close(channel: str) -> None:
    client, server = pair(channel)
    errors: list = []

    def wait_request() -> None:
        try:
            server.receive(timeout=None)
        except flatlane.FlatlaneError as e:
            errors.append(e)

    t = threading.Thread(target=wait_request)
    t.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    server.close()  # the blocked receive gives the endpoint up within a slice
    t.join(5)
    assert not t.is_alive() and time.monotonic() - t0 < 2
    assert isinstance(errors[0], flatlane.ClosedError)
    # The client side: a receive blocked in one thread while another answers and the client closes.
    client.send(b"q")

    def wait_response() -> None:
        try:
            client.receive(timeout=None)
        except flatlane.FlatlaneError as e:
            errors.append(e)

    t = threading.Thread(target=wait_response)
    t.start()
    time.sleep(0.1)
    client.close()
    t.join(5)
    assert not t.is_alive()
    assert isinstance(errors[1], (flatlane.ClosedError, flatlane.PeerClosedError))


def test_threads_answer_while_another_receives(channel: str) -> None:
    client, server = pair(channel)
    n = 200
    with client, server:
        received: list = []
        done = threading.Event()

        def serve() -> None:
            for _ in range(n):
                received.append(server.receive(timeout=5000))
            done.set()

        t = threading.Thread(target=serve)
        t.start()
        got = 0
        sent = 0
        while got < n:
            while sent < n and sent - got < 8:
                client.send(pattern(sent + 1, 200).tobytes(), timeout=5000)
                sent += 1
            while received:  # answered here while the server thread waits in receive()
                invert_and_respond(received.pop())
            try:
                with client.receive(timeout=5) as resp:
                    assert bytes(resp) == (~pattern(resp.seq, 200)).tobytes()
                    got += 1
            except flatlane.FlatlaneTimeoutError:
                pass
        t.join(5)
        assert done.is_set()


# ------------------------------------------------------------------------------------------------
# Processes: Python against C++, both ways; a Python server killed holding requests


def test_python_client_cpp_server(channel: str, duplex_program: Path) -> None:
    with flatlane.DuplexClient(channel, mode="create", ring_capacity=RING) as client:
        with cpp_peer(duplex_program, "serve", channel, 0) as peer:
            peer.expect("ready")
            sizes = [1, 64, 256, 1000, 4000, 17]
            sent = got = 0
            total = 60
            addrs = {}
            while got < total:
                while sent < total and sent - got < 4:
                    n = sizes[sent % len(sizes)]
                    view = client.reserve(n, timeout=5000)
                    view[:] = pattern(sent + 1, n).tobytes()
                    addrs[sent + 1] = address(view)
                    del view
                    client.commit(n)
                    sent += 1
                with client.receive(timeout=20_000) as resp:
                    n = sizes[(resp.seq - 1) % len(sizes)]
                    assert not resp.rejected
                    assert bytes(resp) == (~pattern(resp.seq, n)).tobytes()
                    assert address(resp) == addrs[resp.seq]
                    got += 1
            client.close()
            assert peer.expect("done") == ["done", "60"]
            exit_ok(peer)


def test_cpp_client_python_server(channel: str, duplex_program: Path) -> None:
    with flatlane.DuplexServer(channel, mode="create", ring_capacity=RING) as server:
        with cpp_peer(duplex_program, "client", channel, 40, size=700, outstanding=3) as peer:
            peer.expect("ready")
            n = 0
            while True:
                try:
                    req = server.receive(timeout=20_000)
                except flatlane.PeerClosedError:
                    break
                assert bytes(req) == pattern(req.seq, 700).tobytes()
                invert_and_respond(req)
                n += 1
            assert n == 40 and peer.expect("done") == ["done", "40"]
            exit_ok(peer)


def test_kill9_python_server_holding_requests(channel: str) -> None:
    with flatlane.DuplexClient(channel, mode="create", ring_capacity=RING, liveness_interval_ms=20) as client:
        with py_peer("hold", channel, 3) as peer:
            peer.expect("ready")
            for s in range(1, 6):
                client.send(pattern(s, 128).tobytes())
            peer.expect("held 3")
            peer.kill9()
        with pytest.raises(flatlane.PeerDeadError) as info:
            client.receive(timeout=5000)
        assert info.value.role == "client"
        with py_peer("serve", channel, 2) as peer2:
            peer2.expect("ready")
            got = [client.receive(timeout=10_000) for _ in range(5)]
            assert [r.seq for r in got] == [1, 2, 3, 4, 5]
            assert [r.rejected for r in got] == [True, True, True, False, False]
            for r in got[3:]:
                assert bytes(r) == (~pattern(r.seq, 128)).tobytes()
            assert peer2.expect("done") == ["done", "2"]
            exit_ok(peer2)


# ------------------------------------------------------------------------------------------------
# Typed: the generated fltest.Inplace.invert channel (tests/cpp/schema/typed_test.fbs)

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "tests" / "cpp" / "schema" / "typed_test.fbs"


def invert_call(call) -> None:  # type: ignore[no-untyped-def]
    """What the C++ typed test's server does: Blob.data inverted, checksum rewritten, in place."""
    if call.msg.DataLength() == 0:
        return  # no bytes; checksum 0 is the default, which the builder leaves out
    data = call.numpy_view("data")
    assert data.flags.writeable
    np.invert(data, out=data)
    assert call.mutate("checksum", checksum(data))
    del data


def check_inverted(m, bid: int, size: int) -> str:  # type: ignore[no-untyped-def]
    if m.Id() != bid:
        return f"id {m.Id()} != {bid}"
    data = m.DataAsNumpy() if size else np.zeros(0, np.uint8)
    if m.DataLength() != size or not np.array_equal(data, ~blob_bytes(bid, size)):
        return f"bytes of {bid}"
    if m.Checksum() != checksum(data):
        return f"checksum of {bid}"
    return ""


def test_typed_generated_classes(gen) -> None:  # type: ignore[no-untyped-def]
    ch = gen.Inplace.invert
    assert ch.spec.kind is typed.ChannelKind.DUPLEX
    assert issubclass(ch.Client, typed.InPlaceClient) and issubclass(ch.Server, typed.InPlaceServer)
    assert ch.Client.message is ch.request is ch.response
    with pytest.raises(TypeError):
        typed.InPlaceClient.of(gen.Calc.Add.spec, gen.Calc.Add.request)  # a service is not duplex


def test_typed_round_trip_in_place(gen, channel: str) -> None:  # type: ignore[no-untyped-def]
    ch = gen.Inplace.invert
    with ch.Client(name=channel) as client, ch.Server(name=channel, mode="open") as server:
        seq = client.send(build_blob, 42, 1000)
        assert seq == 1 and client.outstanding == 1
        call = server.receive(timeout=1000)
        assert call.seq == seq and call.msg.Id() == 42 and call.msg.DataLength() == 1000
        assert check_blob(call.msg, 42, 1000) == ""
        invert_call(call)
        assert call.msg.Checksum() == checksum(~blob_bytes(42, 1000))  # the reader sees the patch
        server.respond(call)
        assert call.answered and call.released
        with client.receive(timeout=1000) as reply:
            assert not reply.rejected and reply.seq == seq and reply.zero_copy
            assert check_inverted(reply.msg, 42, 1000) == ""
            assert reply.numpy_view("data")[0] == (~blob_bytes(42, 1000))[0]
        st = client.stats()
        assert (st.sent, st.received, st.rejected, st.corrupt) == (1, 1, 0, 0)
        assert server.stats().received == 1


def test_typed_many_outstanding_wrap_and_growth(gen, channel: str) -> None:  # type: ignore[no-untyped-def]
    ch = gen.Inplace.invert
    with ch.Client(name=channel) as client, ch.Server(name=channel, mode="open") as server:
        sizes = [0, 10, 3000, 700, 9000, 64, 5000, 12000, 1]
        total, sent, got = 60, 0, 0
        pending = []
        while got < total:
            while sent < total and sent - got < 3:
                n = sizes[sent % len(sizes)]
                assert client.send(build_blob, 1000 + sent, n) == sent + 1
                sent += 1
            calls = []
            while server.outstanding + len(calls) < sent - got and len(calls) < 3:
                try:
                    calls.append(server.receive(timeout=0))
                except flatlane.FlatlaneTimeoutError:
                    break
            for call in reversed(calls):  # answered out of order
                invert_call(call)
                call.respond()
            pending.extend(calls)
            with client.receive(timeout=1000) as reply:
                n = sizes[(reply.seq - 1) % len(sizes)]
                assert check_inverted(reply.msg, 1000 + reply.seq - 1, n) == ""
                got += 1
        assert client.stats().regrown > 0  # the first reservation (256 B) was too small for some


def test_typed_too_large_rejected_and_corrupt(gen, channel: str) -> None:  # type: ignore[no-untyped-def]
    ch = gen.Inplace.invert
    with ch.Client(name=channel) as client, ch.Server(name=channel, mode="open") as server:
        with pytest.raises(flatlane.MessageTooLargeError):
            client.send(build_blob, 1, 40_000)  # over max_message (32704): one frame at most
        assert client.outstanding == 0
        client.send(build_blob, 2, 100)  # the builder recovered
        server.receive(timeout=1000).reject()
        with client.receive(timeout=1000) as reply:
            assert reply.rejected and reply.msg is None
        client.close()
        # A raw client of the same type sending garbage: the typed server rejects it.
        raw = flatlane.DuplexClient(channel, mode="open", type_name=ch.request.type_name,
                                    type_hash=ch.request.type_hash)
        with raw:
            raw.send(b"\xff" * 64)
            with pytest.raises(flatlane.CorruptMessageError) as info:
                server.receive(timeout=1000)
            assert info.value.role == "server" and "duplex channel" in str(info.value)
            assert server.stats().rejected == 1
            with raw.receive(timeout=1000) as resp:
                assert resp.rejected
        with pytest.raises(flatlane.TypeMismatchError):
            flatlane.DuplexClient(channel, mode="open", type_name="other.Type", type_hash=1)


def test_typed_mutate_helper(gen, channel: str) -> None:  # type: ignore[no-untyped-def]
    from fltest import Blob as B

    def no_checksum(b, bid):  # type: ignore[no-untyped-def]
        B.BlobStart(b)
        B.BlobAddId(b, bid)
        return B.BlobEnd(b)

    ch = gen.Inplace.invert
    with ch.Client(name=channel) as client, ch.Server(name=channel, mode="open") as server:
        client.send(no_checksum, 7)
        call = server.receive(timeout=1000)
        assert not call.mutate("checksum", 5)  # absent: nothing to patch in place
        assert typed.mutate(call.msg, "Id", 99)
        with pytest.raises(struct.error):
            call.mutate("id", -1)  # out of the ulong range
        with pytest.raises(AttributeError):
            call.mutate("nope", 1)
        with pytest.raises(ValueError):
            call.numpy_view("data")  # absent vector
        call.respond()
        with client.receive(timeout=1000) as reply:
            assert reply.msg.Id() == 99 and reply.msg.Checksum() == 0


def test_typed_python_client_server_process(gen, gen_dir: Path, channel: str) -> None:  # type: ignore[no-untyped-def]
    ch = gen.Inplace.invert
    with ch.Client(name=channel) as client:
        with Peer([sys.executable, str(DUPLEX_PEER), "typed", channel, "20", str(gen_dir)]) as peer:
            peer.expect("ready")
            sent = got = 0
            while got < 20:
                while sent < 20 and sent - got < 4:
                    client.send(build_blob, 500 + sent, 37 * sent)
                    sent += 1
                with client.receive(timeout=20_000) as reply:
                    assert check_inverted(reply.msg, 500 + reply.seq - 1, 37 * (reply.seq - 1)) == ""
                    got += 1
            assert peer.expect("done") == ["done", "20"]
            exit_ok(peer)


# The C# team's C++ typed peer (runtime/csharp/Flatlane.Typed.Tests/peers/typed_peer.cpp) has
# serve-invert / call-invert modes for fltest.Inplace.invert; compiled here on first use, as the
# C# tests do, into a directory of the build of its own.
TYPED_PEER_SRC = REPO / "runtime" / "csharp" / "Flatlane.Typed.Tests" / "peers" / "typed_peer.cpp"


@pytest.fixture(scope="session")
def cpp_typed_peer() -> Path:
    lib = BUILD_DIR / "runtime" / "cpp" / "libflatlane.a"
    if not lib.exists():
        pytest.fail(f"{lib} not found: build the runtime (FLATLANE_BUILD_DIR={BUILD_DIR})")
    out = BUILD_DIR / "python-duplex-typed-peer"
    exe = out / "typed_peer"
    newest = max(TYPED_PEER_SRC.stat().st_mtime, lib.stat().st_mtime)
    if not exe.exists() or exe.stat().st_mtime < newest:
        out.mkdir(parents=True, exist_ok=True)
        fw = REPO / "generator" / "flatlane_gen" / "schema"
        subprocess.run(["flatc", "--cpp", "-o", str(out), "-I", str(fw), str(SCHEMA), str(fw / "flatlane.fbs"),
                        str(REPO / "tests" / "generator" / "data" / "kitchen_sink.fbs"),
                        str(TYPED_PEER_SRC.parent.parent / "schema" / "union_vectors.fbs")], check=True)
        subprocess.run(["g++", "-std=c++20", "-O1", "-I", str(REPO / "runtime" / "cpp" / "include"), "-I", str(out),
                        "-o", str(exe) + ".tmp", str(TYPED_PEER_SRC), str(lib), "-lpthread", "-lrt"], check=True)
        os.replace(str(exe) + ".tmp", exe)
    return exe


def byte_sum(data: np.ndarray) -> int:
    return int(data.sum(dtype=np.uint64))


def test_typed_python_client_cpp_server(gen, channel: str, cpp_typed_peer: Path) -> None:  # type: ignore[no-untyped-def]
    """The C++ peer verifies every request (alignment included), inverts Blob.data and rewrites
    checksum (the byte sum) where the message lies."""
    ch = gen.Inplace.invert
    t = ch.request
    sizes = [0, 1, 100, 1000, 7000, 64, 20000, 3]
    total = 24
    with ch.Client(name=channel) as client:
        with Peer([str(cpp_typed_peer), "serve-invert", channel, str(total), t.type_name, format(t.type_hash, "x")]) as peer:
            peer.expect("ready")
            sent = got = 0
            while got < total:
                while sent < total and sent - got < 4:
                    client.send(build_blob, 300 + sent, sizes[sent % len(sizes)])
                    sent += 1
                with client.receive(timeout=20_000) as reply:
                    k = reply.seq - 1
                    assert not reply.rejected
                    m = reply.msg
                    n = sizes[k % len(sizes)]
                    data = m.DataAsNumpy() if n else np.zeros(0, np.uint8)
                    assert m.Id() == 300 + k and m.DataLength() == n
                    assert np.array_equal(data, ~blob_bytes(300 + k, n))
                    assert m.Checksum() == byte_sum(data)
                    del data, m
                    got += 1
            assert peer.expect("done") == ["done", str(total)]
            exit_ok(peer)


def test_typed_cpp_client_python_server(gen, channel: str, cpp_typed_peer: Path) -> None:  # type: ignore[no-untyped-def]
    """The C++ peer builds blobs 1..COUNT (4 in flight) and checks each answer: data inverted,
    checksum the byte sum, verified by flatbuffers' C++ verifier after our in-place changes."""
    ch = gen.Inplace.invert
    t = ch.request
    total = 30
    with ch.Server(name=channel, mode="create") as server:
        with Peer([str(cpp_typed_peer), "call-invert", channel, str(total), t.type_name, format(t.type_hash, "x"),
                   "-", "0", "5000"]) as peer:
            peer.expect("ready")
            for _ in range(total):
                call = server.receive(timeout=20_000)
                if call.msg.DataLength():
                    data = call.numpy_view("data")
                    np.invert(data, out=data)
                    s = byte_sum(data)
                    del data
                    assert call.mutate("checksum", s) or s == 0
                server.respond(call)
            assert peer.expect("done") == ["done", str(total)]
            exit_ok(peer)


def test_release_while_another_thread_waits(channel: str) -> None:
    """A response released (and a request dropped) while another thread is blocked in receive()
    cannot take the endpoint's lock: it is queued and given back by the waiting thread within a
    slice."""
    client, server = pair(channel)
    with client, server:
        client.send(b"a")
        client.send(b"b")
        server.receive(timeout=1000).respond()
        first = client.receive(timeout=1000)
        got: list = []
        t = threading.Thread(target=lambda: got.append(client.receive(timeout=5000)))
        t.start()
        time.sleep(0.1)  # the thread waits for the response to "b", holding the client's lock
        first.release()
        del first
        assert client.stats().occupancy_bytes == 64  # one 32-byte header + "b" padded to 32 left
        req = server.receive(timeout=1000)
        timeouts: list = []

        def wait_request() -> None:
            try:
                server.receive(timeout=300)
            except flatlane.FlatlaneTimeoutError as e:
                timeouts.append(e)

        waiting = threading.Thread(target=wait_request)
        waiting.start()
        time.sleep(0.05)
        del req  # dropped unanswered while the server thread waits: rejected within a slice
        t.join(5)
        waiting.join(5)
        assert not t.is_alive() and not waiting.is_alive() and len(timeouts) == 1
        assert got and got[0].rejected and got[0].seq == 2
        assert client.held_responses == 1
        got.clear()
        assert client.held_responses == 0
