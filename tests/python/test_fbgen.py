"""Generated Python builders and verifiers (``build_<Table>``, ``_verify_<table>``; runtime
flatlane._fbgen) on tests/python/schema/all_fields.fbs, which has every field kind flatc 2.0.8's
Python supports: every value written comes back through flatc's readers and through flatc's own
C++ decoder (``flatc --json``); defaults, absent and required fields; growth from an empty
builder; mixing with flatc's builder API; and a verifier that rejects malformed messages (fuzzed
bytes, truncation, nesting beyond 64) so that a message it passes always reads without error."""

from __future__ import annotations

import importlib
import json
import math
import os
import random
import subprocess
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List

import numpy as np
import pytest
from flatbuffers.builder import Builder

import flatlane
from conftest import generate_python
from flatlane import _fbgen, typed

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "tests" / "python" / "schema" / "all_fields.fbs"


@pytest.fixture(scope="module")
def af(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    generate_python(tmp_path_factory.mktemp("all_fields_gen"), SCHEMA)
    return importlib.import_module("all_fields_flatlane")


def leaf_bytes(af: ModuleType, text: str, n: int) -> bytes:
    """A finished af.Leaf FlatBuffer (for the nested_flatbuffer field)."""
    b = Builder(0)
    _fbgen.finish(b, af.build_Leaf(b, text, n), None)
    return bytes(b.Output())


def node_chain(af: ModuleType, b: Builder, depth: int) -> int:
    """Node(value=depth-1, child=Node(value=depth-2, ... Node(value=0)))."""
    off = None
    for value in range(depth):
        off = af.build_Node(b, value, off)
    assert off is not None
    return off


def build_everything(b: Builder, af: ModuleType, node_depth: int = 3) -> int:
    leaf = af.build_Leaf(b, "leaf", 42)
    leaves = [af.build_Leaf(b, f"l{i}", -i) for i in range(3)]
    choice = af.build_Node(b, 99, af.build_Node(b, 98))
    node = node_chain(af, b, node_depth)
    return af.build_All(
        b, b_=False, i8=-128, u8=255, i16=-32768, u16=65535, i32=-2**31, u32=2**32 - 1, i64=-2**63,
        u64=2**64 - 1, f32=0.25, f64=1e300, opt=0, s="h\u00e9llo w\u00f6rld", leaf=leaf, leaves=leaves,
        aligned=(1.0, 2.0, 3.0),
        deeps=[((1, 0.5), (1, 2, 3), ((2, 1.5), (3, 2.5)), True), ((-1, -0.5), (4, 5, 6), ((5, 3.5), (6, 4.5)), False)],
        flags=5, signed=7, signeds=[-3, 0, 7], choice_type=3, choice=choice, strings=["a", "", b"ccc"],
        nested=leaf_bytes(af, "inner", 7), big=-0.0,
        deep=((-1, 2.5), (7, 8, 9), ((3, 4.5), (-5, 6.5)), True),
        doubles=np.array([1.5, -2.5, math.pi]), bools=[True, False, True], i8s=np.array([-1, 2, -3], dtype=np.int8),
        node=node,
    )


EXPECTED: Dict[str, Any] = dict(
    b=False, i8=-128, u8=255, i16=-32768, u16=65535, i32=-2**31, u32=2**32 - 1, i64=-2**63, u64=2**64 - 1,
    f32=0.25, f64=1e300, opt=0, s="h\u00e9llo w\u00f6rld".encode(), leaf=(b"leaf", 42),
    leaves=[(b"l0", 0), (b"l1", -1), (b"l2", -2)], aligned=(1.0, 2.0, 3.0),
    deeps=[((1, 0.5), (1, 2, 3), ((2, 1.5), (3, 2.5)), True), ((-1, -0.5), (4, 5, 6), ((5, 3.5), (6, 4.5)), False)],
    flags=5, signed=7, signeds=[-3, 0, 7], choice_type=3, choice=(99, 98), strings=[b"a", b"", b"ccc"],
    nested=(b"inner", 7), big=-0.0, deep=((-1, 2.5), (7, 8, 9), ((3, 4.5), (-5, 6.5)), True),
    doubles=[1.5, -2.5, math.pi], bools=[True, False, True], i8s=[-1, 2, -3], node=[2, 1, 0],
)


def read_deep(d: Any) -> Any:
    from af.inner.Pair import Pair

    if d is None:
        return None
    pairs = tuple((p.A(), p.B()) for p in (d.Pairs(Pair(), k) for k in range(2)))
    return ((d.P(Pair()).A(), d.P(Pair()).B()), tuple(d.Arr()), pairs, d.Flag())


def read_all(m: Any) -> Dict[str, Any]:
    """Every field of an af.All through flatc's reader."""
    from af.Leaf import Leaf
    from af.Node import Node

    def chain(n: Any) -> Any:
        out = []
        while n is not None:
            out.append(n.Value())
            n = n.Child()
        return out

    leaf = m.Leaf()
    a = m.Aligned()
    choice = None
    if m.ChoiceType() == 3:
        t = m.Choice()
        node = Node()
        node.Init(t.Bytes, t.Pos)
        child = node.Child()
        choice = (node.Value(), None if child is None else child.Value())
    elif m.ChoiceType() in (1, 2):
        t = m.Choice()
        other = Leaf()
        other.Init(t.Bytes, t.Pos)
        choice = (other.Text(), other.N())
    nested = None
    if not m.NestedIsNone():
        inner = Leaf.GetRootAs(m.NestedAsNumpy().tobytes(), 0)
        nested = (inner.Text(), inner.N())
    return dict(
        b=m.B(), i8=m.I8(), u8=m.U8(), i16=m.I16(), u16=m.U16(), i32=m.I32(), u32=m.U32(), i64=m.I64(),
        u64=m.U64(), f32=m.F32(), f64=m.F64(), opt=m.Opt(), s=m.S(),
        leaf=None if leaf is None else (leaf.Text(), leaf.N()),
        leaves=[(m.Leaves(i).Text(), m.Leaves(i).N()) for i in range(m.LeavesLength())],
        aligned=None if a is None else (a.X(), a.Y(), a.Z()),
        deeps=[read_deep(m.Deeps(i)) for i in range(m.DeepsLength())],
        flags=m.Flags(), signed=m.Signed(), signeds=[m.Signeds(i) for i in range(m.SignedsLength())],
        choice_type=m.ChoiceType(), choice=choice, strings=[m.Strings(i) for i in range(m.StringsLength())],
        nested=nested, big=m.Big(), deep=read_deep(m.Deep()),
        doubles=[m.Doubles(i) for i in range(m.DoublesLength())],
        bools=[m.Bools(i) for i in range(m.BoolsLength())], i8s=[m.I8s(i) for i in range(m.I8sLength())],
        node=chain(m.Node()),
    )


def finished(af: ModuleType, build: Any, *args: Any, size: int = 0) -> bytes:
    b = Builder(size)
    _fbgen.finish(b, build(b, *args), b"ALLF")
    return bytes(b.Output())


def verify(af: ModuleType, data: bytes) -> int:
    return _fbgen.verify_message(af._verify_af_All, "af.All", memoryview(data), len(data), b"ALLF")


def test_every_field_reads_back_through_flatc_readers(af: ModuleType) -> None:
    from af.All import All

    data = finished(af, build_everything, af)
    verify(af, data)
    got = read_all(All.GetRootAs(data, 0))
    assert got == EXPECTED
    assert math.copysign(1.0, got["big"]) == -1.0  # -0.0 kept


def test_flatc_cpp_decodes_what_the_builder_wrote(af: ModuleType, tmp_path: Path) -> None:
    """flatc (C++) parses the bytes with the schema and writes JSON: an independent reader."""
    data = finished(af, build_everything, af)
    (tmp_path / "m.bin").write_bytes(data)
    flatc = os.environ.get("FLATC", "flatc")
    r = subprocess.run([flatc, "--json", "--strict-json", "--defaults-json", "-I", str(REPO / "schema"),
                        "-o", str(tmp_path), str(SCHEMA), "--", str(tmp_path / "m.bin")],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    j = json.loads((tmp_path / "m.json").read_text())
    assert j["s"] == "h\u00e9llo w\u00f6rld" and j["u64"] == 2**64 - 1 and j["i64"] == -2**63
    assert j["leaf"] == {"text": "leaf", "n": 42} and [x["text"] for x in j["leaves"]] == ["l0", "l1", "l2"]
    assert j["deep"] == {"p": {"a": -1, "b": 2.5}, "arr": [7, 8, 9],
                         "pairs": [{"a": 3, "b": 4.5}, {"a": -5, "b": 6.5}], "flag": True}
    assert j["deeps"][1]["pairs"][1] == {"a": 6, "b": 4.5}
    assert j["aligned"] == {"x": 1.0, "y": 2.0, "z": 3.0}
    assert j["choice_type"] == "Node" and j["choice"] == {"value": 99, "child": {"value": 98}}
    assert j["strings"] == ["a", "", "ccc"] and j["signeds"] == ["Neg", "Zero", "Pos"]
    assert j["flags"] == "A C" and j["signed"] == "Pos" and j["opt"] == 0
    assert j["node"] == {"value": 2, "child": {"value": 1, "child": {"value": 0}}}
    assert j["bools"] == [True, False, True] and j["i8s"] == [-1, 2, -3]


def test_absent_fields_and_defaults(af: ModuleType) -> None:
    from af.All import All

    data = finished(af, lambda b: af.build_All(b, s="only s"))
    verify(af, data)
    m = All.GetRootAs(data, 0)
    assert (m.B(), m.I8(), m.U8(), m.I32(), m.U64(), m.F32(), m.F64(), m.Big()) == (
        True, -8, 200, -1, 9000000000000000000, 1.5, -math.inf, math.inf)
    assert m.Opt() is None and m.Leaf() is None and m.LeavesIsNone() and m.Aligned() is None
    assert m.Deep() is None and m.ChoiceType() == 0 and m.Node() is None and m.Flags() == 3 and m.Signed() == -3


def test_required_field_and_out_of_range_values_are_clear_errors(af: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"af\.All\.s is required"):
        finished(af, af.build_All)
    with pytest.raises(ValueError, match=r"af\.All: .*format requires 0 <= number <= 255"):
        finished(af, lambda b: af.build_All(b, s="x", u8=256))
    with pytest.raises(TypeError, match="a string field takes str, bytes-like or an offset, not float"):
        finished(af, lambda b: af.build_All(b, s="x", strings=[1.5]))
    with pytest.raises(ValueError, match="vector element out of range"):
        finished(af, lambda b: af.build_All(b, s="x", signeds=[1 << 20]))


def test_growth_from_an_empty_builder_gives_the_same_bytes(af: ModuleType) -> None:
    assert finished(af, build_everything, af, size=0) == finished(af, build_everything, af, size=1 << 16)


def test_vector_inputs_of_every_shape(af: ModuleType) -> None:
    from af.All import All

    cases = [
        np.array([1.0, 2.0], dtype=np.float32),   # other dtype: converted element by element
        np.array([1.0, 2.0], dtype=">f8"),       # big-endian: converted
        np.array([[1.0], [2.0]]),                 # 2-D contiguous: its bytes, as it is
        np.array([0.0, 1.0, 9.0, 2.0])[::2][::-1][::-1] * 0 + np.array([1.0, 2.0]),
        (1, 2),
        memoryview(np.array([1.0, 2.0]).tobytes()).cast("d"),
    ]
    for v in cases:
        data = finished(af, lambda b: af.build_All(b, s="x", doubles=v))
        verify(af, data)
        m = All.GetRootAs(data, 0)
        assert [m.Doubles(i) for i in range(m.DoublesLength())] == [1.0, 2.0], v
    strided = np.array([1.0, 9.0, 2.0, 9.0])[::2]  # not contiguous: element by element
    data = finished(af, lambda b: af.build_All(b, s="x", doubles=strided, nested=bytearray(b"\x01\x02")))
    m = All.GetRootAs(data, 0)
    assert m.DoublesAsNumpy().tolist() == [1.0, 2.0] and m.NestedAsNumpy().tolist() == [1, 2]
    packed = np.zeros(2, dtype=[("p", "<i1"), ("pad", "V7"), ("b", "<f8"), ("arr", "<i4", 3), ("pad2", "V4"),
                                ("pairs", [("a", "<i1"), ("pad", "V7"), ("b", "<f8")], 2), ("flag", "?"),
                                ("tail", "V7")])
    assert packed.itemsize == 72
    packed["b"] = [0.5, 1.5]
    data = finished(af, lambda b: af.build_All(b, s="x", deeps=packed))  # a buffer of packed structs
    m = All.GetRootAs(data, 0)
    assert [read_deep(m.Deeps(i))[0] for i in range(2)] == [(0, 0.5), (0, 1.5)]


def test_mixes_with_flatc_builder_calls(af: ModuleType) -> None:
    """Offsets from flatc's API go into generated builders, and the other way round."""
    from af import Leaf as L
    from af.All import All

    b = Builder(0)
    text = b.CreateString("by flatc")
    L.LeafStart(b)
    L.LeafAddText(b, text)
    L.LeafAddN(b, 5)
    flatc_leaf = L.LeafEnd(b)
    s = b.CreateString("s by flatc")
    generated_leaf = af.build_Leaf(b, "by generated", 6)
    root = af.build_All(b, s=s, leaf=flatc_leaf, leaves=[generated_leaf, flatc_leaf])
    b.Finish(root, b"ALLF")
    data = bytes(b.Output())
    verify(af, data)
    m = All.GetRootAs(data, 0)
    assert m.S() == b"s by flatc" and m.Leaf().Text() == b"by flatc"
    assert [m.Leaves(i).Text() for i in range(2)] == [b"by generated", b"by flatc"]
    b = Builder(0)
    with pytest.raises(ValueError, match="while a flatc table, vector or string is being built"):
        L.LeafStart(b)
        af.build_Leaf(b, "x")


def test_verifier_rejects_truncation_and_deep_nesting(af: ModuleType) -> None:
    from af.All import All

    data = finished(af, build_everything, af)
    for n in range(len(data)):
        try:
            verify(af, data[:n])
        except _fbgen.VerifyError:
            continue
        # Only a cut through trailing padding can still verify, and then it reads the same.
        assert read_all(All.GetRootAs(data[:n], 0)) == EXPECTED, n
    assert sum(1 for n in range(len(data)) if _rejects(af, data[:n])) >= len(data) - 8
    deep_ok = finished(af, lambda b: af.build_All(b, s="x", node=node_chain(af, b, 60)))
    verify(af, deep_ok)
    too_deep = finished(af, lambda b: af.build_All(b, s="x", node=node_chain(af, b, 70)))
    with pytest.raises(_fbgen.VerifyError, match="af.Node: tables nested deeper than 64"):
        verify(af, too_deep)
    with pytest.raises(_fbgen.VerifyError, match="file identifier b'XXXX', expected b'ALLF'"):
        verify(af, data[:4] + b"XXXX" + data[8:])


def _rejects(af: ModuleType, data: bytes) -> bool:
    try:
        verify(af, data)
    except _fbgen.VerifyError:
        return True
    return False


def test_fuzzed_messages_either_fail_verification_or_read_cleanly(af: ModuleType) -> None:
    """The verifier's contract: a message it passes reads without an exception, whatever its bytes."""
    from af.All import All

    rng = random.Random(1234)
    data = finished(af, build_everything, af)
    rejected = 0
    for _ in range(3000):
        bad = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            bad[rng.randrange(len(bad))] = rng.randrange(256)
        if _rejects(af, bytes(bad)):
            rejected += 1
            continue
        read_all(All.GetRootAs(bytes(bad), 0))  # must not raise
    assert rejected > 300  # most flips of offsets and sizes are caught


def test_typed_topic_with_generated_builder_and_verifier(af: ModuleType, channel: str) -> None:
    ch = af.AllTopics.all
    assert ch.message.builder is af.build_All and ch.message.verifier is af._verify_af_All
    with ch.Publisher(name=channel) as pub, ch.Subscriber(name=channel) as sub:
        for _ in range(50):  # the adaptive reservation learns the size; frames wrap
            pub.send(build_everything, af)
            with sub.recv(timeout=1000) as m:
                assert read_all(m.msg) == EXPECTED
                assert m.zero_copy
        assert sub.stats().rejected == 0
    # A frame that passes the root check but not the verifier is rejected, naming the field.
    with flatlane.TopicPublisher(channel + "r", type_name=ch.message.type_name,
                                 type_hash=ch.message.type_hash) as raw, ch.Subscriber(name=channel + "r") as sub:
        data = bytearray(finished(af, lambda b: af.build_All(b, s="abc")))
        root = int.from_bytes(data[:4], "little")
        vt = root - int.from_bytes(data[root:root + 4], "little", signed=True)
        s_slot = int.from_bytes(data[vt + 4 + 2 * 12:vt + 6 + 2 * 12], "little")
        s_at = root + s_slot
        data[s_at:s_at + 4] = (len(data) * 4).to_bytes(4, "little")  # the string's offset runs off the end
        raw.send(bytes(data))
        with pytest.raises(flatlane.CorruptMessageError, match=r"af\.All\.s: offset points to \d+, outside"):
            sub.recv(timeout=1000)
        assert sub.stats().rejected == 1
    assert typed.VerifyError is _fbgen.VerifyError


def test_generated_builder_in_growing_frames_chunks_and_duplex_regrowth(gen: ModuleType, channel: str) -> None:
    """The frame builders move a message that outgrows its reservation (one-to-one channel: a larger
    frame, then heap memory and chunks; duplex: a larger frame) while build_Blob writes into them."""
    from typed_content import blob_bytes, check_blob, checksum

    spec = typed.ChannelSpec(name=channel, ring_capacity=1 << 16, max_message=1 << 20, chunk_size=8192)
    blob = gen.MESSAGES["fltest.Blob"]
    sizes = [10, 3000, 20_000, 200_000, 0, 5000]
    with typed.Sender.of(spec, blob)(mode="create", send_timeout=10_000) as tx, \
            typed.Receiver.of(spec, blob)(mode="open") as rx:
        checked: List[str] = []

        def receive() -> None:  # the 200 KB message streams through the 64 KiB ring in chunks
            for i, n in enumerate(sizes):
                with rx.recv(timeout=10_000) as m:
                    checked.append(check_blob(m.msg, i, n))

        t = threading.Thread(target=receive, daemon=True)
        t.start()
        for i, n in enumerate(sizes):
            data = blob_bytes(i, n)
            assert tx.send(gen.build_Blob, i, data, checksum(data))
        t.join(30)
        assert checked == [""] * len(sizes)
        st = tx.stats()
        assert st.regrown > 0 and st.chunked == 1 and st.sent == len(sizes)
    ch = gen.Inplace.invert
    with ch.Client(name=channel + "d") as client, ch.Server(name=channel + "d", mode="open") as server:
        for i, n in enumerate([10, 5000, 20_000, 300]):
            data = blob_bytes(i, n)
            seq = client.send(gen.build_Blob, i, data, checksum(data))
            with server.receive(timeout=1000) as call:
                assert call.msg.Id() == i and call.msg.DataLength() == n
                call.respond()
            with client.receive(timeout=1000) as reply:
                assert reply.seq == seq and check_blob(reply.msg, i, n) == ""
        assert client.stats().regrown >= 2


def test_send_passes_keyword_fields_to_the_builder(gen: ModuleType, channel: str) -> None:
    """Every typed send forwards keyword arguments: the generated builder takes fields by name."""
    with gen.Samples.samples.Publisher(name=channel) as pub, gen.Samples.samples.Subscriber(name=channel) as sub:
        assert pub.send(gen.build_Sample, id=7, label="seven", values=[1.0, 2.0])
        with sub.recv(timeout=1000) as m:
            assert (m.msg.Id(), m.msg.Label(), m.msg.ValuesAsNumpy().tolist()) == (7, b"seven", [1.0, 2.0])
            assert m.msg.Position() is None
    with gen.Calc.Add.Server(name=channel + "s") as server, gen.Calc.Add.Client(name=channel + "s") as client:
        rid = client.send(gen.build_AddRequest, a=2, b_=40)
        with server.receive(timeout=1000) as req:
            server.reply(req, gen.build_AddReply, sum=req.msg.A() + req.msg.B())
        with client.receive(rid, timeout=1000) as rep:
            assert rep.msg.Sum() == 42

