"""asyncio: awaitable receives on the untyped API and the runtime endpoints; one loop serving
several channels at once (in-process and from another process); cancellation that neither loses
nor duplicates a message and stops the native wait; timeouts; close while awaiting."""

from __future__ import annotations

import asyncio
import queue
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

import flatlane
from flatlane import _aio
from peers import Peer, exit_ok

UNTYPED_PEER = Path(__file__).resolve().parent / "untyped_peer.py"


def run(coro: Any, timeout: float = 30.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def later(delay_s: float, fn: Any, *args: Any) -> threading.Thread:
    def go() -> None:
        time.sleep(delay_s)
        fn(*args)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


def test_recv_async_waits_without_blocking_the_loop(channel: str) -> None:
    with flatlane.Subscriber(channel) as sub, flatlane.Publisher(channel) as pub:

        async def main() -> Any:
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.005)
                    ticks += 1

            t = asyncio.create_task(ticker())
            later(0.2, pub.send, {"hello": "loop"})
            t0 = time.monotonic()
            got = await sub.recv_async(timeout=5000)
            waited = time.monotonic() - t0
            t.cancel()
            return got, ticks, waited

        got, ticks, waited = run(main())
        assert got == {"hello": "loop"}
        assert waited >= 0.15
        assert ticks >= 10  # the loop kept running while the receive waited


def test_fast_path_needs_no_thread(channel: str) -> None:
    with flatlane.Subscriber(channel) as sub, flatlane.Publisher(channel) as pub:
        pub.send(b"already there")

        async def main() -> Any:
            return bytes(await sub.recv_async())

        assert run(main()) == b"already there"
        assert _aio.state_of(sub.endpoint).worker.threads_started == 0


def test_async_for_and_zero_copy(channel: str) -> None:
    with flatlane.Puller(channel) as pull, flatlane.Pusher(channel) as push:

        async def main() -> List[Any]:
            out: List[Any] = []
            later(0.05, lambda: [push.send(np.full(8, k, np.int16)) for k in range(5)])
            async for arr in pull:
                assert not arr.flags.writeable
                out.append(int(arr[0]))
                if len(out) == 5:
                    break
            return out

        assert run(main()) == [0, 1, 2, 3, 4]


def test_one_loop_serves_many_channels(channel: str) -> None:
    names = [f"{channel}.{i}" for i in range(4)]
    subs = [flatlane.Subscriber(n, queue_depth=64, subscriber_mode="block_publisher") for n in names]
    pubs = [flatlane.Publisher(n) for n in names]
    rep = flatlane.Replier(channel + ".svc")
    req = flatlane.Requester(channel + ".svc")
    try:

        def feed() -> None:
            for k in range(50):
                for i, p in enumerate(pubs):
                    p.send((i, k), timeout=5000)
                time.sleep(0.001)

        async def serve_topic(i: int, sub: flatlane.Subscriber) -> List[int]:
            got = []
            while len(got) < 50:
                topic, k = await sub.recv_async(timeout=10_000)
                assert topic == i
                got.append(k)
            return got

        async def serve_requests() -> int:
            n = 0
            async for x in rep:
                rep.send(x * 10)
                n += 1
                if n == 20:
                    return n
            return n

        def ask() -> List[Any]:
            return [req.request(k, timeout=5000) for k in range(20)]

        async def main() -> Any:
            asker: Dict[str, Any] = {}
            threading.Thread(target=feed, daemon=True).start()
            t = threading.Thread(target=lambda: asker.update(r=ask()), daemon=True)
            t.start()
            res = await asyncio.gather(*(serve_topic(i, s) for i, s in enumerate(subs)), serve_requests())
            t.join(10)
            return res, asker["r"]

        res, replies = run(main())
        for got in res[:4]:
            assert got == list(range(50))  # every message, in order, per channel
        assert res[4] == 20 and replies == [k * 10 for k in range(20)]
    finally:
        for e in (*subs, *pubs, rep, req):
            e.close()


def test_loop_serves_channels_of_another_process(channel: str) -> None:
    names = [f"{channel}.{i}" for i in range(3)]
    subs = [flatlane.Subscriber(n, queue_depth=64, subscriber_mode="block_publisher") for n in names]
    try:
        with Peer([sys.executable, str(UNTYPED_PEER), "multi", ",".join(names), "100"]) as p:
            p.expect("ready")

            async def drain(i: int, sub: flatlane.Subscriber) -> List[int]:
                ks = []
                while len(ks) < 100:
                    m = await sub.recv_async(timeout=10_000)
                    assert m["topic"] == i
                    ks.append(m["k"])
                return ks

            async def main() -> Any:
                return await asyncio.gather(*(drain(i, s) for i, s in enumerate(subs)))

            for ks in run(main()):
                assert ks == list(range(100))
            p.expect("done")
            exit_ok(p)
    finally:
        for s in subs:
            s.close()


def test_timeout_and_wait_for(channel: str) -> None:
    with flatlane.Subscriber(channel) as sub, flatlane.Publisher(channel) as pub:

        async def main() -> Any:
            t0 = time.monotonic()
            with pytest.raises(flatlane.FlatlaneTimeoutError, match=r"recv_async|receive\(\).*within 40 ms"):
                await sub.recv_async(timeout=40)
            took = time.monotonic() - t0
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(sub.recv_async(), 0.05)  # cancellation by wait_for
            pub.send("after the cancel")
            return took, await sub.recv_async(timeout=1000)

        took, got = run(main())
        assert 0.035 <= took < 1.0
        assert got == "after the cancel"


def test_cancellation_stops_the_native_wait(channel: str) -> None:
    with flatlane.Subscriber(channel) as sub, flatlane.Publisher(channel) as pub:

        async def main() -> None:
            task = asyncio.create_task(sub.recv_async())
            await asyncio.sleep(0.05)  # the worker is inside the native receive now
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(3 * _aio.SLICE_MS / 1000)
            # The worker left the native wait: a non-waiting receive on this thread gets the
            # endpoint (while a wait is in progress it could not, and would time out at once).
            pub.send("direct")
            assert sub.recv(timeout=0) == "direct"

        run(main())


def test_cancellation_never_loses_or_duplicates(channel: str) -> None:
    n = 300
    # block_publisher: a topic would drop the oldest queued message when the publisher runs out of
    # slots; this test is about cancellation, so nothing may be dropped by the topic itself.
    with flatlane.Subscriber(channel, queue_depth=512, subscriber_mode="block_publisher") as sub, flatlane.Publisher(
        channel
    ) as pub:

        def feed() -> None:
            rnd = random.Random(5)
            for k in range(n):
                pub.send(k)
                time.sleep(rnd.random() * 0.002)

        async def main() -> List[int]:
            got: List[int] = []
            rnd = random.Random(7)
            threading.Thread(target=feed, daemon=True).start()
            deadline = time.monotonic() + 20
            while len(got) < n and time.monotonic() < deadline:
                task = asyncio.create_task(sub.recv_async(timeout=5000))
                await asyncio.sleep(rnd.random() * 0.002)
                if rnd.random() < 0.5:
                    task.cancel()
                try:
                    got.append(await task)
                except asyncio.CancelledError:
                    pass
            return got

        got = run(main())
        assert got == list(range(n))  # in order, none lost, none twice
        assert sub.stats().transport.dropped == 0


def test_close_while_awaiting_ends_async_for(channel: str) -> None:
    sub = flatlane.Subscriber(channel)

    async def main() -> int:
        n = 0
        asyncio.get_running_loop().call_later(0.1, sub.close)
        async for _ in sub:
            n += 1
        return n

    t0 = time.monotonic()
    assert run(main()) == 0
    assert time.monotonic() - t0 < 1.0
    with pytest.raises(flatlane.ClosedError):
        run(sub.recv_async())


def test_requester_async_and_cancelled_request(channel: str) -> None:
    with flatlane.Replier(channel) as rep, flatlane.Requester(channel) as req:

        async def main() -> Any:
            later(0.05, lambda: (rep.recv(timeout=2000), rep.send("slow answer")))
            first = await req.request_async("q1", timeout=2000)
            # cancelled while waiting: the next recv_async of the same request still gets it
            req.send("q2")
            task = asyncio.create_task(req.recv_async())
            await asyncio.sleep(0.03)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert rep.recv(timeout=1000) == "q2"
            rep.send("late answer")
            second = await req.recv_async(timeout=2000)
            return first, second

        assert run(main()) == ("slow answer", "late answer")


def test_runtime_endpoints(channel: str) -> None:
    with flatlane.TopicSubscriber(channel) as sub, flatlane.TopicPublisher(channel) as pub, flatlane.Reader(
        channel + ".ch"
    ) as reader, flatlane.Writer(channel + ".ch") as writer, flatlane.ServiceServer(
        channel + ".svc"
    ) as server, flatlane.ServiceClient(channel + ".svc") as client:

        def answer() -> None:
            with server.receive(timeout=5000) as r:
                server.reply(r, bytes(r.data).upper())

        async def main() -> Any:
            later(0.05, pub.send, b"sample")
            later(0.05, writer.send, b"frame")
            threading.Thread(target=answer, daemon=True).start()
            s, f, rep = await asyncio.gather(
                flatlane.aio.receive(sub, timeout=5000),
                flatlane.aio.read(reader, timeout=5000),
                flatlane.aio.call(client, b"call", timeout=5000),
            )
            out = bytes(s.data), bytes(f.data), bytes(rep.data)
            s.release()
            f.release()
            rep.release()
            return out

        assert run(main()) == (b"sample", b"frame", b"CALL")


def test_worker_threads_exit_when_idle(channel: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_aio, "IDLE_EXIT_S", 0.1)
    before = {t.ident for t in threading.enumerate()}
    with flatlane.Subscriber(channel) as sub, flatlane.Publisher(channel) as pub:

        async def main(v: int) -> Any:
            later(0.05, pub.send, v)
            return await sub.recv_async(timeout=2000)

        assert run(main(1)) == 1
        time.sleep(0.5)
        extra = [t for t in threading.enumerate() if t.ident not in before and t.name.startswith("flatlane-aio")]
        assert extra == []
        assert run(main(2)) == 2  # a new worker starts on demand
        assert _aio.state_of(sub.endpoint).worker.threads_started == 2


class _FakeEndpoint:
    """Stands in for an endpoint so the cancellation races can be forced deterministically: its
    receive returns "msg <k>" once `ready` is set, else times out."""

    name = "fake"
    closed = False
    _role = "subscriber"

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.k = 0

    def op(self, t: Any) -> str:
        if t and self.ready.wait(t / 1000):
            self.ready.clear()
            self.k += 1
            return f"msg {self.k}"
        raise flatlane._errors.with_context(
            flatlane.FlatlaneTimeoutError, flatlane.Errc.TIMEOUT, "fake timeout", "fake", "subscriber"
        )


def _wait(ep: _FakeEndpoint, timeout: Any = None) -> Any:
    return _aio.wait_op(ep, "receive", ep.op, timeout, lambda: TimeoutError("deadline"))


def test_message_taken_after_cancel_is_kept() -> None:
    ep = _FakeEndpoint()

    async def main() -> Any:
        task = asyncio.create_task(_wait(ep))
        await asyncio.sleep(0.03)  # the worker waits inside ep.op
        task.cancel()
        ep.ready.set()  # ... and takes the message before it sees the cancellation
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.05)
        assert list(_aio.state_of(ep).stashes["receive"]) == ["msg 1"]
        return await _wait(ep, 0)  # returned from the stash, no wait

    assert run(main()) == "msg 1"


def test_message_taken_after_cancel_goes_to_the_next_waiter() -> None:
    ep = _FakeEndpoint()

    async def main() -> Any:
        first = asyncio.create_task(_wait(ep))
        await asyncio.sleep(0.03)
        first.cancel()
        second = asyncio.create_task(_wait(ep, 5000))  # its job queues behind the cancelled one
        await asyncio.sleep(0)
        ep.ready.set()
        got = await second
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.sleep(0.05)
        return got, list(_aio.state_of(ep).stashes["receive"]), ep.k

    assert run(main()) == ("msg 1", [], 1)


class _QueueEndpoint:
    """A fake endpoint over a queue: receive(0) takes a queued message without waiting."""

    name = "fake-queue"
    closed = False
    _role = "subscriber"

    def __init__(self) -> None:
        self.q: "queue.Queue[str]" = queue.Queue()
        self.taken = threading.Event()
        self.deaf = False  # waits (t > 0) see nothing: the wait runs out

    def op(self, t: Any) -> str:
        try:
            if self.deaf and t:
                time.sleep(t / 1000)
                raise queue.Empty
            msg = self.q.get(timeout=t / 1000) if t else self.q.get_nowait()
        except queue.Empty:
            raise flatlane._errors.with_context(
                flatlane.FlatlaneTimeoutError, flatlane.Errc.TIMEOUT, "fake timeout", "fake", "subscriber"
            ) from None
        self.taken.set()
        return msg


def test_message_taken_after_cancel_stays_ahead_of_the_next_receive() -> None:
    # The race a CI run caught (received 4, 6, 5): a cancelled receive's worker takes message 1,
    # and before its settle runs on the loop the next receive finds message 2 queued. The next
    # receive must get message 1 first.
    ep = _QueueEndpoint()

    async def main() -> Any:
        first = asyncio.create_task(_aio.wait_op(ep, "receive", ep.op, None, lambda: TimeoutError("deadline")))
        await asyncio.sleep(0.03)  # the worker waits inside ep.op
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        ep.q.put("msg 1")
        assert ep.taken.wait(5)  # the worker has taken it; its settle cannot run: this thread holds the loop
        ep.q.put("msg 2")
        got = [await _aio.wait_op(ep, "receive", ep.op, 1000, lambda: TimeoutError("deadline"))]
        got.append(await _aio.wait_op(ep, "receive", ep.op, 0, lambda: TimeoutError("deadline")))
        return got

    assert run(main()) == ["msg 1", "msg 2"]


def test_timeout_zero_behind_a_cancelled_receive_still_tries_once() -> None:
    ep = _QueueEndpoint()
    ep.deaf = True

    async def main() -> Any:
        first = asyncio.create_task(_aio.wait_op(ep, "receive", ep.op, None, lambda: TimeoutError("deadline")))
        await asyncio.sleep(0.03)  # the worker is inside a (deaf) wait slice
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        ep.q.put("msg 1")
        # Its job is still out, so this receive queues behind it (no try on the loop thread); its
        # deadline has passed when the worker gets to it, and it still tries once.
        got = await _aio.wait_op(ep, "receive", ep.op, 0, lambda: TimeoutError("deadline"))
        with pytest.raises(flatlane.FlatlaneTimeoutError):  # nothing queued, nothing out: a plain try
            await _aio.wait_op(ep, "receive", ep.op, 0, lambda: TimeoutError("deadline"))
        return got

    assert run(main()) == "msg 1"


def test_cancel_after_the_result_arrived_keeps_it(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = _FakeEndpoint()
    tasks: List[Any] = []
    real_settle = _aio._settle

    def settle_then_cancel(job: Any, ok: bool, value: Any) -> None:
        real_settle(job, ok, value)  # the future has its result ...
        tasks[0].cancel()  # ... and the task is cancelled before it resumes

    monkeypatch.setattr(_aio, "_settle", settle_then_cancel)

    async def main() -> Any:
        tasks.append(asyncio.create_task(_wait(ep)))
        await asyncio.sleep(0.03)
        ep.ready.set()
        with pytest.raises(asyncio.CancelledError):
            await tasks[0]
        monkeypatch.setattr(_aio, "_settle", real_settle)
        return await _wait(ep, 0)

    assert run(main()) == "msg 1"


def test_many_channels_with_timeouts_and_cancellations(channel: str) -> None:
    # Three channels served by one loop whose receives keep running out (asyncio.wait_for
    # cancels them) while another thread publishes: every message arrives once, in order.
    names = [f"{channel}.{i}" for i in range(3)]
    subs = [flatlane.Subscriber(n, queue_depth=256, subscriber_mode="block_publisher") for n in names]
    pubs = [flatlane.Publisher(n) for n in names]
    try:

        def feed() -> None:
            rnd = random.Random(3)
            for k in range(100):
                for p in pubs:
                    p.send(k, timeout=5000)
                time.sleep(rnd.random() * 0.003)

        async def drain(sub: flatlane.Subscriber) -> Any:
            got: List[int] = []
            cancelled = 0
            deadline = time.monotonic() + 20
            while len(got) < 100 and time.monotonic() < deadline:
                try:
                    got.append(await asyncio.wait_for(sub.recv_async(), 0.002))
                except asyncio.TimeoutError:
                    cancelled += 1
            return got, cancelled

        async def main() -> Any:
            threading.Thread(target=feed, daemon=True).start()
            return await asyncio.gather(*(drain(s) for s in subs))

        results = run(main())
        for got, cancelled in results:
            assert got == list(range(100))
        assert sum(c for _, c in results) > 0  # receives really were cancelled on the way
    finally:
        for e in (*subs, *pubs):
            e.close()


def test_aio_is_importable_as_a_module() -> None:
    import flatlane.aio
    from flatlane.aio import call, read, receive, receive_reply

    assert flatlane.aio is _aio and receive is _aio.receive
    assert all(asyncio.iscoroutinefunction(f) for f in (call, read, receive, receive_reply))
