// The README's demo, C# stage: demo.Ping messages from the Python stage, rebuilt and passed on to
// the C++ driver (schema/examples/demo.fbs).
//
//   dotnet DemoStage.dll [--count N] [--prefix P] [--startup-timeout SECONDS]
//
// Everything schema-specific here is generated C# (flatlane-gen --lang csharp, run by
// Flatlane.Generator.targets at build time): the demo.Demo.forward Puller and demo.Demo.replies
// Pusher (pipelines: push/pull work queues, as in C++ and Python), the verified zero-copy
// demo.Ping view over the received slot, and the Ping builder writing into the loaned slot of
// the replies queue. For each of the N messages it builds a new Ping with hops + 1 and its own
// CLOCK_MONOTONIC stamp in trace.csharp_ns, and publishes it; then it exits: 0 when all N went
// through, 1 otherwise. Attaching checks the type identity: a channel of another demo.Ping (other
// hash) fails with TypeMismatch.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using demo;
using Flatlane;
using Flatlane.FlatBuffers;

namespace DemoStage;

internal static class Program
{
    private static int Main(string[] args)
    {
        string prefix = "";
        int count = 11000;
        double startup = 60;
        bool ok = args.Length % 2 == 0;
        for (int i = 0; ok && i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--count": count = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--prefix": prefix = args[i + 1]; break;
                case "--startup-timeout": startup = double.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                default: ok = false; break;
            }
        }
        if (!ok || count <= 0)
        {
            Console.Error.WriteLine("usage: DemoStage [--count N] [--prefix P] [--startup-timeout SECONDS]");
            return 2;
        }
        try
        {
            return Run(count, prefix, TimeSpan.FromSeconds(startup));
        }
        catch (FlatlaneException e)  // attach failures (TypeMismatch, Busy, ...), timeouts, a peer gone, Corrupt
        {
            Console.Error.WriteLine($"C# stage: {e.ErrorCode}: {e.Message}");
            return 1;
        }
    }

    private static string Segment(string prefix, string name) => prefix.Length == 0 ? name : $"{prefix}.{name}";

    // CLOCK_MONOTONIC nanoseconds (what Stopwatch reads on Linux), like C++ steady_clock and
    // Python time.monotonic_ns.
    private static long NowNs() => (long)((Int128)Stopwatch.GetTimestamp() * 1_000_000_000 / Stopwatch.Frequency);

    private static int Run(int count, string prefix, TimeSpan startup)
    {
        using var inbox = new Demo.Forward.Puller(Segment(prefix, Demo.Forward.Name));
        using var outbox = new Demo.Replies.Pusher(Segment(prefix, Demo.Replies.Name));
        var busy = new List<double>(count);
        string? first = null;
        for (int i = 0; i < count; i++)
        {
            using var m = inbox.Receive(i == 0 ? startup : TimeSpan.FromSeconds(10));  // verified, in the slot
            long csharpNs = NowNs();
            Ping p = m.Message;
            if (p.Hops != 1 || !p.HasTrace)
            {
                Console.Error.WriteLine($"C# stage: message {p.Seq} has hops {p.Hops} and {(p.HasTrace ? "a" : "no")} " +
                                        "trace; expected hops 1 and a trace from Python");
                return 1;
            }
            // Built back to front in the loaned slot of the replies queue: strings and vectors are
            // copied from the received slot into the new one, nothing goes through managed memory.
            FbBuilder b = outbox.Begin(TimeSpan.FromSeconds(10));
            StringOffset text = b.CreateString(p.TextUtf8);
            VectorOffset payload = Ping.CreatePayloadVector(b, p.Payload);
            demo.Trace trace = p.Trace;
            trace.CsharpNs = csharpNs;
            var root = Ping.Build(b).Seq(p.Seq).SentNs(p.SentNs).Hops((byte)(p.Hops + 1)).Text(text).Payload(payload)
                           .Trace(trace).End();
            outbox.Publish(root);
            busy.Add((NowNs() - csharpNs) / 1e3);
            first ??= $"seq {p.Seq}: {m.Data.Length} bytes in, hops 1 -> 2, trace.csharp_ns stamped, rebuilt in a replies slot";
        }
        busy.Sort();
        Console.WriteLine($"C# stage: rebuilt {count} pings, forward -> replies (generated demo.Demo.forward Puller and " +
                          $"demo.Demo.replies Pusher, type {Ping.TypeName} hash 0x{Ping.TypeHash:x16})");
        Console.WriteLine($"  {first}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  receive to published (verify + build in the slot) p50 {busy[busy.Count / 2]:F1} us"));
        return 0;
    }
}
