"""Shared fixtures for the Python binding tests.

The package and the C++ peer program come from the build directory named by FLATLANE_BUILD_DIR
(default: build), so ``PYTHONPATH=build/python python3 -m pytest tests/python`` and a plain
``FLATLANE_BUILD_DIR=build-py python3 -m pytest tests/python`` both work.
"""

from __future__ import annotations

import importlib
import itertools
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_DIR = Path(os.environ.get("FLATLANE_BUILD_DIR", "build"))
if not BUILD_DIR.is_absolute():
    BUILD_DIR = REPO / BUILD_DIR

try:
    import flatlane  # noqa: F401  (PYTHONPATH given)
except ImportError:
    sys.path.insert(0, str(BUILD_DIR / "python"))
    import flatlane  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parent))  # payload_pattern, peers

_names = itertools.count()


def shm_path(name: str) -> Path:
    return Path("/dev/shm") / f"flatlane.{name}"


@pytest.fixture
def channel() -> Iterator[str]:
    """A channel name unique to this test; it and every name the test derived from it (tests append
    suffixes for second channels) are removed afterwards if the test left them behind. The "x"
    ends the number, so test 7's cleanup cannot match test 77's names."""
    name = f"pytest.{os.getpid()}.{next(_names)}x"
    yield name
    for leftover in Path("/dev/shm").glob(f"flatlane.{name}*"):
        try:
            leftover.unlink()
        except FileNotFoundError:
            pass


@pytest.fixture(scope="session")
def peer_program() -> Path:
    """The C++ peer program (tests/cpp/peer_process.cpp). Missing = the build is incomplete: fail,
    never skip, so interop is not silently untested."""
    path = BUILD_DIR / "tests" / "cpp" / "flatlane_peer_process"
    if not path.exists():
        pytest.fail(f"{path} not found: build the flatlane_peer_process target (FLATLANE_BUILD_DIR={BUILD_DIR})")
    return path


def generate_python(out: Path, schema: Path) -> Path:
    """``flatlane-gen --lang python`` of this checkout for ``schema`` into ``out``, which goes on
    sys.path (flatc's modules import each other absolutely)."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "generator"))
    r = subprocess.run([sys.executable, "-m", "flatlane_gen", "--lang", "python", "-o", str(out), str(schema)],
                       capture_output=True, text=True, env=env, check=False)
    assert r.returncode == 0, r.stderr
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    return out


@pytest.fixture(scope="session")
def gen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/cpp/schema/typed_test.fbs generated once for the session (the typed tests' channels)."""
    return generate_python(tmp_path_factory.mktemp("typed_gen"), REPO / "tests" / "cpp" / "schema" / "typed_test.fbs")


@pytest.fixture(scope="session")
def gen(gen_dir: Path) -> ModuleType:
    """The generated ``typed_test_flatlane`` module."""
    return importlib.import_module("typed_test_flatlane")
