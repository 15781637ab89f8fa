"""The IR of schema/examples/robot_cell.fbs."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import EXAMPLES, SCHEMA_DIR, check_golden

from flatlane_gen import ir
from flatlane_gen.ir import ChannelKind, Overflow, Streaming, TypeKind, Wait


def channel(schema: ir.Schema, qualified: str) -> ir.Channel:
    return next(c for c in schema.channels if c.qualified_name == qualified)


def test_services_and_patterns(example_schema: ir.Schema) -> None:
    assert [(s.name, s.pattern) for s in example_schema.services] == [
        ("robot.ArmTopics", ChannelKind.TOPIC),
        ("robot.Control", ChannelKind.SERVICE),  # no flatlane_pattern: request/reply
        ("robot.ImageFilter", ChannelKind.DUPLEX),
        ("robot.Planners", ChannelKind.PIPELINE),
    ]
    # Methods keep declaration order.
    assert [c.name for c in example_schema.service("robot.Control").channels] == [
        "SetMode", "GetStatus", "PlanTrajectory"]


def test_topic_channels(example_schema: ir.Schema) -> None:
    cmd = channel(example_schema, "robot.ArmTopics.commands")
    assert (cmd.kind, cmd.message, cmd.request, cmd.response) == (
        ChannelKind.TOPIC, "robot.Command", None, None)
    assert cmd.ring_capacity == 256 * 1024             # from the service
    assert cmd.overflow is Overflow.BLOCK              # method overrides the service
    assert cmd.wait is Wait.SPIN_THEN_SLEEP            # default
    assert cmd.max_message == 1 << 32 and cmd.chunk_size == 0
    assert cmd.documentation == (" Motion commands; never dropped.",)
    tel = channel(example_schema, "robot.ArmTopics.telemetry")
    assert (tel.overflow, tel.wait) == (Overflow.DROP_OLDEST, Wait.BUSY_SPIN)


def test_service_channels(example_schema: ir.Schema) -> None:
    set_mode = channel(example_schema, "robot.Control.SetMode")
    assert (set_mode.request, set_mode.response, set_mode.streaming, set_mode.max_message) == (
        "robot.SetModeRequest", "robot.SetModeReply", Streaming.NONE, 64 * 1024)
    assert channel(example_schema, "robot.Control.GetStatus").request == ir.VOID
    plan = channel(example_schema, "robot.Control.PlanTrajectory")
    assert (plan.response, plan.streaming) == ("robot.Waypoint", Streaming.SERVER)


def test_pipeline_and_duplex_channels(example_schema: ir.Schema) -> None:
    results = channel(example_schema, "robot.Planners.results")
    assert (results.message, results.max_message, results.chunk_size, results.ring_capacity,
            results.wait) == ("robot.PlanResult", 16 << 20, 1 << 20, 8 << 20, Wait.BLOCKING)
    blur = channel(example_schema, "robot.ImageFilter.blur")
    assert (blur.kind, blur.request, blur.response, blur.message) == (
        ChannelKind.DUPLEX, "robot.Image", "robot.Image", None)
    assert (blur.max_message, blur.ring_capacity) == (12 << 20, 32 << 20)
    assert channel(example_schema, "robot.ImageFilter.sharpen").wait is Wait.BUSY_SPIN


def test_messages(example_schema: ir.Schema) -> None:
    assert [m.name for m in example_schema.messages] == sorted([
        "flatlane.Void", "robot.Command", "robot.Image", "robot.PlanJob", "robot.PlanResult",
        "robot.SetModeReply", "robot.SetModeRequest", "robot.Status", "robot.Telemetry",
        "robot.TrajectoryRequest", "robot.Waypoint"])
    command = example_schema.message("robot.Command")
    assert command.file_identifier == "RBC1"  # root_type of the root file
    assert example_schema.message("robot.Image").file_identifier is None
    assert command.type_name == "robot.Command"
    assert [(f.id, f.name) for f in command.table.fields] == [
        (0, "header"), (1, "target"), (2, "speed"), (3, "mode"), (4, "joints")]
    f = {x.name: x for x in command.table.fields}
    assert f["speed"].type == ir.TypeRef(TypeKind.SCALAR, scalar="float")
    assert f["speed"].default == 0.5
    assert f["mode"].type == ir.TypeRef(TypeKind.ENUM, scalar="ubyte", name="robot.Mode")
    assert f["mode"].default == 1
    assert f["target"].type == ir.TypeRef(TypeKind.STRUCT, name="common.Pose")
    assert f["header"].type == ir.TypeRef(TypeKind.TABLE, name="common.Header")
    assert f["joints"].type == ir.TypeRef(
        TypeKind.VECTOR, element=ir.TypeRef(TypeKind.SCALAR, scalar="double"))
    assert f["header"].default is None and not f["header"].optional


def test_types(example_schema: ir.Schema) -> None:
    union = example_schema.definition("robot.PlanInput")
    assert isinstance(union, ir.Union)
    assert [(m.name, m.value, m.type and m.type.name) for m in union.members] == [
        ("NONE", 0, None), ("Waypoint", 1, "robot.Waypoint"), ("Command", 2, "robot.Command")]
    job = example_schema.definition("robot.PlanJob")
    assert isinstance(job, ir.Table)
    fields = {f.name: f for f in job.fields}
    assert fields["input_type"].type == ir.TypeRef(TypeKind.UNION_TYPE, scalar="ubyte",
                                                   name="robot.PlanInput")
    assert fields["input"].type == ir.TypeRef(TypeKind.UNION, name="robot.PlanInput")
    assert fields["deadline_ns"].optional and fields["deadline_ns"].default is None
    pose = example_schema.definition("common.Pose")
    assert isinstance(pose, ir.Struct) and (pose.bytesize, pose.minalign) == (56, 8)
    mode = example_schema.definition("robot.Mode")
    assert isinstance(mode, ir.Enum) and mode.underlying == "ubyte"
    assert [v.name for v in mode.values] == ["Idle", "Manual", "Auto"]
    header = example_schema.definition("common.Header")
    assert header is not None and Path(header.declaration_file).name == "common.fbs"


def test_files_closure(example_schema: ir.Schema) -> None:
    files = {f.path: f.includes for f in example_schema.files}
    root = str(EXAMPLES / "robot_cell.fbs")
    assert example_schema.root_file == root
    assert set(files) == {root, str(EXAMPLES / "common.fbs"), str(SCHEMA_DIR / "flatlane.fbs")}
    assert set(files[root]) == {str(EXAMPLES / "common.fbs"), str(SCHEMA_DIR / "flatlane.fbs")}
    assert example_schema.flatc_version == "2.0.8"


def test_ir_json_golden(example_schema: ir.Schema) -> None:
    text = json.dumps(example_schema.to_json(), indent=2, ensure_ascii=False) + "\n"
    json.loads(text)  # strict JSON
    check_golden("robot_cell.ir.json", text)
