#!/usr/bin/python3
"""The README's demo, Python stage: demo.Ping messages from the C++ driver, rebuilt and passed on
to the C# stage (schema/examples/demo.fbs).

    demo_stage.py --gen DIR [--count N] [--prefix P] [--startup-timeout SECONDS]

DIR holds what ``flatlane-gen --lang python`` wrote for schema/examples/demo.fbs (``demo_flatlane.py``
and flatc's ``demo/`` package); the ``flatlane`` package must be importable (PYTHONPATH=build/python).
scripts/demo.sh (through examples/run_demo.sh) generates both and starts this stage.

For each of the N messages on ``demo.Demo.requests`` (a typed Puller on a work queue: flatc's reader
over the slot, no copy, after the generated verifier passed it) it builds a new Ping directly in a
loaned slot of ``demo.Demo.forward`` (a typed Pusher, through the generated ``build_Ping``):
the same seq, sent_ns and payload, ``hops`` + 1, the text with " -> Python" appended, and a trace
stamp of when it received the message. Then it exits: 0 when all N went through, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

SUFFIX = b" -> Python"  # the C++ driver checks for exactly this


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gen", required=True, help="flatlane-gen --lang python output for demo.fbs")
    p.add_argument("--count", type=int, default=11000, help="messages to forward, warm-up included")
    p.add_argument("--prefix", default="", help="segment name prefix (as the driver's --prefix)")
    p.add_argument("--startup-timeout", type=float, default=60.0, help="seconds to wait for the first message")
    args = p.parse_args()

    sys.path.insert(0, os.path.abspath(args.gen))  # flatc's modules import each other absolutely
    import flatlane
    from demo_flatlane import Demo, build_Ping

    def name(channel: type) -> str:
        spec = channel.spec  # type: ignore[attr-defined]
        return f"{args.prefix}.{spec.name}" if args.prefix else spec.name

    def build(b, msg, python_ns: int) -> int:
        """Runs once per message; b writes straight into the loaned slot of 'forward'. The generated
        build_Ping writes the text, the payload (copied from a zero-copy view of the incoming slot)
        and then the whole table in one go; flatc's PingStart/PingAdd.../PingEnd would do the same
        field by field, several times slower."""
        return build_Ping(b, seq=msg.Seq(), sent_ns=msg.SentNs(), hops=msg.Hops() + 1,
                          text=msg.Text() + SUFFIX,           # Text(): bytes copied out of the slot
                          payload=msg.PayloadAsNumpy(),       # a zero-copy view of the incoming slot
                          trace=(python_ns, 0))               # the C# stage fills in csharp_ns in place

    busy_us = []
    first = None
    try:
        with Demo.requests.Puller(name=name(Demo.requests)) as inbox, \
                Demo.forward.Pusher(name=name(Demo.forward)) as outbox:
            for i in range(args.count):
                timeout_ms = args.startup_timeout * 1000 if i == 0 else 10_000
                with inbox.recv(timeout=timeout_ms) as m:
                    python_ns = time.monotonic_ns()  # CLOCK_MONOTONIC, like C++ steady_clock
                    msg = m.msg
                    if msg.Hops() != 0 or msg.PayloadIsNone() or msg.Text() is None:
                        print(f"Python stage: message {msg.Seq()} is not a fresh ping from the driver", file=sys.stderr)
                        return 1
                    outbox.send(build, msg, python_ns)
                    busy_us.append((time.monotonic_ns() - python_ns) / 1e3)
                    if first is None:
                        first = (msg.Seq(), msg.Text().decode(), (msg.Text() + SUFFIX).decode())
    except flatlane.FlatlaneError as e:
        print(f"Python stage: {type(e).__name__}: {e}", file=sys.stderr)
        return 1

    busy_us.sort()
    print(f"Python stage: forwarded {args.count} pings, requests -> forward (typed Puller/Pusher on work queues, built in the slot)")
    print(f"  seq {first[0]}: text \"{first[1]}\" became \"{first[2]}\"")
    print(f"  receive to sent (build + send) p50 {busy_us[len(busy_us) // 2]:.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
