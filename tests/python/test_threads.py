"""The GIL is released while a call waits, and endpoints stay consistent across threads."""

from __future__ import annotations

import threading
import time
from typing import List

import pytest

import flatlane


@pytest.mark.parametrize("wait", ["busy_spin", "spin_then_sleep", "blocking"])
def test_python_thread_runs_while_another_blocks_in_read(channel: str, wait: str) -> None:
    with flatlane.Writer(channel, mode="create") as w, flatlane.Reader(channel, wait=wait) as r:
        got: List[bytes] = []
        t = threading.Thread(target=lambda: got.append(r.recv(timeout=10_000)))
        t.start()
        # If read() kept the GIL this loop could not run until it returned (10 s).
        count = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.2:
            count += 1
        assert count > 10_000
        assert t.is_alive() and not got
        w.send(b"wake up")
        t.join(5)
        assert got == [b"wake up"]


def test_python_thread_runs_while_writer_waits_for_space(channel: str) -> None:
    with flatlane.Writer(channel, mode="create", ring_capacity=4096, wait="blocking") as w, flatlane.Reader(
        channel
    ) as r:
        while True:
            try:
                w.send(bytes(1000), timeout=0)
            except flatlane.BufferFullError:
                break
        done = threading.Event()

        def send_blocked() -> None:
            w.send(b"A" * 1000, timeout=10_000)  # as large as the frames that filled the ring
            done.set()

        t = threading.Thread(target=send_blocked)
        t.start()
        time.sleep(0.1)  # runs only because send() released the GIL
        assert not done.is_set()
        while True:  # drain: the blocked send gets its space
            data = r.recv(timeout=2000)
            if data == b"A" * 1000:
                break
        t.join(5)
        assert done.is_set()


def test_close_from_another_thread_interrupts_a_blocked_read(channel: str) -> None:
    with flatlane.Writer(channel, mode="create"):
        r = flatlane.Reader(channel, wait="blocking")
        errors: List[BaseException] = []

        def blocked() -> None:
            try:
                r.read()  # forever
            except BaseException as e:  # noqa: BLE001  (recorded for the assertion)
                errors.append(e)

        t = threading.Thread(target=blocked)
        t.start()
        time.sleep(0.1)
        t0 = time.monotonic()
        r.close()
        t.join(5)
        assert not t.is_alive() and time.monotonic() - t0 < 1.0
        assert len(errors) == 1 and isinstance(errors[0], flatlane.ClosedError)


def test_frame_released_by_another_thread_while_read_blocks(channel: str) -> None:
    """A worker thread gives frames back while the reading thread is blocked in read(): the
    release is handed to the reading thread (which holds the endpoint), and the writer gets its
    space without waiting for the read to time out."""
    with flatlane.Writer(channel, mode="create", ring_capacity=4096) as w, flatlane.Reader(channel) as r:
        held = []
        while True:
            try:
                w.send(bytes(1000), timeout=0)
            except flatlane.BufferFullError:
                break
            held.append(r.read(timeout=1000))
        got: List[bytes] = []
        reader = threading.Thread(target=lambda: got.append(r.recv(timeout=10_000)))
        reader.start()
        time.sleep(0.1)  # the reader is now blocked on an empty ring, holding the endpoint
        t0 = time.monotonic()
        worker = threading.Thread(target=lambda: [f.release() for f in held])
        worker.start()
        worker.join(5)
        assert r.held_frames == 0
        # As large as the frames that filled the ring: fits only once the queued releases are done.
        w.send(b"B" * 1000, timeout=5000)
        reader.join(5)
        assert got == [b"B" * 1000]
        assert time.monotonic() - t0 < 2.0  # one wait slice (50 ms), not the 10 s timeout


def test_concurrent_senders_are_serialised(channel: str) -> None:
    with flatlane.Writer(channel, mode="create", ring_capacity=8192) as w, flatlane.Reader(channel) as r:
        per_thread = 300

        def send(tag: int) -> None:
            for i in range(per_thread):
                w.send(bytes([tag]) * 200 + i.to_bytes(4, "little"), timeout=10_000)

        threads = [threading.Thread(target=send, args=(t,)) for t in range(3)]
        for t in threads:
            t.start()
        last = {0: -1, 1: -1, 2: -1}
        for _ in range(3 * per_thread):
            msg = r.recv(timeout=10_000)
            tag, i = msg[0], int.from_bytes(msg[200:], "little")
            assert msg[:200] == bytes([tag]) * 200
            assert i == last[tag] + 1  # per-thread order kept, no torn messages
            last[tag] = i
        for t in threads:
            t.join(5)
