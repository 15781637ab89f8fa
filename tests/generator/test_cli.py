"""flatlane-gen's command line: in-process for speed, plus real subprocesses for exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
from conftest import DATA, EXAMPLES, GENERATOR, GOLDEN, SCHEMA_DIR

from flatlane_gen.cli import depfile_text, main

ROBOT = str(EXAMPLES / "robot_cell.fbs")


def run_module(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(GENERATOR))
    return subprocess.run([sys.executable, "-m", "flatlane_gen", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, check=False)


def test_dump_ir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-I", str(SCHEMA_DIR), "-I", str(EXAMPLES), "-o", str(tmp_path), "--dump-ir",
                 ROBOT]) == 0
    out = tmp_path / "robot_cell.ir.json"
    assert out.read_text() == (GOLDEN / "robot_cell.ir.json").read_text()
    assert capsys.readouterr().err == ""


def test_list_outputs_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "out"
    args = ["-I", str(EXAMPLES), "-o", str(out_dir), "--depfile", str(tmp_path / "d.d"),
            "--list-outputs", "--dump-ir", ROBOT, str(DATA / "kitchen_sink.fbs")]
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines() == [
        str(out_dir / "robot_cell.ir.json"), str(out_dir / "kitchen_sink.ir.json")]
    assert not out_dir.exists() and not (tmp_path / "d.d").exists()


def test_list_outputs_without_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-I", str(EXAMPLES), "-o", str(tmp_path), "--list-outputs", ROBOT]) == 0
    assert capsys.readouterr().out == ""


def test_depfile(tmp_path: Path) -> None:
    dep = tmp_path / "gen.d"
    assert main(["-I", str(EXAMPLES), "-o", str(tmp_path / "out"), "--dump-ir", "--depfile",
                 str(dep), ROBOT, str(DATA / "kitchen_sink.fbs")]) == 0
    packaged = GENERATOR / "flatlane_gen" / "schema" / "flatlane.fbs"  # no -I schema given
    deps = sorted({str(EXAMPLES / "robot_cell.fbs"), str(EXAMPLES / "common.fbs"),
                   str(DATA / "kitchen_sink.fbs"), str(packaged)})
    assert dep.read_text() == depfile_text(
        [str(tmp_path / "out" / "robot_cell.ir.json"),
         str(tmp_path / "out" / "kitchen_sink.ir.json")], deps)
    first = dep.read_text().splitlines()[0]
    assert first.endswith("kitchen_sink.ir.json: \\")


def test_depfile_escaping() -> None:
    assert depfile_text(["out dir/a.json"], ["/s p/a#b.fbs", "/c$d.fbs"]) == (
        "out\\ dir/a.json: \\\n /s\\ p/a\\#b.fbs \\\n /c$$d.fbs\n")


def test_validate_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-I", str(EXAMPLES), "-o", str(tmp_path / "o"), ROBOT]) == 0
    assert not (tmp_path / "o").exists()
    assert capsys.readouterr() == ("", "")


def test_include_path_is_needed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # robot_cell.fbs includes "common.fbs" from its own directory; flatc resolves includes
    # relative to -I paths and the including file, so copy it away from common.fbs.
    lone = tmp_path / "robot_cell.fbs"
    lone.write_text((EXAMPLES / "robot_cell.fbs").read_text())
    assert main(["-o", str(tmp_path / "o"), str(lone)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"flatlane-gen: error: flatc rejected {lone}:")
    assert "common.fbs" in err
    assert main(["-I", str(EXAMPLES), "-o", str(tmp_path / "o"), "--dump-ir", str(lone)]) == 0


def test_validation_error_exit_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = DATA / "invalid" / "unknown_pattern.fbs"
    assert main(["-o", str(tmp_path), "--dump-ir", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("flatlane-gen: error: 1 error in Flatlane schema:\n")
    assert 'flatlane_pattern "pubsub" is not one of' in err
    assert not list(tmp_path.iterdir())


def test_all_schemas_are_checked(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a = DATA / "invalid" / "unknown_pattern.fbs"
    b = DATA / "invalid" / "duplex_mismatch.fbs"
    assert main(["-o", str(tmp_path), str(a), str(b)]) == 1
    err = capsys.readouterr().err
    assert "pubsub" in err and "duplex method must return its request type" in err


def test_missing_schema(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["-o", str(tmp_path), str(tmp_path / "nope.fbs")]) == 1
    assert "nope.fbs: no such schema file" in capsys.readouterr().err


def test_same_stem_twice_is_usage_error(write_schema: Callable[..., Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    a = write_schema("a/x.fbs", "table A { v:int; }\n")
    b = write_schema("b/x.fbs", "table B { v:int; }\n")
    assert main(["-o", str(tmp_path / "o"), "--dump-ir", str(a), str(b)]) == 2
    assert "would write the same outputs" in capsys.readouterr().err


def test_flatc_warnings_are_logged(write_schema: Callable[..., Path], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    s = write_schema("w.fbs", "table A { Bad:int; }\n")
    assert main(["-o", str(tmp_path / "o"), str(s)]) == 0
    err = capsys.readouterr().err
    assert "flatlane-gen: WARNING: flatc:" in err and "snake_case" in err


def test_flatc_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--flatc", str(tmp_path / "no-flatc"), "-o", str(tmp_path), ROBOT]) == 1
    assert "flatc not found" in capsys.readouterr().err


def test_module_lang_exit_2(tmp_path: Path) -> None:
    r = run_module("--lang", "cpp", "--lang", "java", "-o", str(tmp_path), ROBOT)
    assert r.returncode == 2
    assert "argument --lang: invalid choice: 'java'" in r.stderr
    assert not list(tmp_path.iterdir())


def test_module_schema_error_exit_1(tmp_path: Path) -> None:
    r = run_module("-o", str(tmp_path), str(DATA / "invalid" / "duplex_mismatch.fbs"))
    assert r.returncode == 1 and r.stdout == ""
    assert "a duplex method must return its request type" in r.stderr


def test_module_usage_error_exit_2(tmp_path: Path) -> None:
    assert run_module(ROBOT).returncode == 2  # -o missing
    assert run_module("--lang", "java", "-o", str(tmp_path), ROBOT).returncode == 2


def test_module_dump_ir_relative_paths(tmp_path: Path) -> None:
    r = run_module("-I", "schema", "-I", "schema/examples", "-o", str(tmp_path), "--dump-ir",
                   "-v", "schema/examples/robot_cell.fbs", cwd=SCHEMA_DIR.parent)
    assert r.returncode == 0, r.stderr
    assert "INFO: wrote" in r.stderr
    data = json.loads((tmp_path / "robot_cell.ir.json").read_text())
    assert data["root_file"] == "robot_cell.fbs"
    assert {f["path"] for f in data["files"]} == {"robot_cell.fbs", "common.fbs",
                                                  "../flatlane.fbs"}


def test_depfile_without_outputs_targets_itself(tmp_path: Path) -> None:
    dep = tmp_path / "check.d"
    assert main(["-I", str(EXAMPLES), "-o", str(tmp_path / "o"), "--depfile", str(dep), ROBOT]) == 0
    assert dep.read_text().startswith(f"{dep}: \\\n")
