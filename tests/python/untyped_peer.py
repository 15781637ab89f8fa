"""An untyped-API endpoint (flatlane.Publisher & co.) in its own interpreter, for the
multi-process tests of test_untyped.py and test_asyncio.py.

    untyped_peer.py publish   NAME COUNT CODEC      Publisher: waits for a subscriber, sends COUNT
                                                   objects (see `item`), alternating codecs/arrays
    untyped_peer.py subscribe NAME COUNT            Subscriber: receives COUNT objects, checks them
    untyped_peer.py pull      NAME                  Puller: "got <k>" per job until None arrives
    untyped_peer.py reply     NAME                  Replier: answers {"echo": x, "pid": pid}, an
                                                   ndarray with 2*array; "hang": no answer, sleeps
    untyped_peer.py hold      NAME                  Subscriber: receives one ndarray, keeps the view,
                                                   prints "holding", sleeps until killed
    untyped_peer.py multi     NAME1,NAME2,... COUNT  Publisher per name: COUNT objects on each, once
                                                   each topic has a subscriber

Prints "ready <pid>" once attached and "done <n>" at the end; exit 3 on a wrong object.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, List

import numpy as np

import flatlane


def say(text: str) -> None:
    os.write(1, (text + "\n").encode())


def item(k: int) -> Any:
    """The k-th object of a stream: a dict, an ndarray or bytes."""
    if k % 3 == 0:
        return {"k": k, "text": f"message {k}", "values": [k, k * 2.5]}
    if k % 3 == 1:
        return np.arange(k, k + 64, dtype=np.float64).reshape(8, 8)
    return bytes([k % 256]) * (k % 50 + 1)


def check(k: int, got: Any) -> bool:
    want = item(k)
    if isinstance(want, dict):
        return got == want
    if isinstance(want, np.ndarray):
        return isinstance(got, np.ndarray) and got.dtype == want.dtype and bool((got == want).all())
    return isinstance(got, memoryview) and bytes(got) == want


def wait_subscribers(pubs: List[flatlane.Publisher], deadline_s: float = 20.0) -> None:
    end = time.monotonic() + deadline_s
    while any(p.subscriber_count == 0 for p in pubs):
        if time.monotonic() > end:
            raise SystemExit("no subscriber attached")
        time.sleep(0.005)


def main(argv: List[str]) -> int:
    mode, name = argv[1], argv[2]
    if mode == "publish":
        count, codec = int(argv[3]), argv[4]
        with flatlane.Publisher(name, codec=codec, slot_size=4096) as pub:
            say(f"ready {os.getpid()}")
            wait_subscribers([pub])
            for k in range(count):
                pub.send(item(k), timeout=10_000)
            say(f"done {count}")
            time.sleep(0.2)  # let the subscriber take the last ones before we detach
        return 0
    if mode == "subscribe":
        count = int(argv[3])
        with flatlane.Subscriber(name, slot_size=4096, queue_depth=64, subscriber_mode="block_publisher") as sub:
            say(f"ready {os.getpid()}")
            for k in range(count):
                got = sub.recv(timeout=10_000)
                if not check(k, got):
                    say(f"bad {k} {got!r}")
                    return 3
                del got
            say(f"done {count}")
        return 0
    if mode == "pull":
        n = 0
        with flatlane.Puller(name) as q:
            say(f"ready {os.getpid()}")
            while True:
                job = q.recv(timeout=20_000)
                if job is None:
                    break
                say(f"got {job}")
                n += 1
        say(f"done {n}")
        return 0
    if mode == "reply":
        n = 0
        with flatlane.Replier(name, max_request=1 << 16, reply_ring=1 << 18) as rep:
            say(f"ready {os.getpid()}")
            for req in rep:
                if isinstance(req, np.ndarray):
                    rep.send(req * 2)
                elif req == "hang":
                    say("hanging")
                    time.sleep(60)  # never answers: the test kills us here
                elif req == "stop":
                    rep.send("stopping")
                    break
                else:
                    rep.send({"echo": req, "pid": os.getpid()})
                n += 1
        say(f"done {n}")
        return 0
    if mode == "hold":
        with flatlane.Subscriber(name, slot_size=1 << 16) as sub:
            say(f"ready {os.getpid()}")
            held = [sub.recv(timeout=20_000) for _ in range(int(argv[3]) if len(argv) > 3 else 1)]
            say(f"holding {len(held)} {held[0].sum()}")
            time.sleep(60)
        return 0
    if mode == "multi":
        names, count = name.split(","), int(argv[3])
        pubs = [flatlane.Publisher(n) for n in names]
        say(f"ready {os.getpid()}")
        wait_subscribers(pubs)
        for k in range(count):
            for i, p in enumerate(pubs):
                p.send({"topic": i, "k": k}, timeout=10_000)
        say(f"done {count}")
        time.sleep(0.5)
        for p in pubs:
            p.close()
        return 0
    say(f"unknown mode {mode}")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
