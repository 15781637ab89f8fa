"""The README's demo (scripts/demo.sh -> examples/run_demo.sh) with real C++, Python and C#
processes, so that it cannot rot silently.

Needs the build named by FLATLANE_BUILD_DIR (the demo driver, the Python package) and the .NET 10
SDK: a missing piece fails the test, it is never skipped, because the README promises the demo.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BUILD_DIR, REPO, shm_path

RUN_DEMO = REPO / "examples" / "run_demo.sh"
DRIVER = BUILD_DIR / "examples" / "cpp" / "flatlane_demo_driver"
STAGE_DLL = REPO / "examples" / "csharp" / "DemoStage" / "bin" / "Release" / "net10.0" / "DemoStage.dll"


def _require_demo_pieces() -> None:
    if shutil.which("dotnet") is None:
        pytest.fail("dotnet not found on PATH: the README's demo needs the .NET 10 SDK for its C# stage")
    if not DRIVER.exists():
        pytest.fail(f"{DRIVER} not found: build the examples (FLATLANE_BUILD_DIR={BUILD_DIR})")


def test_three_languages_round_trip() -> None:
    """run_demo.sh: generate, build the C# stage, run the three processes; every reply is checked
    by the driver (seq, hops, text, payload, trace stamps)."""
    _require_demo_pieces()
    prefix = f"pytest-demo-{os.getpid()}"
    r = subprocess.run(
        [str(RUN_DEMO), "--build-dir", str(BUILD_DIR), "--count", "300", "--warmup", "30", "--prefix", prefix],
        capture_output=True, text=True, timeout=240,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    for line in (
        'Python rebuilt in a slot:      text "ping 30 from C++ -> Python", hops 1',
        "C#     rebuilt in a slot:      hops 2",
        "round trip ",
        "hop C++ -> Python",
        "hop Python -> C#",
        "hop C# -> C++",
        "Python stage: forwarded 330 pings",
        "C# stage: rebuilt 330 pings",
        "demo: OK",
    ):
        assert line in out, f"missing {line!r} in:\n{out}"
    assert not list(Path("/dev/shm").glob(f"flatlane.{prefix}.*")), "segments left behind"


def test_driver_fails_without_its_stages() -> None:
    """No Python or C# stage: the driver reports the missing reply and exits 1 (no hang, no 0)."""
    _require_demo_pieces()
    prefix = f"pytest-demo-{os.getpid()}"
    try:
        r = subprocess.run(
            [str(DRIVER), "--count", "5", "--warmup", "0", "--prefix", prefix, "--startup-timeout", "1"],
            capture_output=True, text=True, timeout=60,
        )
    finally:
        for ch in ("requests", "forward", "replies"):
            shm_path(f"{prefix}.demo.Demo.{ch}").unlink(missing_ok=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "no reply to ping 0: timeout" in r.stderr


def test_csharp_stage_refuses_another_type(tmp_path: Path) -> None:
    """The C# stage attaches with the type identity its generated code carries: to a forward
    channel created for a demo.Ping of another hash (another schema version), attaching fails with
    TypeMismatch naming both."""
    _require_demo_pieces()
    subprocess.run(
        ["dotnet", "build", "-c", "Release", "--nologo", "-v", "quiet", str(REPO / "examples/csharp/DemoStage")],
        check=True, capture_output=True, env={**os.environ, "DOTNET_CLI_TELEMETRY_OPTOUT": "1", "DOTNET_NOLOGO": "1"},
    )
    gen = tmp_path / "gen"
    subprocess.run(
        ["/usr/bin/python3", "-m", "flatlane_gen", "--lang", "python", "--dump-ir", "-o", str(gen),
         str(REPO / "schema" / "examples" / "demo.fbs")],
        check=True, env={**os.environ, "PYTHONPATH": str(REPO / "generator")},
    )
    ir = json.loads((gen / "demo.ir.json").read_text())
    schema_hash = next(m for m in ir["messages"] if m["name"] == "demo.Ping")["type_hash"][2:]
    from flatlane import _native  # a work queue created by a peer of another schema version

    prefix = f"pytest-demo-{os.getpid()}"
    name = f"{prefix}.demo.Demo.forward"
    pusher = _native.TopicPublisher(name, type_name="demo.Ping", type_hash=0x0123456789ABCDEF, distribution=1)
    try:
        r = subprocess.run(
            ["dotnet", str(STAGE_DLL), "--count", "1", "--prefix", prefix, "--startup-timeout", "1"],
            capture_output=True, text=True, timeout=60, env={**os.environ, "FLATLANE_BUILD_DIR": str(BUILD_DIR)},
        )
    finally:
        pusher.close()
        shm_path(name).unlink(missing_ok=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.startswith("C# stage: TypeMismatch: "), r.stderr
    assert "carries 'demo.Ping' (hash 0123456789abcdef)" in r.stderr, r.stderr
    assert f"expects 'demo.Ping' (hash {schema_hash})" in r.stderr, r.stderr
