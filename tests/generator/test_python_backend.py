"""The Python back end: what it lists, what it writes, and that the endpoint module says what
the IR says. (Importing the module needs the built runtime package; tests/python/test_typed.py
imports it and checks it against the IR again.)"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA, EXAMPLES, REPO

from flatlane_gen.backends import python as pyback
from flatlane_gen.cli import main
from flatlane_gen.frontend import load

ROBOT = str(EXAMPLES / "robot_cell.fbs")
TYPED = str(REPO / "tests" / "cpp" / "schema" / "typed_test.fbs")


def gen(out: Path, *extra: str, schema: str = ROBOT) -> int:
    return main(["-I", str(EXAMPLES), "--lang", "python", "-o", str(out), *extra, schema])


def files_under(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


def test_outputs_listed_are_the_files_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    assert gen(out, "--list-outputs") == 0
    listed = capsys.readouterr().out.split()
    assert not out.exists()
    rel = sorted(os.path.relpath(p, out) for p in listed)
    assert rel == sorted([
        "common/__init__.py", "common/Header.py", "common/Pose.py", "common/Quat.py", "common/Vec3.py",
        "robot/__init__.py", "robot/Command.py", "robot/Image.py", "robot/Mode.py", "robot/PixelFormat.py",
        "robot/PlanInput.py", "robot/PlanJob.py", "robot/PlanResult.py", "robot/SetModeReply.py",
        "robot/SetModeRequest.py", "robot/Status.py", "robot/Telemetry.py", "robot/TrajectoryRequest.py",
        "robot/Waypoint.py", "robot_cell_flatlane.py"])
    assert gen(out) == 0
    assert files_under(out) == sorted(listed)
    # flatlane.Void ships with the runtime package: a generated flatlane/ would shadow it.
    assert not (out / "flatlane").exists()


def test_cpp_and_python_together_and_unchanged_files_kept(tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert main(["-I", str(EXAMPLES), "--lang", "cpp", "--lang", "python", "-o", str(out), ROBOT]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"robot_cell.flatlane.hpp", "robot_cell_flatlane.py", "robot", "common"} <= names
    before = {p: os.stat(p).st_mtime_ns for p in files_under(out)}
    assert gen(out) == 0
    assert {p: os.stat(p).st_mtime_ns for p in files_under(out) if p in before} == before


def test_namespace_packages_and_nested_namespaces(tmp_path: Path) -> None:
    schema = tmp_path / "deep.fbs"
    schema.write_text('include "flatlane.fbs";\nnamespace a.b.c;\ntable T { x:int; }\n'
                      'rpc_service S (flatlane_pattern: "pipeline") { t(T): flatlane.Void; }\n')
    out = tmp_path / "o"
    assert main(["--lang", "python", "-o", str(out), str(schema)]) == 0
    rel = [os.path.relpath(p, out) for p in files_under(out)]
    assert rel == ["a/__init__.py", "a/b/__init__.py", "a/b/c/T.py", "a/b/c/__init__.py", "deep_flatlane.py"]
    text = (out / "deep_flatlane.py").read_text()
    assert "from a.b.c.T import T as _a_b_c_T" in text
    assert "Pusher: Final = _typed.Pusher.of(spec, message)" in text


def test_flatlane_namespace_is_reserved(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schema = tmp_path / "mine.fbs"
    schema.write_text('include "flatlane.fbs";\nnamespace flatlane.extra;\ntable Mine { x:int; }\n')
    assert main(["--lang", "python", "-o", str(tmp_path / "o"), str(schema)]) == 1
    err = capsys.readouterr().err
    assert "mine.fbs: flatlane.extra.Mine: the namespace 'flatlane' is the Flatlane runtime package" in err
    assert not (tmp_path / "o").exists()


def test_flatc_refusal_is_a_schema_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """flatc --python cannot emit unions of structs (kitchen_sink has one): exit 1 with flatc's
    message, nothing written."""
    assert main(["--lang", "python", "-o", str(tmp_path / "o"), str(DATA / "kitchen_sink.fbs")]) == 1
    err = capsys.readouterr().err
    assert "flatc --python failed for" in err and "only tables can be union elements" in err
    assert not (tmp_path / "o").exists()


def test_module_name_of_odd_file_names() -> None:
    class S:
        root_file = "/x/2nd-robot.cell.fbs"

    assert pyback.module_stem(S()) == "_2nd_robot_cell_flatlane"  # type: ignore[arg-type]
    assert pyback.ident("from") == "from_" and pyback.ident("samples") == "samples"


def test_docstring_and_string_escaping() -> None:
    assert pyback.pystr('a"b\\c\n') == '"a\\"b\\\\c\\n"'
    assert pyback.docstring([], 4, "fallback.") == '"""fallback."""'
    assert pyback.docstring([' say "hi"'], 4, "x") == '"""say "hi"\n    """'
    assert pyback.docstring([' one', '', ' two """'], 4, "x") == '"""one\n\n    two \\"\\"\\"\n    """'
    for text in (pyback.docstring([' say "hi"'], 0, "x"), pyback.docstring([' two """', ' \\n'], 0, "x")):
        assert isinstance(ast.literal_eval(text), str)


# --- the endpoint module against the IR (read statically: no runtime needed) ------------------------


def _call_kwargs(node: ast.Call) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kw in node.keywords:
        v = kw.value
        out[kw.arg or ""] = ast.literal_eval(v) if not isinstance(v, (ast.Attribute, ast.Name)) else ast.unparse(v)
    return out


@pytest.mark.parametrize("schema,includes", [(ROBOT, [str(EXAMPLES)]), (TYPED, [])])
def test_endpoint_module_matches_the_ir(tmp_path: Path, schema: str, includes: list[str]) -> None:
    args = [a for d in includes for a in ("-I", d)]
    assert main([*args, "--lang", "python", "-o", str(tmp_path), schema]) == 0
    ir_schema = load(schema, includes, None)
    text = (tmp_path / pyback.endpoint_module(ir_schema)).read_text()
    assert str(tmp_path) not in text and str(REPO) not in text and "/home" not in text
    assert text.startswith(f"# Generated by flatlane-gen ") and f"from {os.path.basename(schema)}. Do not edit." in text
    tree = ast.parse(text)  # valid Python

    traits = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "_Traits":
            kw = _call_kwargs(node)
            traits[kw["type_name"]] = kw
    assert set(traits) == {m.name for m in ir_schema.messages}
    for m in ir_schema.messages:
        t = traits[m.name]
        assert (t["type_hash"], t["file_identifier"]) == (m.type_hash, m.file_identifier)
        assert t["reader"] == "_" + m.name.replace(".", "_")
        module, cls = m.name.rsplit(".", 1)
        assert f"from {m.name} import {cls} as _{m.name.replace('.', '_')}" in text

    specs = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "_Spec":
            kw = _call_kwargs(node)
            specs[kw["name"]] = kw
    assert set(specs) == {c.qualified_name for c in ir_schema.channels}
    for c in ir_schema.channels:
        s = specs[c.qualified_name]
        assert s == {"name": c.qualified_name, "kind": f"_Kind.{c.kind.name}", "ring_capacity": c.ring_capacity,
                     "max_message": c.max_message, "chunk_size": c.chunk_size,
                     "overflow": f"_Overflow.{c.overflow.name}", "wait": f"_Wait.{c.wait.name}"}

    # Endpoint classes named after the pattern: one-way channels bound to their message, services
    # to their request and response, duplex channels to their one message type.
    for c in ir_schema.channels:
        endpoints = {"topic": ("Publisher", "Subscriber"), "pipeline": ("Pusher", "Puller")}.get(c.kind.value)
        block = text.split(f"name={pyback.pystr(c.qualified_name)},")[1].split("\n    class ")[0]
        if endpoints:
            for e in endpoints:
                assert f"{e}: Final = _typed.{e}.of(spec, message)" in block
        elif c.kind.value == "service":
            for e in ("Client", "Server"):
                assert f"{e}: Final = _typed.{e}.of(spec, request, response)" in block
        elif c.kind.value == "duplex":
            # In place: the request comes back as the response, so one message type binds both.
            assert c.request == c.response
            assert "Client: Final = _typed.InPlaceClient.of(spec, request)" in block
            assert "Server: Final = _typed.InPlaceServer.of(spec, request)" in block
        else:
            raise AssertionError(f"unexpected channel kind {c.kind.value}")
    assert "endpoints are not supported" not in text


# --- generated builders and verifiers -----------------------------------------------------------


def test_table_layout_is_aligned_without_overlap_and_packs_the_holes(tmp_path: Path) -> None:
    """Every table of robot_cell: fields at aligned, disjoint places after the vtable offset; the
    one-struct.pack_into format is exactly vtable + table; small fields fill the gap at byte 4."""
    import struct

    sch = load(ROBOT, [str(EXAMPLES)])
    fb = pyback.builders_view(sch, set())
    for t in fb["tables"]:
        view, table = t, t["ir"]
        spans = []
        for c in view["checks"]:
            off, size, align = c["off"], c["size"], c["align"]
            assert off >= 4 and off % align == 0, (table.name, c["where"])
            spans.append((off, off + size))
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), (table.name, spans)
        assert struct.calcsize(view["format"]) == view["vsize"] + view["tsize"] == view["size"]
        assert view["vsize"] == 4 + 2 * (max((f.id for f in table.fields), default=-1) + 1)
    tick = next(t for t in pyback.builders_view(load(str(REPO / "bench" / "schema" / "bench.fbs"), []),
                                                 set())["tables"] if t["ir"].name == "flbench.Tick")
    assert tick["tsize"] == 16 and tick["format"] == "<HHHHiIQ"  # soffset, payload at 4, seq at 8


def test_builder_parameters_escape_keywords_and_the_builders_own_names(tmp_path: Path) -> None:
    schema = tmp_path / "names.fbs"
    schema.write_text('include "flatlane.fbs";\nnamespace n;\n'
                      'table T { b:int; t:int; class:string; end:ubyte; e:float; }\n'
                      'rpc_service S (flatlane_pattern: "topic") { x(T): flatlane.Void; }\n')
    out = tmp_path / "o"
    assert main(["--lang", "python", "-o", str(out), str(schema)]) == 0
    text = (out / "names_flatlane.py").read_text()
    assert "def build_T(b, b_=0, t_=0, class_=None, end_=0, e_=0.0) -> int:" in text
    tree = ast.parse(text)  # the whole module is valid Python
    fns = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert {"build_T", "_verify_n_T", "_verify_flatlane_Void"} <= fns
    assert "verifier=_verify_n_T," in text and "builder=build_T," in text


def test_tables_sharing_a_short_name_get_qualified_builders(tmp_path: Path) -> None:
    schema = tmp_path / "two.fbs"
    schema.write_text('include "flatlane.fbs";\nnamespace a;\ntable M { x:int; }\n'
                      'namespace b;\ntable M { y:int; }\ntable Other { m:a.M; }\n'
                      'rpc_service S (flatlane_pattern: "topic") { x(b.M): flatlane.Void; }\n')
    out = tmp_path / "o"
    assert main(["--lang", "python", "-o", str(out), str(schema)]) == 0
    text = (out / "two_flatlane.py").read_text()
    assert "def build_a_M(b, x=0)" in text and "def build_b_M(b, y=0)" in text and "def build_Other(b, m=None)" in text
