"""asyncio on generated typed endpoints (tests/cpp/schema/typed_test.fbs): one event loop serving
typed topics, a work queue, a service and an in-place duplex channel at once while another thread
sends; awaitable calls; cancellation that loses and duplicates nothing; ``async for`` ending when
the peers leave; verification on the awaitable path."""

from __future__ import annotations

import asyncio
import random
import threading
from types import ModuleType
from typing import Any, List

import numpy as np
import pytest

import flatlane
from typed_content import blob_bytes, checksum

def run(coro: Any, timeout: float = 30.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def test_one_loop_serves_typed_topic_work_queue_service_and_duplex(gen: ModuleType, channel: str) -> None:
    samples, blobs, calls, inverts = 200, 20, 50, 50
    sub = gen.Samples.samples.Subscriber(name=channel + "a", mode="create")
    pull = gen.Bulk.blobs.Puller(name=channel + "b", mode="create")
    server = gen.Calc.Add.Server(name=channel + "c", mode="create")
    dserver = gen.Inplace.invert.Server(name=channel + "d", mode="create")
    errors: List[BaseException] = []
    sums: List[int] = []
    inverted: List[bool] = []

    def sender() -> None:  # a plain thread: every send and call here waits on the loop's side
        try:
            with gen.Samples.samples.Publisher(name=channel + "a") as pub, \
                    gen.Bulk.blobs.Pusher(name=channel + "b") as push, \
                    gen.Calc.Add.Client(name=channel + "c") as client, \
                    gen.Inplace.invert.Client(name=channel + "d") as dclient:
                for i in range(max(samples, blobs, calls, inverts)):
                    if i < samples:
                        pub.send(gen.build_Sample, i, f"s{i}", (1.0, 2.0, 3.0), np.arange(4, dtype=np.float32),
                                 timeout=10_000)
                    if i < blobs:
                        data = blob_bytes(i, 3000 * i)
                        push.send(gen.build_Blob, i, data, checksum(data), timeout=10_000)
                    if i < calls:
                        with client.call(gen.build_AddRequest, i, 1000, timeout=10_000) as rep:
                            sums.append(rep.msg.Sum())
                    if i < inverts:
                        dclient.send(gen.build_Blob, i, bytes([i]) * 100, 0)
                        with dclient.receive(timeout=10_000) as rep:
                            inverted.append(bool(np.all(rep.msg.DataAsNumpy() == (~np.uint8(i)))))
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    async def topic() -> List[int]:
        got = []
        while len(got) < samples:
            async with _held(await sub.recv_async(timeout=10_000)) as m:
                assert m.msg.Label() == f"s{m.msg.Id()}".encode() and m.zero_copy
                got.append(m.msg.Id())
        return got

    async def work() -> List[int]:
        got = []
        for _ in range(blobs):
            with await pull.recv_async(timeout=10_000) as m:
                bid = m.msg.Id()
                assert m.msg.DataLength() == 3000 * bid and m.msg.Checksum() == checksum(m.msg.DataAsNumpy() if bid else np.zeros(0, np.uint8))
                got.append(bid)
        return got

    async def serve() -> int:
        for _ in range(calls):
            with await server.receive_async(timeout=10_000) as req:
                server.reply(req, gen.build_AddReply, req.msg.A() + req.msg.B())
        return calls

    async def invert() -> int:
        for _ in range(inverts):
            call = await dserver.receive_async(timeout=10_000)
            data = call.numpy_view("data")
            np.invert(data, out=data)
            del data
            dserver.respond(call)
        return inverts

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    try:
        async def everything() -> List[Any]:
            return await asyncio.gather(topic(), work(), serve(), invert())

        got = run(everything())
    finally:
        t.join(30)
        for ep in (sub, pull, server, dserver):
            ep.close()
    assert not errors, errors
    assert got[0] == list(range(samples)) and got[1] == list(range(blobs))
    assert sums == [i + 1000 for i in range(calls)] and inverted == [True] * inverts


class _held:
    """``async with`` for a received message (release at the end), as ``with`` does."""

    def __init__(self, m: Any) -> None:
        self.m = m

    async def __aenter__(self) -> Any:
        return self.m

    async def __aexit__(self, *exc: Any) -> None:
        self.m.release()


def test_call_async_while_the_server_runs_in_a_thread(gen: ModuleType, channel: str) -> None:
    with gen.Calc.Add.Server(name=channel) as server, gen.Calc.Add.Client(name=channel) as client:
        def serve() -> None:
            for _ in range(20):
                with server.receive(timeout=10_000) as req:
                    server.reply(req, gen.build_AddReply, req.msg.A() * req.msg.B())

        t = threading.Thread(target=serve, daemon=True)
        t.start()

        async def calls() -> List[int]:
            out = []
            for i in range(20):
                with await client.call_async(gen.build_AddRequest, i, 3, timeout=10_000) as rep:
                    out.append(rep.msg.Sum())
            return out

        assert run(calls()) == [3 * i for i in range(20)]
        t.join(10)


def test_cancelled_typed_receives_lose_and_duplicate_nothing(gen: ModuleType, channel: str) -> None:
    """Sends race with cancellations of the awaiting tasks: every message arrives once, in order."""
    count = 150
    rng = random.Random(7)
    with gen.Samples.samples.Subscriber(name=channel, mode="create") as sub, \
            gen.Samples.samples.Publisher(name=channel) as pub:

        async def main() -> List[int]:
            got: List[int] = []
            loop = asyncio.get_running_loop()
            for i in range(count):
                task = asyncio.ensure_future(sub.recv_async(timeout=10_000))
                await asyncio.sleep(rng.choice([0, 0, 0.0005, 0.002]))
                # From another thread, as a peer would: the worker may take it at any moment.
                await loop.run_in_executor(None, lambda i=i: pub.send(gen.build_Sample, i, "x"))
                if rng.random() < 0.5:
                    task.cancel()
                try:
                    m = await task
                except asyncio.CancelledError:
                    m = await sub.recv_async(timeout=10_000)  # kept for the next receive, or still queued
                with m:
                    got.append(m.msg.Id())
            return got

        assert run(main(), timeout=60) == list(range(count))
        with pytest.raises(flatlane.FlatlaneTimeoutError):
            sub.recv(timeout=0)


def test_async_for_ends_when_the_publisher_leaves(gen: ModuleType, channel: str) -> None:
    with gen.Samples.samples.Subscriber(name=channel, mode="create") as sub:
        with gen.Samples.samples.Publisher(name=channel) as pub:
            for i in range(5):
                pub.send(gen.build_Sample, i, "y")

        async def drain() -> List[int]:
            out = []
            async for m in sub:
                with m:
                    out.append(m.msg.Id())
            return out

        assert run(drain()) == list(range(5))


def test_awaitable_receive_verifies_and_times_out(gen: ModuleType, channel: str) -> None:
    sample = gen.MESSAGES["fltest.Sample"]
    with flatlane.TopicPublisher(channel, type_name=sample.type_name, type_hash=sample.type_hash) as raw, \
            gen.Samples.samples.Subscriber(name=channel) as sub:
        raw.send(b"\x08\x00\x00\x00" + bytes(4) + b"\xff\xff\xff\x7f" + bytes(4))

        async def main() -> None:
            with pytest.raises(flatlane.CorruptMessageError, match=r"fltest\.Sample: vtable at"):
                await sub.recv_async(timeout=1000)
            with pytest.raises(flatlane.FlatlaneTimeoutError, match=r"recv_async\(\).*within 30 ms"):
                await sub.recv_async(timeout=30)

        run(main())
        assert sub.stats().rejected == 1
