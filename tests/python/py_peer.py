"""A Python endpoint in its own process, for the multi-process tests and the benchmark's peers.

    py_peer.py sendmsg CHANNEL COUNT SEED MINSIZE MAXSIZE   Writer (opens): send COUNT pattern messages
    py_peer.py recvmsg CHANNEL COUNT SEED MINSIZE MAXSIZE   Reader (opens): recv and verify COUNT messages
    py_peer.py stream  CHANNEL                              Writer (opens): 64-byte frames until killed
    py_peer.py writeframes CHANNEL COUNT SEED MAXSIZE       Writer (opens): COUNT frames, sizes and bytes from (seed, seq)
    py_peer.py readframes  CHANNEL COUNT SEED MAXSIZE       Reader (opens): read and check COUNT such frames in place

Prints "ready <pid>" once attached, "done <n> <last_id>" at the end; exit 3 on a bad payload.
"""

from __future__ import annotations

import os
import sys

import flatlane
from payload_pattern import check_message, message, message_size, payload, payload_size


def say(text: str) -> None:
    os.write(1, (text + "\n").encode())


def main(argv: list) -> int:
    mode, channel = argv[1], argv[2]
    if mode == "sendmsg":
        count, seed, lo, hi = (int(a) for a in argv[3:7])
        with flatlane.Writer(channel, mode="open") as w:
            say(f"ready {os.getpid()}")
            for k in range(count):
                w.send(message(seed, k, message_size(seed, k, lo, hi)), timeout=10_000)
            say(f"done {count} {count - 1}")
            # Stay attached until the reader has everything: closing early is fine too (the
            # reader drains before PeerClosedError), but this keeps the test about data.
        return 0
    if mode == "recvmsg":
        count, seed, lo, hi = (int(a) for a in argv[3:7])
        with flatlane.Reader(channel, mode="open") as r:
            say(f"ready {os.getpid()}")
            for k in range(count):
                got = check_message(seed, r.recv(timeout=10_000), lo, hi)
                if got != k:
                    sys.stderr.write(f"py_peer recvmsg: message {k} came back as {got}\n")
                    return 3
            say(f"done {count} {count - 1}")
        return 0
    if mode == "writeframes":
        count, seed, hi = (int(a) for a in argv[3:6])
        with flatlane.Writer(channel, mode="open") as w:
            say(f"ready {os.getpid()}")
            for seq in range(1, count + 1):  # a fresh writer's frames are numbered from 1
                n = payload_size(seed, seq, hi)
                w.reserve(n, timeout=10_000)[:] = payload(seed, seq, n)
                w.commit(n)
            say(f"done {count} {count}")
        return 0
    if mode == "readframes":
        count, seed, hi = (int(a) for a in argv[3:6])
        with flatlane.Reader(channel, mode="open") as r:
            say(f"ready {os.getpid()}")
            for k in range(1, count + 1):
                with r.read(timeout=10_000) as f:
                    n = len(f)
                    if f.seq != k or n != payload_size(seed, f.seq, hi) or f.data != payload(seed, f.seq, n):
                        sys.stderr.write(f"py_peer readframes: frame {k} came as seq {f.seq}, {n} bytes, or its bytes differ\n")
                        return 3
            say(f"done {count} {count}")
        return 0
    if mode == "stream":
        with flatlane.Writer(channel, mode="open") as w:
            say(f"ready {os.getpid()}")
            block = bytes(range(64))
            while True:
                w.send(block)
    sys.stderr.write(f"unknown mode {mode}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
