"""Child processes for the multi-process tests: the C++ peer program and a Python peer.

Both print one line per event ("ready <pid>", "done <n> <last>", "end <errc> ..."); Peer.expect
waits for a line with a deadline so a hung child fails the test instead of hanging it.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

import flatlane

PY_PEER = Path(__file__).resolve().parent / "py_peer.py"


def child_env() -> dict:
    env = dict(os.environ)
    pkg_root = str(Path(flatlane.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class Peer:
    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), bufsize=0
        )
        self._buf = b""
        self.lines: List[str] = []

    @classmethod
    def cpp(cls, program: Path, mode: str, channel: str, **kv: object) -> "Peer":
        return cls([str(program), mode, channel, *(f"{k}={v}" for k, v in kv.items())])

    @classmethod
    def python(cls, mode: str, channel: str, *args: object) -> "Peer":
        return cls([sys.executable, str(PY_PEER), mode, channel, *(str(a) for a in args)])

    def expect(self, prefix: str, timeout: float = 20.0) -> List[str]:
        """Waits for a stdout line starting with `prefix`; returns its words."""
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                text = line.decode()
                self.lines.append(text)
                if text.startswith(prefix):
                    return text.split()
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.argv}: no '{prefix}' line within {timeout}s; got {self.lines}")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise AssertionError(
                        f"{self.argv}: exited ({self.proc.wait()}) before '{prefix}'; lines {self.lines}; stderr {err}"
                    )
                self._buf += chunk

    def wait(self, timeout: float = 20.0) -> int:
        return self.proc.wait(timeout=timeout)

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stderr(self) -> str:
        return self.proc.stderr.read().decode() if self.proc.stderr else ""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()

    def __enter__(self) -> "Peer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def exit_ok(peer: Peer, timeout: float = 20.0) -> None:
    rc: Optional[int] = peer.wait(timeout)
    assert rc == 0, f"{peer.argv} exited {rc}; lines {peer.lines}; stderr {peer.stderr()}"
