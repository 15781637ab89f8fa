"""Every runtime error code maps to a FlatlaneError subclass with context in its message."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import flatlane
from flatlane import _native
from flatlane._errors import ERROR_CLASSES, Errc, make_error
from conftest import shm_path
from peers import child_env


def test_python_errc_mirrors_the_runtime() -> None:
    # The C++ to_string knows exactly the codes 0..N-1; N is the first unknown one.
    for code in Errc:
        assert _native.errc_name(int(code)) != "unknown error", code
    assert _native.errc_name(len(Errc)) == "unknown error"


@pytest.mark.parametrize("code", [c for c in Errc if c is not Errc.OK])
def test_every_code_maps_to_a_subclass(code: Errc) -> None:
    assert code in ERROR_CLASSES
    exc = make_error(int(code), "flatlane: something about 'chan'", "chan", "reader")
    assert isinstance(exc, flatlane.FlatlaneError)
    assert type(exc) is ERROR_CLASSES[code]
    assert (exc.errc, exc.channel, exc.role, str(exc)) == (code, "chan", "reader", "flatlane: something about 'chan'")


def test_writer_timeout_is_buffer_full() -> None:
    exc = make_error(int(Errc.TIMEOUT), "m", "c", "writer")
    assert isinstance(exc, flatlane.BufferFullError)
    assert isinstance(exc, flatlane.FlatlaneTimeoutError) and isinstance(exc, TimeoutError)


def test_builtin_bases() -> None:
    assert issubclass(flatlane.ChannelNotFoundError, FileNotFoundError)
    assert issubclass(flatlane.ChannelPermissionError, PermissionError)
    assert issubclass(flatlane.PeerDeadError, ConnectionError)
    assert issubclass(flatlane.InvalidArgumentError, ValueError)
    assert issubclass(flatlane.TypeMismatchError, flatlane.SchemaMismatchError)


def test_not_found(channel: str) -> None:
    with pytest.raises(flatlane.ChannelNotFoundError) as info:
        flatlane.Reader(channel, mode="open")
    assert info.value.errc is Errc.NOT_FOUND
    assert info.value.channel == channel and channel in str(info.value)


def test_type_mismatch(channel: str) -> None:
    with flatlane.Writer(channel, mode="create", type_name="robot.Command", type_hash=0x1234):
        with pytest.raises(flatlane.TypeMismatchError) as info:
            flatlane.Reader(channel, mode="open", type_name="robot.State", type_hash=0x9999)
        assert "robot.Command" in str(info.value)
        # Same type: accepted; no type asked for: accepted.
        flatlane.Reader(channel, mode="open", type_name="robot.Command", type_hash=0x1234).close()


def test_busy_and_exists(channel: str) -> None:
    with flatlane.Writer(channel, mode="create"):
        with pytest.raises(flatlane.ChannelBusyError, match="live writer"):
            flatlane.Writer(channel, mode="open")
        with pytest.raises(flatlane.ChannelExistsError):
            flatlane.Reader(channel, mode="create")


def test_invalid_arguments(channel: str) -> None:
    with pytest.raises(flatlane.InvalidArgumentError, match="channel name"):
        flatlane.Writer("no spaces allowed")
    with pytest.raises(flatlane.InvalidArgumentError):
        flatlane.Writer(channel, ring_capacity=3 << 50)
    with pytest.raises(ValueError, match="timeout"):
        with flatlane.Writer(channel, mode="create") as w:
            w.reserve(1, timeout=-1)


def test_not_a_flatlane_segment(channel: str) -> None:
    shm_path(channel).write_bytes(b"\0" * 8192)
    with pytest.raises(flatlane.SchemaMismatchError) as info:
        flatlane.Reader(channel, mode="open")
    assert info.value.errc is Errc.NOT_FLATLANE


def test_truncated_segment(channel: str) -> None:
    shm_path(channel).write_bytes(b"FLATLANE")
    with pytest.raises(flatlane.CorruptSegmentError) as info:
        flatlane.Reader(channel, mode="open")
    assert info.value.errc is Errc.TRUNCATED


def test_message_too_large(channel: str) -> None:
    with flatlane.Writer(channel, mode="create", ring_capacity=1 << 16) as w:
        with pytest.raises(flatlane.MessageTooLargeError, match=str(w.max_frame_payload)):
            w.reserve(w.max_frame_payload + 1)
        with flatlane.Reader(channel, max_message_size=40_000) as r:
            w.send(bytes(50_000), timeout=1000)  # two chunks, fits the ring
            with pytest.raises(flatlane.MessageTooLargeError, match="max_message_size"):
                r.recv(timeout=1000)
            w.send(b"next")
            assert r.recv(timeout=1000) == b"next"  # the refused message was skipped


@pytest.mark.parametrize("wait", ["busy_spin", "spin_then_sleep", "blocking"])
def test_read_timeout_is_prompt(channel: str, wait: str) -> None:
    with flatlane.Writer(channel, mode="create"), flatlane.Reader(channel, wait=wait) as r:
        t0 = time.monotonic()
        with pytest.raises(flatlane.FlatlaneTimeoutError) as info:
            r.read(timeout=30)
        elapsed = time.monotonic() - t0
        assert 0.029 <= elapsed < 0.5, elapsed
        assert "30 ms" in str(info.value) and not isinstance(info.value, flatlane.BufferFullError)
        t0 = time.monotonic()
        with pytest.raises(flatlane.FlatlaneTimeoutError):
            r.recv(timeout=0)
        assert time.monotonic() - t0 < 0.05


def test_reserve_on_full_ring_raises_buffer_full(channel: str) -> None:
    with flatlane.Writer(channel, mode="create", ring_capacity=4096) as w, flatlane.Reader(channel):
        while True:
            try:
                w.send(bytes(500), timeout=0)
            except flatlane.BufferFullError:
                break
        t0 = time.monotonic()
        with pytest.raises(flatlane.BufferFullError) as info:
            w.reserve(500, timeout=25)
        assert 0.024 <= time.monotonic() - t0 < 0.5
        assert info.value.role == "writer" and "no ring space within 25 ms" in str(info.value)


def test_peer_closed_after_drain(channel: str) -> None:
    r = flatlane.Reader(channel, mode="create")
    with flatlane.Writer(channel) as w:
        w.send(b"last words")
    assert r.recv(timeout=1000) == b"last words"  # everything sent is read first
    with pytest.raises(flatlane.PeerClosedError) as info:
        r.recv(timeout=1000)
    assert "writer closed" in str(info.value)
    r.close()


def test_permission_denied(channel: str) -> None:
    with flatlane.Writer(channel, mode="create", permissions=0o600):
        if os.geteuid() != 0:
            os.chmod(shm_path(channel), 0o000)
            with pytest.raises(flatlane.ChannelPermissionError):
                flatlane.Reader(channel, mode="open")
            return
        # root ignores file modes: open it from a child process running as nobody instead.
        code = (
            "import flatlane, sys\n"
            "try:\n"
            f"    flatlane.Reader({channel!r}, mode='open')\n"
            "except flatlane.ChannelPermissionError as e:\n"
            "    print('denied', e.errc.name, e.channel)\n"
            "    sys.exit(0)\n"
            "sys.exit(1)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=lambda: os.setuid(65534),
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["denied", "PERMISSION_DENIED", channel]
