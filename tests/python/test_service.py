"""Request/reply services from Python: calls, streaming replies, timeouts that skip late replies,
no server, zero-copy requests and replies, lifetimes, and real processes with the C++ peer
(tests/cpp/peer_service.cpp) in both directions, kill -9 included."""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path
from typing import Iterator, List

import pytest

import flatlane
from conftest import BUILD_DIR, shm_path
from peers import Peer, exit_ok

# tests/cpp/service_test_util.hpp: the options the C++ peer uses.
PEER_SERVICE = dict(
    max_clients=8,
    max_request=1024,
    request_slots=16,
    queue_depth=8,
    reply_ring=1 << 14,
    request_type=("fltest.Request", 1),
    reply_type=("fltest.Reply", 2),
)


def request_payload(i: int) -> bytes:
    """request_payload(i) of service_test_util.hpp: 8 + i % 200 bytes, byte k = i*31 + k."""
    return bytes((i * 31 + k) & 0xFF for k in range(8 + i % 200))


def answer_of(req: bytes) -> bytes:
    """The peer's answer rule: every byte plus one."""
    return bytes((b + 1) & 0xFF for b in req)


@pytest.fixture(scope="module")
def peer_service() -> Path:
    path = BUILD_DIR / "tests" / "cpp" / "flatlane_peer_service"
    if not path.exists():
        pytest.fail(f"{path} not found: build the flatlane_peer_service target (FLATLANE_BUILD_DIR={BUILD_DIR})")
    return path


@pytest.fixture
def server(channel: str) -> Iterator[flatlane.ServiceServer]:
    with flatlane.ServiceServer(channel, max_request=256, reply_ring=1 << 14) as s:
        yield s


def client_of(channel: str, **kw: object) -> flatlane.ServiceClient:
    return flatlane.ServiceClient(channel, max_request=256, reply_ring=1 << 14, **kw)  # type: ignore[arg-type]


def test_call_and_reply_zero_copy(channel: str, server: flatlane.ServiceServer) -> None:
    with client_of(channel) as client:
        rid = client.send(b"ping")
        assert rid == 1
        with server.receive(timeout=1000) as req:
            assert (bytes(req.data), req.id, req.client) == (b"ping", 1, client.index)
            with pytest.raises(TypeError):
                req.data[0] = 0  # read-only
            assert server.reply(req, b"pong") is True
        with client.receive(rid, timeout=1000) as rep:
            assert (bytes(rep.data), rep.id, rep.more) == (b"pong", 1, False)
        # Zero copy both ways: a prepared request and a prepared reply.
        view = client.prepare(16)
        view[:5] = b"hello"
        rid = client.send_prepared(5)
        req = server.receive(timeout=1000)
        assert bytes(req.data) == b"hello"
        out = server.prepare_reply(req, 32)
        out[:] = bytes(range(32))
        server.commit_reply_tail(8)  # the last 8 bytes, where they are
        req.release()
        rep = client.receive(rid, timeout=1000)
        assert bytes(rep.data) == bytes(range(24, 32))
        rep.release()
        assert server.stats() == flatlane.ServerStats(requests=2, replies=2, dropped_replies=0, clients=1)
        assert client.stats() == flatlane.ClientStats(requests=2, replies=2, held_replies=0)
        # The request slot is max_request + the 16-byte envelope rounded up to 64 bytes.
        assert client.max_request == 320 - 16


def test_call_with_a_serving_thread(channel: str, server: flatlane.ServiceServer) -> None:
    """call() and receive() release the GIL while they wait: a server thread answers meanwhile."""
    n = 300

    def serve() -> None:
        for _ in range(n):
            with server.receive(timeout=10_000) as req:
                server.reply(req, answer_of(bytes(req.data)))

    t = threading.Thread(target=serve)
    t.start()
    with client_of(channel) as client:
        for i in range(n):
            with client.call(request_payload(i), timeout=10_000) as rep:
                assert bytes(rep.data) == answer_of(request_payload(i))
    t.join(timeout=30)
    assert not t.is_alive()


def test_streaming_replies(channel: str, server: flatlane.ServiceServer) -> None:
    with client_of(channel) as client:
        rid = client.send(b"count to 4")
        with server.receive(timeout=1000) as req:
            for k in range(3):
                assert server.reply(req, f"part {k}".encode(), more=True)
            view = server.prepare_reply(req, 4)
            view[:] = b"last"
            server.commit_reply(4, more=False)
        parts = []
        while True:
            with client.receive(rid, timeout=1000) as rep:
                assert rep.id == rid
                parts.append((bytes(rep.data), rep.more))
                if not rep.more:
                    break
        assert parts == [(b"part 0", True), (b"part 1", True), (b"part 2", True), (b"last", False)]


def test_timeout_then_late_reply_is_skipped(channel: str, server: flatlane.ServiceServer) -> None:
    with client_of(channel) as client:
        t0 = time.monotonic()
        with pytest.raises(flatlane.FlatlaneTimeoutError, match="no reply within 30 ms"):
            client.call(b"first", timeout=30)
        assert time.monotonic() - t0 >= 0.025
        first = server.receive(timeout=1000)
        assert server.reply(first, b"late answer to first")  # the client gave up on it
        rid = client.send(b"second")
        second = server.receive(timeout=1000)
        assert server.reply(second, b"answer to second")
        with client.receive(rid, timeout=1000) as rep:
            assert (bytes(rep.data), rep.id) == (b"answer to second", rid)
        with pytest.raises(flatlane.FlatlaneTimeoutError):
            client.receive(rid, timeout=0)
        del first, second


def test_a_poll_with_timeout_zero_takes_a_reply_that_is_there(channel: str, server: flatlane.ServiceServer) -> None:
    """receive(id, timeout=0) reads once: a reply already in the ring comes back, none raises."""
    with client_of(channel) as client:
        rid = client.send(b"q")
        with pytest.raises(flatlane.FlatlaneTimeoutError):
            client.receive(rid, timeout=0)  # not answered yet
        with server.receive(timeout=1000) as req:
            assert server.reply(req, b"a")
        with client.receive(rid, timeout=0) as rep:
            assert bytes(rep.data) == b"a"


def test_a_client_sending_to_a_server_that_does_not_read_fails_after_send_timeout(channel: str) -> None:
    """Request slots and the server's queue fill up; the next send waits send_timeout_ms, then
    raises BufferFullError saying why; nothing sent before is lost."""
    with flatlane.ServiceServer(channel) as server, flatlane.ServiceClient(channel, send_timeout_ms=50) as client:
        sent = []
        with pytest.raises(flatlane.BufferFullError, match="the server's queue stayed full for send_timeout"):
            for i in range(10_000):
                sent.append(client.send(b"%d" % i))
        assert 0 < len(sent) < 10_000
        for i, rid in enumerate(sent):
            with server.receive(timeout=1000) as req:
                assert (req.id, bytes(req.data)) == (rid, b"%d" % i)
        client.send(b"after")  # room again


def test_no_server_is_not_found(channel: str) -> None:
    with client_of(channel) as client:
        with pytest.raises(flatlane.ChannelNotFoundError, match="no server"):
            client.send(b"anyone?")
        with pytest.raises(FileNotFoundError):
            client.call(b"anyone?", timeout=100)


def test_server_close_and_client_gone(channel: str) -> None:
    server = flatlane.ServiceServer(channel, max_request=256, reply_ring=1 << 14)
    client = client_of(channel)
    rid = client.send(b"x")
    req = server.receive(timeout=1000)
    client.close()  # the client leaves before its answer
    assert server.reply(req, b"too late") is False
    with pytest.raises(flatlane.PeerClosedError):
        server.prepare_reply(req, 4)
    assert server.stats().dropped_replies == 2
    req.release()
    with pytest.raises(flatlane.ClosedError):
        client.receive(rid, timeout=0)
    client2 = client_of(channel)
    rid2 = client2.send(b"y")
    server.close()
    with pytest.raises(flatlane.PeerClosedError):
        client2.receive(rid2, timeout=1000)
    with pytest.raises(flatlane.ClosedError):
        server.receive(timeout=0)
    client2.close()


def test_request_argument_checks(channel: str, server: flatlane.ServiceServer) -> None:
    with client_of(channel) as client:
        client.send(b"q")
        req = server.receive(timeout=1000)
        with pytest.raises(TypeError):
            server.reply(b"not a request", b"x")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="without a prepared reply"):
            server.commit_reply(1)
        with pytest.raises(flatlane.MessageTooLargeError):
            client.send(b"z" * (client.max_request + 1))
        req.release()
        with pytest.raises(ValueError, match="released"):
            server.reply(req, b"x")


def test_views_survive_close_and_deletion(channel: str) -> None:
    server = flatlane.ServiceServer(channel, max_request=256, reply_ring=1 << 14)
    client = client_of(channel)
    rid = client.send(b"request bytes")
    req = server.receive(timeout=1000)
    req_view = req.data
    server.reply(req, b"reply bytes")
    rep = client.receive(rid, timeout=1000)
    rep_view = rep.data
    prepared = client.prepare(8)
    client.close()
    server.close()  # neither raises BufferError
    del client, server, req, rep
    gc.collect()
    assert bytes(req_view) == b"request bytes" and bytes(rep_view) == b"reply bytes"
    prepared[:2] = b"ok"
    del req_view, rep_view, prepared
    gc.collect()
    assert not shm_path(channel).exists()
    assert not list(Path("/dev/shm").glob(f"flatlane.{channel}.reply.*"))


def test_close_from_another_thread_interrupts_receive(channel: str, server: flatlane.ServiceServer) -> None:
    client = client_of(channel)
    rid = client.send(b"never answered")
    errors: List[BaseException] = []

    def wait() -> None:
        try:
            client.receive(rid, timeout=20_000)
        except BaseException as e:  # noqa: BLE001 (recorded for the assertion)
            errors.append(e)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.1)
    client.close()
    t.join(timeout=5)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], flatlane.ClosedError)


# ---- real processes: the C++ peer ----------------------------------------------------------------


def test_python_client_to_cpp_server(channel: str, peer_service: Path) -> None:
    count = 300
    with Peer([str(peer_service), "serve", channel, str(count)]) as peer:
        peer.expect("ready")
        with flatlane.ServiceClient(channel, **PEER_SERVICE) as client:  # type: ignore[arg-type]
            for i in range(count):
                req = request_payload(i)
                if i % 2:
                    with client.call(req, timeout=10_000) as rep:
                        assert bytes(rep.data) == answer_of(req) and not rep.more
                else:
                    view = client.prepare(len(req))
                    view[:] = req
                    rid = client.send_prepared(len(req))
                    with client.receive(rid, timeout=10_000) as rep:
                        assert rep.id == rid and bytes(rep.data) == answer_of(req)
        assert peer.expect("done") == ["done", str(count)]
        exit_ok(peer)


def test_cpp_clients_to_python_server(channel: str, peer_service: Path) -> None:
    count, clients = 200, 3
    with flatlane.ServiceServer(channel, **PEER_SERVICE) as server:  # type: ignore[arg-type]
        peers = [Peer([str(peer_service), "call", channel, str(count)]) for _ in range(clients)]
        try:
            for p in peers:
                p.expect("ready")
            seen = {}
            for _ in range(count * clients):
                with server.receive(timeout=10_000) as req:
                    data = bytes(req.data)
                    # Each client's i-th request has id i + 1 and request_payload(i) as payload.
                    assert data == request_payload(req.id - 1)
                    assert seen.get(req.client, 0) == req.id - 1
                    seen[req.client] = req.id
                    if req.id % 2:
                        assert server.reply(req, answer_of(data))
                    else:
                        view = server.prepare_reply(req, len(data))
                        view[:] = answer_of(data)
                        server.commit_reply(len(data))
            for p in peers:
                assert p.expect("done") == ["done", str(count)]
                exit_ok(p)
            assert sorted(seen.values()) == [count] * clients
            st = server.stats()
            assert (st.requests, st.replies, st.dropped_replies) == (count * clients, count * clients, 0)
        finally:
            for p in peers:
                p.close()


def test_kill9_cpp_server_is_reported_dead(channel: str, peer_service: Path) -> None:
    with Peer([str(peer_service), "serve", channel, "0"]) as peer:
        peer.expect("ready")
        with flatlane.ServiceClient(channel, liveness_interval_ms=20, **PEER_SERVICE) as client:  # type: ignore[arg-type]
            with client.call(request_payload(1), timeout=10_000) as rep:
                assert bytes(rep.data) == answer_of(request_payload(1))
            peer.kill9()
            t0 = time.monotonic()
            with pytest.raises(flatlane.PeerDeadError, match="server died"):
                client.call(request_payload(2), timeout=10_000)
            assert time.monotonic() - t0 < 5


def test_kill9_cpp_client_drops_its_reply(channel: str, peer_service: Path) -> None:
    with flatlane.ServiceServer(channel, **PEER_SERVICE) as server, Peer(  # type: ignore[arg-type]
        [str(peer_service), "hang", channel, "1"]
    ) as peer:
        peer.expect("sent")
        req = server.receive(timeout=10_000)
        assert bytes(req.data) == b"never read"
        peer.kill9()
        # A reply that fits goes into the dead client's ring unnoticed (a writer checks its peer
        # only when it would wait); once the ring is full the server finds the client dead and
        # drops the reply, without waiting and without raising.
        sent = 0
        while server.reply(req, b"to a dead client"):
            sent += 1
            assert sent < (1 << 14) // 32, "the dead client's ring never filled"
        assert server.stats().dropped_replies == 1
        assert server.reply(req, b"again") is False  # still full: dropped again, never waited for
        req.release()
        # The dead client's block is reused by the next client, which gets its answers.
        with flatlane.ServiceClient(channel, **PEER_SERVICE) as client:  # type: ignore[arg-type]
            rid = client.send(b"alive")
            with server.receive(timeout=10_000) as r2:
                assert server.reply(r2, answer_of(bytes(r2.data)))
            with client.receive(rid, timeout=10_000) as rep:
                assert bytes(rep.data) == answer_of(b"alive")
