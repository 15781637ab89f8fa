"""Every validation error, against golden messages (golden/invalid/<case>.txt).

Each data/invalid/<case>.fbs is a schema flatc accepts but Flatlane rejects (except
flatc_syntax_error, which shows flatc's own diagnostics pass through). Paths in the goldens are
relative to tests/generator/data.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import DATA, check_golden

from flatlane_gen import frontend
from flatlane_gen.bfbs import BaseType, RObject, RRPCCall, RSchema, RService, RType
from flatlane_gen.errors import FlatcError, SchemaError, ValidationError
from flatlane_gen.validate import validate

INVALID = DATA / "invalid"
CASES = sorted(p.stem for p in INVALID.glob("*.fbs"))


def rel(path: str) -> str:
    return os.path.relpath(path, DATA)


def error_text(case: str) -> str:
    with pytest.raises(SchemaError) as info:
        frontend.load(str(INVALID / f"{case}.fbs"), [str(INVALID)])
    if isinstance(info.value, ValidationError):
        return info.value.format(rel) + "\n"
    assert isinstance(info.value, FlatcError)
    return str(info.value).replace(str(DATA) + os.sep, "") + "\n"


@pytest.mark.parametrize("case", CASES)
def test_golden_error(case: str) -> None:
    check_golden(f"invalid/{case}.txt", error_text(case))


def test_every_golden_has_a_case() -> None:
    goldens = sorted(p.stem for p in (Path(__file__).parent / "golden/invalid").glob("*.txt"))
    assert goldens == CASES


def test_all_errors_are_reported_at_once() -> None:
    with pytest.raises(ValidationError) as info:
        frontend.load(str(INVALID / "many_errors.fbs"))
    assert len(info.value.diagnostics) >= 8
    assert str(info.value).startswith(f"{len(info.value.diagnostics)} errors in Flatlane schema:")


def test_errors_name_the_declaring_file() -> None:
    with pytest.raises(ValidationError) as info:
        frontend.load(str(INVALID / "error_in_included_file.fbs"), [str(INVALID)])
    files = {Path(d.file).name for d in info.value.diagnostics}
    assert files == {"shared.fbs", "error_in_included_file.fbs"}


def test_struct_message_is_rejected() -> None:
    # flatc 2.0.8 never lets a struct through as an rpc type, so build the reflection directly.
    point = RObject(name="bad.Point", fields=(), is_struct=True, minalign=4, bytesize=4,
                    declaration_file="//x/bad.fbs")
    void = RObject(name="flatlane.Void", fields=(), is_struct=False, minalign=1, bytesize=0)
    svc = RService(name="bad.Topics", calls=(RRPCCall("ticks", "bad.Point", "flatlane.Void"),),
                   attributes={"flatlane_pattern": "topic"}, declaration_file="//x/bad.fbs")
    schema = RSchema(objects=(point, void), enums=(), services=(svc,))
    with pytest.raises(ValidationError) as info:
        validate(schema)
    assert info.value.format(lambda p: p) == (
        "1 error in Flatlane schema:\n"
        "  /x/bad.fbs: rpc_service bad.Topics, method ticks: message type bad.Point is a struct; "
        "Flatlane messages must be tables")


def test_unknown_message_type_is_rejected() -> None:
    svc = RService(name="bad.S", calls=(RRPCCall("m", "bad.Nope", "bad.Nope"),))
    with pytest.raises(ValidationError, match="message type bad.Nope is not defined"):
        validate(RSchema(objects=(), enums=(), services=(svc,)))


def test_valid_minimal_service_passes() -> None:
    msg = RObject(name="ok.Msg", fields=(), is_struct=False, minalign=1, bytesize=0)
    svc = RService(name="ok.S", calls=(RRPCCall("m", "ok.Msg", "ok.Msg"),))
    (service,) = validate(RSchema(objects=(msg,), enums=(), services=(svc,)))
    (ch,) = service.channels
    assert (ch.kind.value, ch.request, ch.response, ch.max_message, ch.ring_capacity) == (
        "service", "ok.Msg", "ok.Msg", 1 << 32, 1 << 20)
    assert RType(BaseType.INT).index == -1  # RType defaults mirror reflection.fbs
