"""The generator installs offline into a venv and runs from there."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import EXAMPLES, GENERATOR, SCHEMA_DIR

SYSTEM_PYTHON = "/usr/bin/python3"


def test_packaged_flatlane_fbs_is_the_schema_copy() -> None:
    # The package ships its own copy so an installed generator resolves include "flatlane.fbs".
    packaged = GENERATOR / "flatlane_gen" / "schema" / "flatlane.fbs"
    assert packaged.read_bytes() == (SCHEMA_DIR / "flatlane.fbs").read_bytes(), (
        "copy schema/flatlane.fbs to generator/flatlane_gen/schema/flatlane.fbs")


def test_template_folders_exist() -> None:
    for lang in ("cpp", "python", "csharp"):
        assert (GENERATOR / "flatlane_gen" / "templates" / lang).is_dir()


@pytest.mark.skipif(not Path(SYSTEM_PYTHON).exists(), reason="needs Debian's /usr/bin/python3")
def test_pip_install_into_venv(tmp_path: Path) -> None:
    # Build from a copy: pip builds in the source tree and would leave build/ and *.egg-info.
    src = tmp_path / "src"
    shutil.copytree(GENERATOR, src, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, capture_output=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-build-isolation",
                          "--no-deps", "--no-index", str(src)], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stdout + pip.stderr

    out = tmp_path / "out"
    # Run from an unrelated directory, without -I schema: flatlane.fbs comes from the package.
    r = subprocess.run([str(venv / "bin" / "flatlane-gen"), "-I", str(EXAMPLES), "-o", str(out),
                        "--dump-ir", str(EXAMPLES / "robot_cell.fbs")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (out / "robot_cell.ir.json").exists()
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import flatlane_gen, sys; print(flatlane_gen.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True)
    assert where.stdout.startswith(str(venv)), "imported the checkout, not the installed copy"
    # The C# templates are packaged too.
    lang = subprocess.run([str(venv / "bin" / "flatlane-gen"), "-I", str(EXAMPLES), "--lang", "csharp",
                           "-o", str(out), str(EXAMPLES / "robot_cell.fbs")], capture_output=True,
                          text=True)
    assert lang.returncode == 0, lang.stderr
    assert (out / "robot_cell.flatlane.cs").exists()

