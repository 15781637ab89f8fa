"""The mapping outlives every view exported from it: closing or dropping an endpoint while a
memoryview, NumPy array or Frame is alive neither crashes nor raises BufferError."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import flatlane
from conftest import shm_path


def test_writer_view_survives_close_and_deletion(channel: str) -> None:
    w = flatlane.Writer(channel, mode="create")
    view = w.reserve(4096)
    arr = np.frombuffer(view, dtype=np.uint8)
    w.close()  # must not raise BufferError
    del w
    gc.collect()
    view[:5] = b"hello"  # still mapped: writes land in the (now orphaned) segment
    arr[5:10] = 1
    assert bytes(view[:10]) == b"hello\x01\x01\x01\x01\x01"


def test_reader_frame_views_survive_close_and_deletion(channel: str) -> None:
    with flatlane.Writer(channel, mode="create") as w:
        w.send(np.arange(256, dtype=np.uint16))
        r = flatlane.Reader(channel)
        frame = r.read(timeout=1000)
        data = frame.data
        arr = frame.numpy(np.uint16)
        r.close()
        del r, frame
        gc.collect()
        assert bytes(data) == np.arange(256, dtype=np.uint16).tobytes()
        assert int(arr.sum()) == sum(range(256))


def test_segment_is_unmapped_and_unlinked_when_the_last_view_goes(channel: str) -> None:
    r = flatlane.Reader(channel, mode="create")
    w = flatlane.Writer(channel)
    r.close()
    view = w.reserve(64)
    w.close()
    # The writer closed, but its view still maps the segment: the C++ endpoint (which removes
    # the name once both sides are gone) is destroyed only with the last view.
    assert shm_path(channel).exists()
    view[0] = 1
    del view
    gc.collect()
    assert not shm_path(channel).exists()


def test_calls_after_close_raise_closed(channel: str) -> None:
    w = flatlane.Writer(channel, mode="create")
    r = flatlane.Reader(channel)
    w.close()
    w.close()  # idempotent
    r.close()
    for call in (lambda: w.reserve(1), lambda: w.send(b"x"), lambda: w.commit(0), w.abort, w.stats,
                 lambda: r.read(timeout=0), lambda: r.recv(), r.stats):
        with pytest.raises(flatlane.ClosedError) as info:
            call()
        assert info.value.channel == channel
    assert w.closed and r.closed


def test_release_waits_for_live_views(channel: str) -> None:
    with flatlane.Writer(channel, mode="create") as w, flatlane.Reader(channel) as r:
        w.send(b"pinned")
        frame = r.read(timeout=1000)
        view = frame.data
        frame.release()
        assert frame.released
        # The view would read recycled ring bytes if the frame went back now: it stays held.
        assert r.held_frames == 1
        assert bytes(view) == b"pinned"
        with pytest.raises(ValueError, match="released"):
            frame.data
        del view
        assert r.held_frames == 0
        frame.release()  # idempotent


def test_dropping_a_frame_releases_it(channel: str) -> None:
    with flatlane.Writer(channel, mode="create", ring_capacity=4096) as w, flatlane.Reader(channel) as r:
        for _ in range(100):  # far more than the ring holds: only works if frames come back
            w.send(bytes(1000), timeout=1000)
            r.read(timeout=1000)
        assert r.held_frames == 0


def test_frames_held_at_close_go_to_the_next_reader(channel: str) -> None:
    """A frame released after its reader closed is abandoned, not released: the closed reader no
    longer owns the read position, and the next reader receives the frame again (as in C++)."""
    with flatlane.Writer(channel, mode="create") as w:
        w.send(b"first")
        w.send(b"second")
        r = flatlane.Reader(channel)
        frame = r.read(timeout=1000)
        assert bytes(frame.data) == b"first"
        r.close()
        r2 = flatlane.Reader(channel)
        frame.release()
        del frame, r
        gc.collect()
        assert r2.recv(timeout=1000) == b"first"
        assert r2.recv(timeout=1000) == b"second"
        r2.close()
