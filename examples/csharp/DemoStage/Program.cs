// The README's demo, C# stage: demo.Ping messages from the Python stage, patched and passed on to
// the C++ driver (schema/examples/demo.fbs).
//
//   dotnet DemoStage.dll --ir demo.ir.json [--count N] [--prefix P] [--startup-timeout SECONDS]
//
// The demo's channels are pipelines: push/pull work queues (the runtime's topics with
// Distribution.WorkQueue), as the generated C++ and Python Pusher/Puller use them. For each of the
// N messages on demo.Demo.forward it loans a slot of demo.Demo.replies, copies the FlatBuffer into
// it, bumps `hops` and writes `trace.csharp_ns` in place there, and publishes the slot. Then it
// exits: 0 when all N went through, 1 otherwise.
//
// There are no generated C# endpoints yet: this program reads what it needs from the IR that
// flatlane-gen --dump-ir writes for the schema (type name and hash, channel settings, each field's
// vtable slot and each struct field's offset) and reads and patches the FlatBuffer by hand. The
// type identity must be the schema's: a wrong name or hash makes the attach fail with TypeMismatch.
// Generated C# endpoints and accessors (issue 6) will replace the IR reading and the hand-written
// FlatBuffer access below.
using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Text.Json;
using Flatlane;

namespace DemoStage;

/// <summary>What this stage needs to know about the schema, read from flatlane-gen's IR.</summary>
internal sealed record Schema(
    string TypeName, ulong TypeHash,
    ChannelSpec Forward, ChannelSpec Replies,
    int SeqSlot, int HopsSlot, int TraceSlot, int TraceCsharpNsOffset)
{
    public static Schema Load(string irPath)
    {
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(irPath));
        JsonElement ir = doc.RootElement;
        JsonElement message = Find(ir, "messages", "demo.Ping");
        JsonElement ping = Find(ir, "tables", "demo.Ping");
        JsonElement trace = Find(ir, "structs", "demo.Trace");
        JsonElement service = Find(ir, "services", "demo.Demo");
        string hash = message.GetProperty("type_hash").GetString()!;
        return new Schema(
            message.GetProperty("type_name").GetString()!,
            ulong.Parse(hash.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture),
            ChannelSpec.From(Find(service, "channels", "forward")),
            ChannelSpec.From(Find(service, "channels", "replies")),
            Offset(ping, "seq"), Offset(ping, "hops"), Offset(ping, "trace"),
            Offset(trace, "csharp_ns"));
    }

    // A table field's "offset" is its vtable slot (4 + 2 * id); a struct field's, its byte offset.
    private static int Offset(JsonElement type, string field) =>
        Find(type, "fields", field).GetProperty("offset").GetInt32();

    private static JsonElement Find(JsonElement parent, string array, string name)
    {
        foreach (JsonElement e in parent.GetProperty(array).EnumerateArray())
            if (e.GetProperty("name").GetString() == name) return e;
        throw new InvalidDataException($"the IR has no {array} entry '{name}'");
    }
}

/// <summary>A channel as the schema declares it.</summary>
internal sealed record ChannelSpec(string Name, long RingCapacity, long MaxMessage, WaitStrategy Wait)
{
    public static ChannelSpec From(JsonElement c) => new(
        c.GetProperty("qualified_name").GetString()!,
        c.GetProperty("ring_capacity").GetInt64(),
        c.GetProperty("max_message").GetInt64(),
        c.GetProperty("wait").GetString() switch
        {
            "busy_spin" => WaitStrategy.BusySpin,
            "blocking" => WaitStrategy.Blocking,
            _ => WaitStrategy.SpinThenSleep,
        });

    // The work queue exactly as the generated C++ and Python endpoints map a pipeline's schema
    // settings (runtime/cpp/include/flatlane/typed/topic_endpoints.hpp), so whichever process
    // creates it makes the same segment: slot = max_message (64 KiB for the 4 GiB default),
    // ring_capacity / slot slots per publisher (8 to 4096), subscribers block publishers.
    public TopicOptions Options(Schema s)
    {
        long slot = MaxMessage >= 1L << 32 ? 64 * 1024 : Math.Clamp(MaxMessage, 64, 1 << 30);
        slot = (slot + 63) & ~63L;
        return new TopicOptions
        {
            SlotSize = (int)slot,
            SlotCount = (int)Math.Clamp(RingCapacity / slot, 8, 4096),
            MaxPublishers = 4,
            MaxSubscribers = 32,
            QueueDepth = 32,
            MaxHeld = 16,
            Distribution = Distribution.WorkQueue,
            Wait = Wait,
            TypeName = s.TypeName,
            TypeHash = s.TypeHash,
            SubscriberMode = SubscriberMode.BlockPublisher,
            BlockTimeout = TimeSpan.FromSeconds(10),
        };
    }
}

/// <summary>
/// Just enough FlatBuffers to find a scalar field of the root table, with every offset checked
/// against the buffer: root offset, vtable, field slot. Returns -1 when the field is absent (it
/// holds its default) and throws InvalidDataException when the buffer is malformed.
/// </summary>
internal static class FlatBuffer
{
    public static int Field(ReadOnlySpan<byte> buf, int vtableSlot, int size)
    {
        if (buf.Length < 8) throw new InvalidDataException($"{buf.Length} bytes: too short for a FlatBuffer");
        uint root = BinaryPrimitives.ReadUInt32LittleEndian(buf);
        if (root < 4 || root > buf.Length - 4 || (root & 3) != 0)
            throw new InvalidDataException($"root offset {root} outside the {buf.Length}-byte message");
        int table = (int)root;
        long vtable = table - (long)BinaryPrimitives.ReadInt32LittleEndian(buf[table..]);
        if (vtable < 0 || vtable > buf.Length - 4 || (vtable & 1) != 0)
            throw new InvalidDataException($"vtable at {vtable} outside the message");
        int vt = (int)vtable;
        int vtSize = BinaryPrimitives.ReadUInt16LittleEndian(buf[vt..]);
        int tableSize = BinaryPrimitives.ReadUInt16LittleEndian(buf[(vt + 2)..]);
        if (vtSize < 4 || vt + vtSize > buf.Length || table + tableSize > buf.Length)
            throw new InvalidDataException("vtable or table runs past the message");
        if (vtableSlot + 2 > vtSize) return -1;  // written by an older schema: the default
        int off = BinaryPrimitives.ReadUInt16LittleEndian(buf[(vt + vtableSlot)..]);
        if (off == 0) return -1;
        if (off + size > tableSize) throw new InvalidDataException($"field at {off} runs past its table");
        return table + off;
    }
}

internal static class Program
{
    private static int Main(string[] args)
    {
        string? ir = null, prefix = "";
        int count = 11000;
        double startup = 60;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--ir": ir = args[i + 1]; break;
                case "--count": count = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--prefix": prefix = args[i + 1]; break;
                case "--startup-timeout": startup = double.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                default: ir = null; i = args.Length; break;
            }
        }
        if (ir is null || args.Length % 2 != 0 || count <= 0)
        {
            Console.Error.WriteLine("usage: DemoStage --ir demo.ir.json [--count N] [--prefix P] [--startup-timeout SECONDS]");
            return 2;
        }
        try
        {
            return Run(Schema.Load(ir), count, prefix, TimeSpan.FromSeconds(startup));
        }
        catch (FlatlaneException e)  // attach failures (TypeMismatch, Busy, ...), timeouts, a peer gone
        {
            Console.Error.WriteLine($"C# stage: {e.ErrorCode}: {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or JsonException)
        {
            Console.Error.WriteLine($"C# stage: {e.GetType().Name}: {e.Message}");
            return 1;
        }
    }

    private static string Segment(string prefix, ChannelSpec c) => prefix.Length == 0 ? c.Name : $"{prefix}.{c.Name}";

    // CLOCK_MONOTONIC nanoseconds (what Stopwatch reads on Linux), like C++ steady_clock and
    // Python time.monotonic_ns.
    private static long NowNs() => (long)((Int128)Stopwatch.GetTimestamp() * 1_000_000_000 / Stopwatch.Frequency);

    private static int Run(Schema s, int count, string prefix, TimeSpan startup)
    {
        using var inbox = new TopicSubscriber(Segment(prefix, s.Forward), s.Forward.Options(s));  // a puller
        using var outbox = new TopicPublisher(Segment(prefix, s.Replies), s.Replies.Options(s));  // a pusher
        var busy = new List<double>(count);
        string? first = null;
        for (int i = 0; i < count; i++)
        {
            using Sample m = inbox.Receive(i == 0 ? startup : TimeSpan.FromSeconds(10));
            long csharpNs = NowNs();
            ReadOnlySpan<byte> data = m.Data;
            int seqAt = FlatBuffer.Field(data, s.SeqSlot, 8);
            int hopsAt = FlatBuffer.Field(data, s.HopsSlot, 1);
            int traceAt = FlatBuffer.Field(data, s.TraceSlot, 16);
            ulong seq = seqAt < 0 ? 0 : BinaryPrimitives.ReadUInt64LittleEndian(data[seqAt..]);
            // In place means the fields must be there: the Python stage always writes hops (>= 1)
            // and the trace struct.
            if (hopsAt < 0 || data[hopsAt] != 1 || traceAt < 0)
            {
                Console.Error.WriteLine($"C# stage: message {seq} has hops {(hopsAt < 0 ? 0 : data[hopsAt])} " +
                                        $"and {(traceAt < 0 ? "no" : "a")} trace; expected hops 1 and a trace from Python");
                return 1;
            }

            Span<byte> slot = outbox.Loan(data.Length, TimeSpan.FromSeconds(10));
            data.CopyTo(slot);  // the only copy in the round: this stage has no FlatBuffers builder
            slot[hopsAt] += 1;
            BinaryPrimitives.WriteInt64LittleEndian(slot[(traceAt + s.TraceCsharpNsOffset)..], csharpNs);
            outbox.Publish(data.Length);
            busy.Add((NowNs() - csharpNs) / 1e3);
            first ??= $"seq {seq}: {data.Length} bytes, hops 1 -> 2, trace.csharp_ns written in the loaned slot";
        }
        busy.Sort();
        Console.WriteLine($"C# stage: patched {count} pings, forward -> replies (work queues: TopicSubscriber/TopicPublisher, type {s.TypeName} " +
                          $"hash 0x{s.TypeHash:x16} from the IR)");
        Console.WriteLine($"  {first}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  receive to committed (copy + patch) p50 {busy[busy.Count / 2]:F1} us"));
        return 0;
    }
}
