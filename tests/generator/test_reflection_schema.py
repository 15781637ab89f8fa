"""The reader's field ids against the installed C++ reflection header.

data/reflection.fbs is a test oracle: if `flatc --cpp` of it reproduces the installed
reflection_generated.h byte for byte, it is the reflection schema flatc 2.0.8 writes .bfbs files
with, and the `VT_*` constants parsed from the header pin every field id bfbs.py uses.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import REFLECTION_FBS, flatc

from flatlane_gen import bfbs

HEADER = Path("/usr/include/flatbuffers/reflection_generated.h")


def header_text() -> str:
    if not HEADER.exists():
        pytest.skip("libflatbuffers-dev not installed")
    return HEADER.read_text()


def test_reflection_fbs_reproduces_installed_header(tmp_path: Path) -> None:
    subprocess.run([flatc(), "--cpp", "--no-prefix", "--cpp-std", "c++0x", "-o", str(tmp_path),
                    str(REFLECTION_FBS)], check=True, capture_output=True)
    assert (tmp_path / "reflection_generated.h").read_text() == header_text()


def vt_constants() -> dict[str, dict[str, int]]:
    """{'Type': {'BASE_TYPE': 4, ...}, ...} from the header's vtable enums."""
    out: dict[str, dict[str, int]] = {}
    pattern = re.compile(r"struct (\w+) FLATBUFFERS_FINAL_CLASS : private flatbuffers::Table "
                         r"\{.*?enum FlatBuffersVTableOffset[^{]*\{(.*?)\};", re.S)
    for name, body in pattern.findall(header_text()):
        out[name] = {k: int(v) for k, v in re.findall(r"VT_(\w+) = (\d+)", body)}
    return out


READER_IDS = {
    "Type": bfbs.TypeF, "KeyValue": bfbs.KeyValueF, "EnumVal": bfbs.EnumValF, "Enum": bfbs.EnumF,
    "Field": bfbs.FieldF, "Object": bfbs.ObjectF, "RPCCall": bfbs.RPCCallF,
    "Service": bfbs.ServiceF, "SchemaFile": bfbs.SchemaFileF, "Schema": bfbs.SchemaF,
}


def test_every_reader_field_id_matches_header() -> None:
    vts = vt_constants()
    assert set(vts) == set(READER_IDS)
    for table, ids in READER_IDS.items():
        reader = {k: bfbs.vtable_slot(v) for k, v in vars(ids).items()
                  if k.isupper() and k != "OBJECT_DEPRECATED"}
        assert reader == vts[table], table


def test_base_type_values_match_header() -> None:
    body = re.search(r"enum BaseType \{(.*?)\};", header_text(), re.S)
    assert body is not None
    values = {k.upper(): int(v) for k, v in re.findall(r"(\w+) = (\d+)", body.group(1))}
    values.pop("MAXBASETYPE")
    assert values == {m.name: m.value for m in bfbs.BaseType}
