"""A Python peer for the duplex tests (test_duplex.py), one server in its own process.

    duplex_peer.py MODE NAME COUNT [GENERATED_DIR]

Modes
    serve   answer COUNT requests (0 = until the client goes away): every byte inverted in place
    hold    receive COUNT requests and hold them unanswered, then hang (the test kills it)
    typed   serve COUNT calls of the generated fltest.Inplace.invert (typed_test.fbs, generated into
            GENERATED_DIR): Blob.data inverted and checksum rewritten, in place
Output: "ready <pid>", "done <n>", "held <n>", "end <errc> <n>" on an API error.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

import flatlane


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> int:
    mode, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "typed":
        return typed(name, count, sys.argv[4])
    server = flatlane.DuplexServer(name, mode="open")
    say(f"ready {os.getpid()}")
    held = []
    n = 0
    try:
        while count == 0 or n < count:
            try:
                req = server.receive(timeout=20_000)
            except (flatlane.PeerClosedError, flatlane.PeerDeadError):
                if count == 0:
                    break
                raise
            n += 1
            if mode == "hold":
                held.append(req)
                continue
            with req:
                a = req.numpy(dtype=np.uint8)
                np.invert(a, out=a)
                del a
                req.respond()
    except flatlane.FlatlaneError as e:
        say(f"end {e.errc.name.lower()} {n}")
        return 10 + int(e.errc)
    if mode == "hold":
        say(f"held {n}")
        while True:
            time.sleep(1)
    say(f"done {n}")
    server.close()
    return 0


def typed(name: str, count: int, gen_dir: str) -> int:
    sys.path.insert(0, gen_dir)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import typed_test_flatlane as gen  # noqa: E402
    from typed_content import checksum  # noqa: E402

    server = gen.Inplace.invert.Server(name=name, mode="open")
    say(f"ready {os.getpid()}")
    n = 0
    try:
        while n < count:
            call = server.receive(timeout=20_000)
            if call.msg.DataLength():  # an empty blob has no bytes and the default checksum 0
                data = call.numpy_view("data")
                np.invert(data, out=data)
                if not call.mutate("checksum", checksum(data)):
                    say(f"bad checksum field absent in call {call.seq}")
                    return 3
                del data
            server.respond(call)
            n += 1
    except flatlane.FlatlaneError as e:
        say(f"end {e.errc.name.lower()} {n}")
        return 10 + int(e.errc)
    say(f"done {n}")
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
