"""The C++ back end: what it lists, what it writes, and that the result compiles."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest
from conftest import DATA, EXAMPLES, REPO

from flatlane_gen.backends import cpp
from flatlane_gen.cli import main
from flatlane_gen.frontend import load

ROBOT = str(EXAMPLES / "robot_cell.fbs")


def gen(out: Path, *extra: str, schema: str = ROBOT) -> int:
    return main(["-I", str(EXAMPLES), "--lang", "cpp", "-o", str(out), *extra, schema])


def test_outputs_cover_the_include_closure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gen(tmp_path / "o", "--list-outputs") == 0
    listed = capsys.readouterr().out.split()
    assert [os.path.basename(p) for p in listed] == [
        "flatlane_generated.h", "common_generated.h", "robot_cell_generated.h",
        "robot_cell.flatlane.hpp"]
    assert not (tmp_path / "o").exists()
    assert gen(tmp_path / "o") == 0
    assert sorted(str(p) for p in (tmp_path / "o").iterdir()) == sorted(listed)


def test_unchanged_outputs_are_not_rewritten_but_the_stamp_is(tmp_path: Path) -> None:
    out, stamp = tmp_path / "o", tmp_path / "s.stamp"
    assert gen(out, "--stamp", str(stamp), "--depfile", str(tmp_path / "s.d")) == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    stamp_before = stamp.stat().st_mtime_ns
    time.sleep(0.02)
    assert gen(out, "--stamp", str(stamp), "--depfile", str(tmp_path / "s.d")) == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert stamp.stat().st_mtime_ns > stamp_before
    dep = (tmp_path / "s.d").read_text()
    assert dep.startswith(f"{stamp}:") and "common.fbs" in dep and "flatlane.fbs" in dep


def test_a_changed_output_is_rewritten(tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert gen(out) == 0
    hpp = out / "robot_cell.flatlane.hpp"
    good = hpp.read_text()
    hpp.write_text("stale")
    assert gen(out) == 0
    assert hpp.read_text() == good


def test_endpoint_header_content(tmp_path: Path) -> None:
    assert gen(tmp_path) == 0
    text = (tmp_path / "robot_cell.flatlane.hpp").read_text()
    schema = load(ROBOT, [str(EXAMPLES)])
    for m in schema.messages:
        assert f"struct MessageTraits<{cpp.qualified(m.name)}>" in text
        assert f"type_hash = {m.type_hash_hex}ull;" in text
    assert 'file_identifier = "RBC1";' in text  # root_type Command only
    assert text.count('file_identifier = "RBC1"') == 1
    # One struct per channel, in its service's namespace, with the schema's settings.
    assert "namespace robot::ArmTopics {" in text and "struct telemetry {" in text
    telemetry = text[text.index("struct telemetry {"):]
    telemetry = telemetry[:telemetry.index("\n};\n")]
    assert ".overflow = ::flatlane::Overflow::drop_oldest" in telemetry
    assert ".wait = ::flatlane::WaitStrategy::busy_spin" in telemetry
    assert ".ring_capacity = 262144ull" in telemetry
    assert "using Publisher = ::flatlane::Publisher<telemetry>;" in telemetry
    results = text[text.index("struct results {"):]
    assert ".chunk_size = 1048576u" in results and "using Puller" in results
    # Doc comments travel.
    assert "/// Motion commands; never dropped." in text
    # Services get Client/Server; duplex gets the in-place Client/Server.
    plan = text[text.index("struct PlanTrajectory {"):]
    plan = plan[:plan.index("\n};\n")]
    assert "static constexpr bool streaming = true;" in plan and "using " in plan
    assert "using Client = ::flatlane::Client<PlanTrajectory>;" in plan
    assert "using Server = ::flatlane::Server<PlanTrajectory>;" in plan and "Publisher" not in plan
    blur = text[text.index("struct blur {"):]
    blur = blur[:blur.index("\n};\n")]
    assert "using Client = ::flatlane::InPlaceClient<blur>;" in blur
    assert "using Server = ::flatlane::InPlaceServer<blur>;" in blur and "Publisher" not in blur


def test_cpp_keywords_are_escaped(write_schema: Callable[..., Path], tmp_path: Path) -> None:
    fbs = write_schema("kw.fbs", """
        include "flatlane.fbs";
        namespace kw;
        table T { a:int; }
        rpc_service S (flatlane_pattern: "topic") { delete(T): flatlane.Void; }
    """)
    assert main(["--lang", "cpp", "-o", str(tmp_path / "o"), str(fbs)]) == 0
    text = (tmp_path / "o" / "kw.flatlane.hpp").read_text()
    assert "struct delete_ {" in text and '.name = "kw.S.delete"' in text


def test_two_closure_files_with_one_name_are_refused(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "types.fbs").write_text("namespace a; table A { x:int; }\n")
    (tmp_path / "types.fbs").write_text('include "a/types.fbs";\nnamespace b; table B { y:int; }\n')
    root = tmp_path / "root.fbs"
    root.write_text('include "flatlane.fbs";\ninclude "types.fbs";\nnamespace r;\n'
                    'rpc_service S (flatlane_pattern: "topic") { b(b.B): flatlane.Void; }\n')
    assert main(["-I", str(tmp_path), "--lang", "cpp", "-o", str(tmp_path / "o"), str(root)]) == 1
    assert "would both generate types_generated.h" in capsys.readouterr().err


@pytest.mark.parametrize("schema,includes", [
    (ROBOT, [str(EXAMPLES)]),
    (str(DATA / "kitchen_sink.fbs"), []),
])
def test_generated_headers_compile(tmp_path: Path, schema: str, includes: list[str]) -> None:
    cxx = shutil.which("g++")
    assert cxx, "g++ is required (scripts/setup.sh installs build-essential)"
    args = [a for d in includes for a in ("-I", d)]
    assert main([*args, "--lang", "cpp", "-o", str(tmp_path), schema]) == 0
    stem = Path(schema).stem
    tu = tmp_path / "tu.cpp"
    # Two inclusions of the same traits (another header may define them) must not collide.
    tu.write_text(f'#include "{stem}.flatlane.hpp"\n#include "{stem}.flatlane.hpp"\n'
                  "static_assert(sizeof(flatlane::ChannelSpec) > 0);\n")
    r = subprocess.run([cxx, "-std=c++20", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
                        "-I", str(tmp_path), "-I", str(REPO / "runtime" / "cpp" / "include"), str(tu)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr[-4000:]
    assert re.search(r"#include \"" + stem + r"_generated\.h\"", (tmp_path / f"{stem}.flatlane.hpp").read_text())
