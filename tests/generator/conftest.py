"""Shared fixtures for the generator tests.

Run:  cd /work/main && /usr/bin/python3 -m pytest tests/generator -q
Set FLATLANE_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change (then review
the diff).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GENERATOR = REPO / "generator"
DATA = HERE / "data"
GOLDEN = HERE / "golden"
SCHEMA_DIR = REPO / "schema"
EXAMPLES = SCHEMA_DIR / "examples"
REFLECTION_FBS = DATA / "reflection.fbs"

# Import the generator from the checkout (no install needed to run the tests).
sys.path.insert(0, str(GENERATOR))

UPDATE_GOLDEN = os.environ.get("FLATLANE_UPDATE_GOLDEN") == "1"


def flatc() -> str:
    exe = shutil.which("flatc")
    if exe is None:
        pytest.skip("flatc not installed")
    return exe


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"missing golden file {path} (run with FLATLANE_UPDATE_GOLDEN=1)"
    assert actual == path.read_text(encoding="utf-8"), f"differs from golden file {path}"


def compile_bfbs(schema: Path, out_dir: Path, *includes: Path) -> Path:
    """flatc -> .bfbs exactly as the frontend runs it."""
    cmd = [flatc(), "-b", "--schema", "--bfbs-builtins", "--bfbs-comments",
           "--bfbs-filenames", "/"]
    for d in includes:
        cmd += ["-I", str(d)]
    cmd += ["-I", str(SCHEMA_DIR), "-o", str(out_dir), str(schema)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out_dir / (schema.stem + ".bfbs")


def flatc_json_dump(bfbs: Path, out_dir: Path) -> dict[str, Any]:
    """flatc's own decoding of a .bfbs (through the test-only reflection.fbs), as a dict."""
    subprocess.run([flatc(), "--json", "--strict-json", "--raw-binary", "--defaults-json",
                    "-o", str(out_dir), str(REFLECTION_FBS), "--", str(bfbs)],
                   check=True, capture_output=True)
    text = (out_dir / (bfbs.stem + ".json")).read_text()
    # flatc writes non-finite doubles as bare inf/nan even with --strict-json.
    text = re.sub(r"(?<=: )(-?)inf\b", r"\1Infinity", text)
    text = re.sub(r"(?<=: )nan\b", "NaN", text)
    return json.loads(text)


@pytest.fixture
def write_schema(tmp_path: Path) -> Callable[..., Path]:
    """write_schema("x.fbs", text) -> path; text is dedented."""

    def write(name: str, text: str) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return p

    return write


@pytest.fixture(scope="session")
def example_schema():
    """IR of schema/examples/robot_cell.fbs (loaded once)."""
    from flatlane_gen import frontend

    flatc()
    return frontend.load(str(EXAMPLES / "robot_cell.fbs"), [str(SCHEMA_DIR), str(EXAMPLES)])
