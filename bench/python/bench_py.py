#!/usr/bin/env python3
"""Python one-way latency: Flatlane beside multiprocessing.Pipe and pyzmq ipc://, same run.

Ping-pong between two processes over two channels (A->B, B->A) with a raw 64-byte payload; the
one-way latency of a round trip is half its time. Flatlane is measured with busy-poll
(WaitStrategy.BUSY_SPIN: the waiting call spins inside C++ with the GIL released) and blocking
(WaitStrategy.BLOCKING: futex sleep) waits, on the zero-copy path (reserve/commit, read/release).

The typed cases do the same with generated endpoints (flatlane.typed) on bench/schema/bench.fbs:
a `Tick {seq, payload:[ubyte]}` whose FlatBuffer is 64 bytes, built in the frame on each side and
read in place after the generated verifier passed it (the same message as the C++ bench's typed
cases). "typed" builds with the generated `build_Tick` (one struct.pack_into per table); "typed,
flatc Builder API" with flatc's TickStart/TickAdd.../TickEnd on the same frame builder. The
schema is generated into a temporary directory at start.

The untyped cases use flatlane.Publisher/Subscriber (two topics; busy_spin and blocking waits):
a small dict (pickle), raw 64-byte bytes (zero-copy view on receipt) and a 1 MiB float64 NumPy
array (copied once into the slot, received as a view); each beside multiprocessing.Pipe and pyzmq
ipc:// moving the same object the same way (dict: pickled by Pipe.send / send_pyobj; array: its
buffer, received into np.frombuffer). The echoing child re-sends what it received.

Throughput: one producer process sends as fast as it can, this process receives and counts
(64-byte messages; the clock runs from the first message received to the last): a raw Flatlane
channel (reserve/fill/commit, read/release), the typed Tick over a generated topic (built with
build_Tick, verified on receipt), multiprocessing.Pipe and pyzmq PUSH/PULL over ipc://.

    PYTHONPATH=build/python /usr/bin/python3 bench/python/bench_py.py [--iterations N] [--json FILE]
        [--only SUBSTRING ...] [--tp-messages N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

import flatlane

PAYLOAD = 64
WARMUP = 2000


def percentiles(rtts_ns: List[int]) -> Dict[str, float]:
    """One-way latency percentiles in microseconds (half the round trip)."""
    s = sorted(rtts_ns)

    def at(q: float) -> float:
        return s[min(len(s) - 1, int(q * len(s)))] / 2 / 1000

    return {"p50_us": at(0.50), "p99_us": at(0.99), "p99.9_us": at(0.999), "n": len(s)}


# --- Flatlane --------------------------------------------------------------------------------------


def flatlane_child(strategy: str, ping: str, pong: str, iterations: int) -> None:
    """Echoes every frame of `ping` back on `pong`, zero copy on both sides."""
    r = flatlane.Reader(ping, mode="open", wait=strategy)
    w = flatlane.Writer(pong, mode="open", wait=strategy)
    os.write(1, b"ready\n")
    for _ in range(iterations):
        f = r.read()
        v = w.reserve(PAYLOAD)
        v[:] = f.data
        w.commit(PAYLOAD)
        f.release()
    w.close()
    r.close()


def bench_flatlane(strategy: str, iterations: int) -> Dict[str, float]:
    tag = f"bench.py.{os.getpid()}.{strategy}"
    ping, pong = tag + ".ping", tag + ".pong"
    w = flatlane.Writer(ping, mode="create", ring_capacity=1 << 16, wait=strategy)
    r = flatlane.Reader(pong, mode="create", ring_capacity=1 << 16, wait=strategy)
    total = WARMUP + iterations
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--child", strategy, ping, pong, str(total)],
        stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    payload = bytes(range(PAYLOAD))
    rtts: List[int] = []
    clock = time.perf_counter_ns
    for i in range(total):
        t0 = clock()
        v = w.reserve(PAYLOAD)
        v[:] = payload
        w.commit(PAYLOAD)
        f = r.read(timeout=10_000)
        f.release()
        t1 = clock()
        if i >= WARMUP:
            rtts.append(t1 - t0)
    child.wait(timeout=30)
    w.close()
    r.close()
    return percentiles(rtts)


# --- Flatlane typed (generated endpoints) -----------------------------------------------------------

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def generate_bench_schema(out: str) -> None:
    """bench.fbs -> flatc's modules + bench_flatlane.py in `out` (the checkout's generator)."""
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "generator"))
    subprocess.run([sys.executable, "-m", "flatlane_gen", "--lang", "python", "-o", out,
                    os.path.join(REPO, "bench", "schema", "bench.fbs")], check=True, env=env)


def tick_payload(size: int) -> bytes:
    """Payload bytes that make a Tick FlatBuffer exactly `size` bytes (or the nearest above)."""
    from flatbuffers.builder import Builder
    from flbench import Tick as T

    for n in range(size):
        b = Builder(0)
        vec = b.CreateByteVector(bytes(n))
        T.TickStart(b)
        T.TickAddSeq(b, 1)
        T.TickAddPayload(b, vec)
        b.Finish(T.TickEnd(b))
        if len(b.Output()) >= size:
            return bytes(range(n))
    raise ValueError(size)


def build_tick_flatc(b: Any, seq: int, payload: bytes) -> int:
    """The Tick through flatc's Python API (Builder.Prep/Place per field)."""
    from flbench import Tick as T

    vec = b.CreateByteVector(payload)
    T.TickStart(b)
    T.TickAddSeq(b, seq)
    T.TickAddPayload(b, vec)
    return T.TickEnd(b)


def tick_builder(kind: str) -> Callable[..., int]:
    if kind == "flatc":
        return build_tick_flatc
    from bench_flatlane import build_Tick
    return build_Tick


def typed_child(strategy: str, ping: str, pong: str, iterations: int, gen_dir: str, kind: str) -> None:
    """Answers every Tick on `ping` with a Tick of the same seq on `pong`, both typed."""
    sys.path.insert(0, gen_dir)
    from bench_flatlane import Bench

    build_tick = tick_builder(kind)
    payload = tick_payload(PAYLOAD)
    sub = Bench.ping.Subscriber(name=ping, mode="open", wait=strategy)
    pub = Bench.pong.Publisher(name=pong, mode="open", wait=strategy)
    os.write(1, b"ready\n")
    for _ in range(iterations):
        m = sub.recv()
        pub.send(build_tick, m.msg.Seq(), payload)
        m.release()
    pub.close()
    sub.close()


def bench_typed(strategy: str, iterations: int, gen_dir: str, kind: str = "generated") -> Dict[str, float]:
    from bench_flatlane import Bench

    build_tick = tick_builder(kind)
    tag = f"bench.py.{os.getpid()}.typed.{strategy}"
    ping, pong = tag + ".ping", tag + ".pong"
    pub = Bench.ping.Publisher(name=ping, mode="create", wait=strategy)
    sub = Bench.pong.Subscriber(name=pong, mode="create", wait=strategy)
    total = WARMUP + iterations
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--typed-child", strategy, ping, pong, str(total), gen_dir,
         kind],
        stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    payload = tick_payload(PAYLOAD)
    rtts: List[int] = []
    clock = time.perf_counter_ns
    for i in range(total):
        t0 = clock()
        pub.send(build_tick, i, payload)
        m = sub.recv(timeout=10_000)
        seq = m.msg.Seq()
        m.release()
        t1 = clock()
        assert seq == i
        if i >= WARMUP:
            rtts.append(t1 - t0)
    child.wait(timeout=30)
    pub.close()
    sub.close()
    return percentiles(rtts)


def typed_cost(gen_dir: str, n: int = 20_000) -> Dict[str, float]:
    """Per-message cost in one process: build + publish (send) + receive (verified) + release, with
    the generated builder, with it and no verification, and with flatc's API; and building alone."""
    from bench_flatlane import MESSAGES, Bench, build_Tick
    from flatbuffers.builder import Builder
    from flatlane import _fbgen

    payload = tick_payload(PAYLOAD)
    clock = time.perf_counter_ns
    out: Dict[str, float] = {}
    for key, build, verify in (("send_recv_us", build_Tick, True),
                               ("send_recv_unverified_us", build_Tick, False),
                               ("send_recv_flatc_api_us", build_tick_flatc, True)):
        name = f"bench.py.{os.getpid()}.typed.cost.{key}"
        with Bench.ping.Publisher(name=name) as pub, Bench.ping.Subscriber(name=name, verify=verify) as sub:
            t0 = clock()
            for i in range(n):
                pub.send(build, i, payload)
                sub.recv(0).release()
            out[key] = (clock() - t0) / n / 1000
    for key, build in (("generated_builder_us", build_Tick), ("stock_builder_us", build_tick_flatc)):
        t0 = clock()
        for i in range(n):
            b = Builder(128)
            _fbgen.finish(b, build(b, i, payload), None)
        out[key] = (clock() - t0) / n / 1000
    verify = MESSAGES["flbench.Tick"].verifier
    b = Builder(128)
    _fbgen.finish(b, build_Tick(b, 1, payload), None)
    data = memoryview(bytes(b.Output()))
    t0 = clock()
    for i in range(n):
        _fbgen.Verifier(data, len(data)).root(verify, "", None)
    out["verify_us"] = (clock() - t0) / n / 1000
    return out


# --- Throughput: a producer process as fast as it can, this process receives ---------------------


def tp_flatlane_producer(name: str, count: int) -> None:
    w = flatlane.Writer(name, mode="open", wait="busy_spin")
    payload = bytes(range(PAYLOAD))
    for _ in range(count):
        v = w.reserve(PAYLOAD)  # waits while the ring is full
        v[:] = payload
        w.commit(PAYLOAD)
    w.close()


def tp_typed_producer(name: str, count: int, gen_dir: str) -> None:
    sys.path.insert(0, gen_dir)
    from bench_flatlane import Bench, build_Tick

    payload = tick_payload(PAYLOAD)
    with Bench.ping.Publisher(name=name, mode="open") as pub:  # overflow block: waits for the subscriber
        for i in range(count):
            pub.send(build_Tick, i, payload)


def _rate(count: int, receive_one: Callable[[], None]) -> Dict[str, float]:
    receive_one()  # the producer has started: time from here
    t0 = time.perf_counter_ns()
    for _ in range(count - 1):
        receive_one()
    dt = (time.perf_counter_ns() - t0) / 1e9
    return {"msgs_per_s": (count - 1) / dt, "MB_per_s": (count - 1) * PAYLOAD / dt / 1e6, "n": count}


def bench_tp_flatlane(count: int) -> Dict[str, float]:
    name = f"bench.py.{os.getpid()}.tp.raw"
    r = flatlane.Reader(name, mode="create", ring_capacity=1 << 18, wait="busy_spin")
    p = multiprocessing.get_context("fork").Process(target=tp_flatlane_producer, args=(name, count))
    p.start()

    def one() -> None:
        r.read(timeout=10_000).release()

    res = _rate(count, one)
    p.join(30)
    r.close()
    return res


def bench_tp_typed(count: int, gen_dir: str) -> Dict[str, float]:
    from bench_flatlane import Bench

    name = f"bench.py.{os.getpid()}.tp.typed"
    sub = Bench.ping.Subscriber(name=name, mode="create")
    p = multiprocessing.get_context("fork").Process(target=tp_typed_producer, args=(name, count, gen_dir))
    p.start()
    seqs = [0]

    def one() -> None:
        m = sub.recv(timeout=10_000)
        seqs[0] = m.msg.Seq()
        m.release()

    res = _rate(count, one)
    assert seqs[0] == count - 1  # nothing dropped, in order to the last
    p.join(30)
    sub.close()
    return res


def tp_pipe_producer(conn, count: int) -> None:  # type: ignore[no-untyped-def]
    payload = bytes(range(PAYLOAD))
    for _ in range(count):
        conn.send_bytes(payload)


def bench_tp_pipe(count: int) -> Dict[str, float]:
    ctx = multiprocessing.get_context("fork")
    a, b = ctx.Pipe(duplex=False)
    p = ctx.Process(target=tp_pipe_producer, args=(b, count))
    p.start()
    res = _rate(count, a.recv_bytes)
    p.join(30)
    return res


def tp_zmq_producer(endpoint: str, count: int) -> None:
    import zmq

    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.connect(endpoint)
    payload = bytes(range(PAYLOAD))
    for _ in range(count):
        s.send(payload, copy=True)
    s.close(linger=-1)
    ctx.term()


def bench_tp_zmq(count: int) -> Optional[Dict[str, float]]:
    try:
        import zmq
    except ImportError:
        return None
    endpoint = f"ipc:///tmp/flatlane-bench-py-tp-{os.getpid()}.ipc"
    ctx = zmq.Context()
    s = ctx.socket(zmq.PULL)
    s.bind(endpoint)
    p = multiprocessing.get_context("fork").Process(target=tp_zmq_producer, args=(endpoint, count))
    p.start()
    res = _rate(count, lambda: s.recv(copy=True))
    p.join(30)
    s.close(linger=0)
    ctx.term()
    try:
        os.unlink(endpoint[len("ipc://") :])
    except FileNotFoundError:
        pass
    return res


# --- Flatlane untyped (flatlane.Publisher / Subscriber) --------------------------------------------

NP_BYTES = 1 << 20
UNTYPED_KINDS = ("dict", "raw64", "np1m")


def untyped_object(kind: str, i: int) -> Any:
    if kind == "dict":
        return {"seq": i, "x": 1.5, "name": "tick", "flags": [1, 2, 3]}
    if kind == "raw64":
        return bytes(range(PAYLOAD))
    import numpy as np

    return np.full(NP_BYTES // 8, float(i), dtype=np.float64)


def untyped_topic_options(kind: str, wait: str) -> Dict[str, Any]:
    extra: Dict[str, Any] = {"wait": wait}
    if kind == "np1m":
        return dict(slot_size=NP_BYTES + 64, slot_count=4, max_publishers=1, max_subscribers=2, queue_depth=4, **extra)
    return dict(slot_size=1024, slot_count=16, max_publishers=1, max_subscribers=2, queue_depth=8, **extra)


def untyped_child(kind: str, wait: str, ping: str, pong: str, iterations: int) -> None:
    """Re-sends every object received on `ping` on `pong`."""
    opts = untyped_topic_options(kind, wait)
    sub = flatlane.Subscriber(ping, mode="open", **opts)
    pub = flatlane.Publisher(pong, mode="open", **opts)
    os.write(1, b"ready\n")
    for _ in range(iterations):
        obj = sub.recv()
        pub.send(obj)
        del obj
    pub.close()
    sub.close()


def bench_untyped(kind: str, wait: str, iterations: int) -> Dict[str, float]:
    tag = f"bench.py.{os.getpid()}.untyped.{kind}.{wait}"
    ping, pong = tag + ".ping", tag + ".pong"
    opts = untyped_topic_options(kind, wait)
    sub = flatlane.Subscriber(pong, mode="create", **opts)
    pub = flatlane.Publisher(ping, mode="create", **opts)
    total = WARMUP + iterations
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--untyped-child", kind, wait, ping, pong, str(total)],
        stdout=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    while pub.subscriber_count == 0:
        time.sleep(0.001)
    objs = [untyped_object(kind, i) for i in range(2)]
    rtts: List[int] = []
    clock = time.perf_counter_ns
    for i in range(total):
        obj = objs[i & 1]
        t0 = clock()
        pub.send(obj)
        got = sub.recv(timeout=10_000)
        t1 = clock()
        if kind == "dict":
            assert got["seq"] == obj["seq"]
        elif kind == "np1m":
            assert got[0] == obj[0] and got.size == obj.size
        del got
        if i >= WARMUP:
            rtts.append(t1 - t0)
    child.wait(timeout=60)
    pub.close()
    sub.close()
    return percentiles(rtts)


# --- multiprocessing.Pipe --------------------------------------------------------------------------


def pipe_child(conn, total: int) -> None:  # type: ignore[no-untyped-def]
    for _ in range(total):
        conn.send_bytes(conn.recv_bytes())


def bench_pipe(iterations: int) -> Dict[str, float]:
    ctx = multiprocessing.get_context("fork")
    a, b = ctx.Pipe(duplex=True)
    total = WARMUP + iterations
    p = ctx.Process(target=pipe_child, args=(b, total))
    p.start()
    payload = bytes(range(PAYLOAD))
    rtts: List[int] = []
    clock = time.perf_counter_ns
    for i in range(total):
        t0 = clock()
        a.send_bytes(payload)
        a.recv_bytes()
        t1 = clock()
        if i >= WARMUP:
            rtts.append(t1 - t0)
    p.join(30)
    return percentiles(rtts)


def pipe_obj_child(conn, kind: str, total: int) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    for _ in range(total):
        if kind == "dict":
            conn.send(conn.recv())
        else:
            arr = np.frombuffer(conn.recv_bytes(), dtype=np.float64)
            conn.send_bytes(arr)


def bench_pipe_obj(kind: str, iterations: int) -> Dict[str, float]:
    """multiprocessing.Pipe moving the untyped cases' objects (dict: pickled; array: its buffer)."""
    import numpy as np

    ctx = multiprocessing.get_context("fork")
    a, b = ctx.Pipe(duplex=True)
    total = WARMUP + iterations
    p = ctx.Process(target=pipe_obj_child, args=(b, kind, total))
    p.start()
    objs = [untyped_object(kind, i) for i in range(2)]
    rtts: List[int] = []
    clock = time.perf_counter_ns
    for i in range(total):
        obj = objs[i & 1]
        t0 = clock()
        if kind == "dict":
            a.send(obj)
            got = a.recv()
        else:
            a.send_bytes(obj)
            got = np.frombuffer(a.recv_bytes(), dtype=np.float64)
        t1 = clock()
        del got
        if i >= WARMUP:
            rtts.append(t1 - t0)
    p.join(60)
    return percentiles(rtts)


# --- pyzmq ipc:// ----------------------------------------------------------------------------------


def zmq_child(endpoint: str, total: int) -> None:
    import zmq

    ctx = zmq.Context()
    s = ctx.socket(zmq.PAIR)
    s.connect(endpoint)
    for _ in range(total):
        s.send(s.recv(copy=True), copy=True)
    s.close(linger=0)
    ctx.term()


def bench_zmq(iterations: int) -> Optional[Dict[str, float]]:
    try:
        import zmq
    except ImportError:
        print("note: pyzmq not importable (Debian: python3-zmq); skipping the ZeroMQ baseline")
        return None
    endpoint = f"ipc:///tmp/flatlane-bench-py-{os.getpid()}.ipc"
    ctx = zmq.Context()
    s = ctx.socket(zmq.PAIR)
    s.bind(endpoint)
    total = WARMUP + iterations
    p = multiprocessing.get_context("fork").Process(target=zmq_child, args=(endpoint, total))
    p.start()
    payload = bytes(range(PAYLOAD))
    rtts: List[int] = []
    clock = time.perf_counter_ns
    for i in range(total):
        t0 = clock()
        s.send(payload, copy=True)
        s.recv(copy=True)
        t1 = clock()
        if i >= WARMUP:
            rtts.append(t1 - t0)
    p.join(30)
    s.close(linger=0)
    ctx.term()
    try:
        os.unlink(endpoint[len("ipc://") :])
    except FileNotFoundError:
        pass
    return percentiles(rtts)


def zmq_obj_child(endpoint: str, kind: str, total: int) -> None:
    import zmq

    ctx = zmq.Context()
    s = ctx.socket(zmq.PAIR)
    s.connect(endpoint)
    for _ in range(total):
        if kind == "dict":
            s.send_pyobj(s.recv_pyobj())
        else:
            s.send(s.recv(copy=False), copy=False)
    s.close(linger=5000)  # a zero-copy send is queued, not sent yet: linger=0 would drop the last one
    ctx.term()


def bench_zmq_obj(kind: str, iterations: int) -> Optional[Dict[str, float]]:
    """pyzmq PAIR over ipc:// moving the untyped cases' objects (dict: send_pyobj; array: its
    buffer with copy=False both ways, received into np.frombuffer)."""
    try:
        import zmq
    except ImportError:
        return None
    import numpy as np

    endpoint = f"ipc:///tmp/flatlane-bench-py-{os.getpid()}-{kind}.ipc"
    ctx = zmq.Context()
    s = ctx.socket(zmq.PAIR)
    s.setsockopt(zmq.RCVTIMEO, 20_000)  # a lost reply fails the case instead of hanging the bench
    s.bind(endpoint)
    total = WARMUP + iterations
    p = multiprocessing.get_context("fork").Process(target=zmq_obj_child, args=(endpoint, kind, total))
    p.start()
    objs = [untyped_object(kind, i) for i in range(2)]
    rtts: List[int] = []
    clock = time.perf_counter_ns
    for i in range(total):
        obj = objs[i & 1]
        t0 = clock()
        if kind == "dict":
            s.send_pyobj(obj)
            got = s.recv_pyobj()
        else:
            s.send(obj, copy=False)
            got = np.frombuffer(s.recv(copy=False).buffer, dtype=np.float64)
        t1 = clock()
        del got
        if i >= WARMUP:
            rtts.append(t1 - t0)
    p.join(60)
    s.close(linger=0)
    ctx.term()
    try:
        os.unlink(endpoint[len("ipc://") :])
    except FileNotFoundError:
        pass
    return percentiles(rtts)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        flatlane_child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--untyped-child":
        untyped_child(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--typed-child":
        typed_child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6], sys.argv[7])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=50_000, help="round trips per case (after 2000 warm-up)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--only", nargs="+", metavar="SUBSTRING",
                    help="run only the cases whose name contains one of these")
    ap.add_argument("--tp-messages", type=int, default=200_000, help="messages per throughput case")
    ap.add_argument("--np-iterations", type=int, default=0,
                    help="round trips of the 1 MiB NumPy cases (default: iterations / 10, at least 500)")
    args = ap.parse_args()
    n = args.iterations
    n_np = args.np_iterations or max(500, n // 10)
    gen_dir = tempfile.mkdtemp(prefix="flatlane-bench-py-")
    generate_bench_schema(gen_dir)
    sys.path.insert(0, gen_dir)
    cases: Dict[str, Callable[[], Optional[Dict[str, float]]]] = {
        "flatlane busy-poll (zero-copy)": lambda: bench_flatlane("busy_spin", n),
        "flatlane blocking (zero-copy)": lambda: bench_flatlane("blocking", n),
        "flatlane typed busy-poll": lambda: bench_typed("busy_spin", n, gen_dir),
        "flatlane typed blocking": lambda: bench_typed("blocking", n, gen_dir),
        "typed busy-poll, flatc Builder API": lambda: bench_typed("busy_spin", n, gen_dir, "flatc"),
        "multiprocessing.Pipe": lambda: bench_pipe(n),
        "pyzmq PAIR ipc://": lambda: bench_zmq(n),
        "untyped raw 64 B bytes busy-poll": lambda: bench_untyped("raw64", "busy_spin", n),
        "untyped raw 64 B bytes blocking": lambda: bench_untyped("raw64", "blocking", n),
        "untyped pickle dict busy-poll": lambda: bench_untyped("dict", "busy_spin", n),
        "untyped pickle dict blocking": lambda: bench_untyped("dict", "blocking", n),
        "Pipe pickle dict": lambda: bench_pipe_obj("dict", n),
        "pyzmq send_pyobj dict": lambda: bench_zmq_obj("dict", n),
        "untyped NumPy 1 MiB busy-poll": lambda: bench_untyped("np1m", "busy_spin", n_np),
        "untyped NumPy 1 MiB blocking": lambda: bench_untyped("np1m", "blocking", n_np),
        "Pipe NumPy 1 MiB (send_bytes)": lambda: bench_pipe_obj("np1m", n_np),
        "pyzmq NumPy 1 MiB (copy=False)": lambda: bench_zmq_obj("np1m", n_np),
    }
    n_tp = args.tp_messages
    tp_cases: Dict[str, Callable[[], Optional[Dict[str, float]]]] = {
        "throughput flatlane raw 64 B (zero-copy)": lambda: bench_tp_flatlane(n_tp),
        "throughput flatlane typed Tick (verified)": lambda: bench_tp_typed(n_tp, gen_dir),
        "throughput multiprocessing.Pipe 64 B": lambda: bench_tp_pipe(n_tp),
        "throughput pyzmq PUSH/PULL ipc:// 64 B": lambda: bench_tp_zmq(n_tp),
    }
    if args.only:
        cases = {k: v for k, v in cases.items() if any(o.lower() in k.lower() for o in args.only)}
        tp_cases = {k: v for k, v in tp_cases.items() if any(o.lower() in k.lower() for o in args.only)}
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {PAYLOAD}-byte payload, one-way = RTT/2, "
          f"{n} round trips per case")
    print(f"{'case':34s} {'p50 us':>9s} {'p99 us':>9s} {'p99.9 us':>9s} {'n':>7s}")
    results: Dict[str, Dict[str, float]] = {}
    for name, run in cases.items():
        res = run()
        if res is None:
            continue
        results[name] = res
        print(f"{name:34s} {res['p50_us']:9.2f} {res['p99_us']:9.2f} {res['p99.9_us']:9.2f} {res['n']:7d}",
              flush=True)
    if tp_cases:
        print(f"\n{'throughput case':44s} {'msg/s':>12s} {'MB/s':>9s} {'n':>8s}")
    for name, run in tp_cases.items():
        res = run()
        if res is None:
            continue
        results[name] = res
        print(f"{name:44s} {res['msgs_per_s']:12,.0f} {res['MB_per_s']:9.1f} {res['n']:8d}", flush=True)
    cost: Dict[str, float] = {}
    if any(k.startswith("flatlane typed") for k in cases):
        cost = typed_cost(gen_dir)
        print(f"typed per-message cost in one process (send + verified recv + release): "
              f"{cost['send_recv_us']:.2f} us; unverified {cost['send_recv_unverified_us']:.2f} us; "
              f"with flatc's Builder API {cost['send_recv_flatc_api_us']:.2f} us")
        print(f"  building one Tick alone: generated build_Tick {cost['generated_builder_us']:.2f} us, "
              f"flatc's API {cost['stock_builder_us']:.2f} us; verifying it {cost['verify_us']:.2f} us")
    shutil.rmtree(gen_dir, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"payload_bytes": PAYLOAD, "python": sys.version, "results": results, "typed_cost": cost},
                      f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
