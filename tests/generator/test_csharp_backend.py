"""The C# back end: what it lists, what it writes, and that the code says what the IR says.
(Compiling and running the code is runtime/csharp/Flatlane.Typed.Tests, through
runtime/csharp/Flatlane.Generator.targets.)"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

import pytest
from conftest import DATA, EXAMPLES, REPO

from flatlane_gen import typehash
from flatlane_gen.backends import csharp as csback
from flatlane_gen.cli import main
from flatlane_gen.frontend import load

ROBOT = str(EXAMPLES / "robot_cell.fbs")
TYPED = str(REPO / "tests" / "cpp" / "schema" / "typed_test.fbs")
SINK = str(DATA / "kitchen_sink.fbs")
VOID_CS = REPO / "runtime" / "csharp" / "Flatlane" / "Typed" / "Message.cs"


def gen(out: Path, *extra: str, schema: str = ROBOT) -> int:
    return main(["-I", str(EXAMPLES), "--lang", "csharp", "-o", str(out), *extra, schema])


def test_outputs_listed_are_the_files_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    assert gen(out, "--list-outputs") == 0
    listed = capsys.readouterr().out.split()
    assert not out.exists()
    assert sorted(os.path.basename(p) for p in listed) == [
        "common_generated.cs", "robot_cell.flatlane.cs", "robot_cell_generated.cs"]
    assert gen(out) == 0
    assert sorted(str(p) for p in out.iterdir()) == sorted(listed)


def test_framework_types_are_not_emitted(tmp_path: Path) -> None:
    # flatlane.Void ships with the C# runtime, so two schemas generated into one project share it.
    assert gen(tmp_path) == 0
    for p in tmp_path.iterdir():
        text = p.read_text(encoding="utf-8")
        assert "namespace flatlane\n" not in text
        assert "struct Void" not in text


def test_runtime_void_hash_matches_the_ir() -> None:
    s = load(TYPED)
    h, _ = typehash.type_hash("flatlane.Void", s.definition)
    text = VOID_CS.read_text(encoding="utf-8")
    m = re.search(r"public const ulong Hash = 0x([0-9a-f]+);", text)
    assert m, "runtime Void hash constant not found"
    assert int(m.group(1), 16) == h


def test_every_table_carries_its_type_identity(tmp_path: Path) -> None:
    assert gen(tmp_path) == 0
    s = load(ROBOT, [str(EXAMPLES)])
    text = (tmp_path / "robot_cell_generated.cs").read_text(encoding="utf-8") + \
        (tmp_path / "common_generated.cs").read_text(encoding="utf-8")
    for t in s.tables:
        if t.name == "flatlane.Void":
            continue
        h, _ = typehash.type_hash(t.name, s.definition)
        short = t.name.split(".")[-1]
        block = text[text.index(f"public readonly ref struct {short} :"):]
        assert f'TypeName => "{t.name}";' in block[:2000]
        assert f"TypeHash => 0x{h:016x}UL;" in block[:2000]
    for m in s.messages:  # the IR's message hashes are the tables' hashes
        if m.name != "flatlane.Void":
            assert f"0x{m.type_hash:016x}UL" in text
    # The root type carries the file identifier, no other table does.
    assert text.count('FileIdentifier => "RBC1";') == 1
    cmd = text[text.index("public readonly ref struct Command :"):]
    assert 'FileIdentifier => "RBC1";' in cmd[:2000]


def test_channels_carry_the_schema_settings(tmp_path: Path) -> None:
    assert gen(tmp_path) == 0
    text = (tmp_path / "robot_cell.flatlane.cs").read_text(encoding="utf-8")
    # topic with per-method overflow
    assert "public static class ArmTopics" in text
    assert ('Name, global::Flatlane.Typed.ChannelKind.Topic, 262144L, 4294967296L, 0L,\n'
            '                global::Flatlane.Typed.Overflow.Block, global::Flatlane.WaitStrategy.SpinThenSleep, Streaming: false);') in text
    assert "class Publisher : global::Flatlane.Typed.TypedPublisher<global::robot.Command>" in text
    assert "class Subscriber : global::Flatlane.Typed.TypedSubscriber<global::robot.Telemetry>" in text
    # pipeline -> pusher/puller on a work queue
    assert "global::Flatlane.Typed.ChannelKind.Pipeline, 8388608L, 16777216L, 1048576L" in text
    assert "class Pusher : global::Flatlane.Typed.TypedPublisher<global::robot.PlanJob>" in text
    assert "class Puller : global::Flatlane.Typed.TypedSubscriber<global::robot.PlanResult>" in text
    # services, streaming from the schema
    assert "class Client : global::Flatlane.Typed.TypedClient<global::robot.SetModeRequest, global::robot.SetModeReply>" in text
    assert "class Server : global::Flatlane.Typed.TypedServer<global::flatlane.Void, global::robot.Status>" in text
    plan = text[text.index("public static class PlanTrajectory"):]
    assert "public const bool Streaming = true;" in plan[:3000]
    setmode = text[text.index("public static class SetMode"):]
    assert "public const bool Streaming = false;" in setmode[:3000]
    # duplex: Client/Server over the in-place duplex endpoints, with the schema's ring and wait
    img = text[text.index("public static class ImageFilter"):]
    assert "no C# endpoints" not in text
    blur = img[img.index("public static class Blur"):img.index("public static class Sharpen")]
    assert ('Name, global::Flatlane.Typed.ChannelKind.Duplex, 33554432L, 12582912L, 0L,\n'
            '                global::Flatlane.Typed.Overflow.Block, global::Flatlane.WaitStrategy.SpinThenSleep') in blur
    assert "class Client : global::Flatlane.Typed.TypedDuplexClient<global::robot.Image>" in blur
    assert "class Server : global::Flatlane.Typed.TypedDuplexServer<global::robot.Image>" in blur
    assert ("public static global::robot.Image.Mutable Mutable(in global::Flatlane.Typed.InPlaceCall<global::robot.Image> call)"
            " => global::robot.Image.Mutable.GetRoot(call.Data);") in blur
    sharpen = img[img.index("public static class Sharpen"):]
    assert "global::Flatlane.WaitStrategy.BusySpin" in sharpen[:1500]
    assert "TypedDuplexClient<global::robot.Image>" in sharpen


def test_kitchen_sink_every_kind_of_field(tmp_path: Path) -> None:
    assert main(["--lang", "csharp", "-o", str(tmp_path), SINK]) == 0
    text = (tmp_path / "kitchen_sink_generated.cs").read_text(encoding="utf-8")
    assert "[global::System.Flags]\n    public enum Flags : uint" in text
    assert "Neg = (short)(-3)," in text
    assert "[global::System.Runtime.InteropServices.StructLayout(global::System.Runtime.InteropServices.LayoutKind.Explicit, Size = 16)]\n    public struct Aligned" in text
    assert "public const int Alignment = 16;" in text
    assert "public const int ValuesLength = 3;" in text          # [int:3] in a struct
    assert "public int? Opt =>" in text                           # optional scalar
    assert "Fb.Scalar<double>(_buf, _pos, 10, double.NegativeInfinity)" in text
    assert "Fb.Scalar<long>(_buf, _pos, 1, -9000000000L)" in text
    assert "Fb.Bool(_buf, _pos, 0, true)" in text
    assert "Fb.Scalar<global::ks.inner.Flags>(_buf, _pos, 17, (global::ks.inner.Flags)3U)" in text
    assert "public global::ks.Leaf.Vector Leaves" in text
    assert "public global::Flatlane.FlatBuffers.StringVector Strings" in text
    assert "public global::ks.Leaf ChoiceAsOther =>" in text      # two members of one type
    assert "public global::ks.inner.Aligned ChoiceAsInnerAligned =>" in text  # struct in a union
    assert "ks.Sink.s is required" in text                       # required check in End()
    assert "Old" not in re.findall(r"public \S+ (\w+) =>", text)  # deprecated: no accessor
    assert 'FileIdentifier => "KSNK";' in text
    # nested_flatbuffer: verified as the nested type, readable as its root
    assert "global::ks.Leaf.VerifyTable(ref nv, nr)" in text
    assert "public global::ks.Leaf NestedAsRoot => global::ks.Leaf.GetRoot(Nested);" in text
    # the in-place view: Mutate<Field> for stored scalars, enums and structs, writable spans for
    # vectors of scalars / structs and strings, sub-tables' Mutable; nothing for unions or table vectors
    mut = text[text.index("public readonly ref struct Sink :"):]
    mut = mut[mut.index("public readonly ref struct Mutable"):]
    mut = mut[:mut.index("\n        }\n")]
    assert "public static Mutable GetRoot(global::System.Span<byte> buffer)" in mut
    assert "public Sink View => new(_buf, _pos);" in mut
    assert "public bool MutateB(bool value) => global::Flatlane.FlatBuffers.Fb.TryMutate<byte>(_buf, _pos, 0, value ? (byte)1 : (byte)0);" in mut
    assert "public bool MutateI64(long value) => global::Flatlane.FlatBuffers.Fb.TryMutate<long>(_buf, _pos, 7, (long)value);" in mut
    assert "public bool MutateFlags(global::ks.inner.Flags value) => global::Flatlane.FlatBuffers.Fb.TryMutate<uint>(" in mut
    assert "public bool MutateAligned(in global::ks.inner.Aligned value)" in mut
    assert "public global::System.Span<byte> SUtf8 => global::Flatlane.FlatBuffers.Fb.MutableString(_buf, _pos, 12);" in mut
    assert "public global::ks.Leaf.Mutable Leaf => new(_buf, global::Flatlane.FlatBuffers.Fb.Ref(_buf, _pos, 13));" in mut
    assert "public global::System.Span<global::ks.inner.Signed> Signeds => global::Flatlane.FlatBuffers.Fb.MutableVector<" in mut
    assert "Leaves" not in mut and "Strings" not in mut and "Choice" not in mut
    # the verifier covers each kind
    for call in ("v.StringField(t, 12, true)", "v.VectorField(t, 16, 20, 4, false)",
                 "v.StringVectorField(t, 22, false)", "v.TableVectorField(t, 14, false",
                 "v.Field(t, 15, 16, 16, false)", "global::ks.Leaf.VerifyTable(ref v, p13)",
                 "v.StructAt(p21, 16, 16)"):
        assert call in text, call


def test_keywords_and_name_clashes_are_escaped(write_schema: Callable[..., Path], tmp_path: Path) -> None:
    schema = write_schema("kw.fbs", """
        include "flatlane.fbs";
        namespace event.lock;
        enum class : byte { int, string = 2 }
        struct params { object:int; base:float; }
        table namespace { default:int; end:int; verify:int; Namespace:int; value:class; p:params;
                          mutable:int; view:[ubyte]; }
        table Builder { x:int; }
        rpc_service operator (flatlane_pattern: "topic") { operator(namespace): flatlane.Void; }
        rpc_service in { Builder(Builder): namespace; }
    """)
    assert main(["--lang", "csharp", "-o", str(tmp_path), str(schema)]) == 0
    types = (tmp_path / "kw_generated.cs").read_text(encoding="utf-8")
    ends = (tmp_path / "kw.flatlane.cs").read_text(encoding="utf-8")
    assert "namespace @event.@lock\n" in types
    assert "public enum @class : sbyte" in types
    assert "@int = (sbyte)0," in types and "@string = (sbyte)2," in types
    assert "public struct @params" in types
    assert "public readonly ref struct @namespace : global::Flatlane.Typed.IFlatlaneMessage<@namespace>" in types
    assert "public global::@event.@lock.@class Value =>" in types
    assert "public int Default =>" in types
    assert "public int Verify_ =>" in types                       # would clash with Verify
    assert "public int Mutable_ =>" in types                      # the Mutable view is taken
    assert "public global::System.Span<byte> View_ =>" in types   # Mutable.View is taken
    assert "public int Namespace =>" in types                     # PascalCase is no keyword
    assert "public Builder End_(int value)" in types              # Builder.End is taken
    assert "public readonly ref struct Builder :" in types
    assert "public static class Operator" in ends                 # services are PascalCased
    assert "public static class OperatorChannel" in ends          # may not repeat its class's name
    assert "TypedPublisher<global::@event.@lock.@namespace>" in ends
    assert "public static class In" in ends
    assert "TypedClient<global::@event.@lock.Builder, global::@event.@lock.@namespace>" in ends


def test_types_in_the_framework_namespace_are_refused(write_schema: Callable[..., Path],
                                                      tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    schema = write_schema("fw.fbs", """
        include "flatlane.fbs";
        namespace flatlane;
        table Mine { x:int; }
    """)
    assert main(["--lang", "csharp", "-o", str(tmp_path), str(schema)]) == 1
    assert "the namespace 'flatlane' holds the framework types only" in capsys.readouterr().err


def test_output_is_stable(tmp_path: Path) -> None:
    assert gen(tmp_path / "a") == 0
    assert gen(tmp_path / "b") == 0
    for p in (tmp_path / "a").iterdir():
        assert p.read_bytes() == (tmp_path / "b" / p.name).read_bytes()
        assert str(REPO) not in p.read_text(encoding="utf-8")  # no checkout paths in the output


def test_string_literals_are_escaped() -> None:
    assert csback.csstr('a"b\\c') == '"a\\"b\\\\c"'
    assert csback.csstr("é") == '"\\u00e9"'
    assert csback.literal("float", 0.1) == "0.1f"
    assert csback.literal("double", float("nan")) == "double.NaN"
    assert csback.literal("long", -(1 << 63)) == "long.MinValue"
    assert csback.literal("ubyte", 200) == "(byte)200"
    assert csback.pascal("joint_positions") == "JointPositions"
    assert csback.pascal("u8") == "U8"


def test_vectors_of_unions_get_per_member_accessors_a_verifier_and_a_builder(tmp_path: Path) -> None:
    """`items:[Item]` is two fields: `items_type` (a span of the union enum) and `items` (offsets),
    read per member and verified by each element's type (MessageTests checks them against C++)."""
    schema = REPO / "runtime" / "csharp" / "Flatlane.Typed.Tests" / "schema" / "union_vectors.fbs"
    assert main(["--lang", "csharp", "-o", str(tmp_path), str(schema)]) == 0
    text = (tmp_path / "union_vectors_generated.cs").read_text()
    assert "public global::System.ReadOnlySpan<global::uv.Item> ItemsType =>" in text
    assert "public int ItemsLength" in text
    for member, cs in (("Text", "global::uv.Text"), ("Num", "global::uv.Num"), ("Pt", "global::uv.Pt")):
        assert f"public {cs} ItemsAs{member}(int i)" in text
    assert "CreateItemsVector(global::Flatlane.FlatBuffers.FbBuilder b, global::System.ReadOnlySpan<int> offsets)" in text
    assert "if (types2.Length != n2) return false;" in text and "if (!v.StructAt(e, 8, 4)) return false;" in text
    # No writable span for the offsets in the Mutable view (the type vector has one).
    assert "Span<global::uv.Item> ItemsType =>" in text and "MutableVector<int>" not in text
