// C# request/reply and in-place duplex latency, measured as bench/pattern_cases.cpp
// (service/rtt-busy) and bench/duplex_cases.cpp (duplex/inplace) measure C++: a ping-pong between
// two C# processes, busy-spin, the payload written in place by the sender and checked in place by
// the receiver, one clock read per round trip, one-way = round trip / 2. Beside them the C++
// figures of the same cases from flatlane_bench.
//
//   (internal) Flatlane.Bench sserve NAME SIZE COUNT   the service server child
//   (internal) Flatlane.Bench dserve NAME SIZE COUNT   the duplex server child
using System;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Flatlane.Bench;

internal static class PatternBench
{
    // What a duplex server writes over the request, in place (bench/duplex_cases.cpp answer_word).
    private static long Answer(long seq) => seq | (1L << 62);

    private static void Fill(Span<byte> s, long word) => MemoryMarshal.Cast<byte, long>(s).Fill(word);

    private static bool Check(ReadOnlySpan<byte> s, int size, long word)
    {
        if (s.Length != size) return false;
        long sum = 0;
        foreach (long v in MemoryMarshal.Cast<byte, long>(s)) sum += v;
        return sum == (size / 8) * word;
    }

    private static ServiceOptions ServiceOpts(int size, OpenMode mode) => new()
    {
        Mode = mode, MaxRequest = size, MaxClients = 2, ReplyRing = Program.RingFor(size), Wait = WaitStrategy.BusySpin,
    };

    private static ChannelOptions DuplexOpts(int size, OpenMode mode) => new()
    {
        Mode = mode, RingCapacity = Program.RingFor(size), Wait = WaitStrategy.BusySpin,
    };

    // ---- request/reply: this process calls, a child process serves

    public static long[] ServiceLatency(int size, int iters, int warmup)
    {
        string name = $"cs-bench-{Environment.ProcessId}-svc";
        using Process child = Program.Spawn("sserve", name, Str(size), Str(iters + warmup));
        using var client = OpenClient(name, size, child);
        using Cpus.Pin pin = Cpus.Parent();
        return PingPong(iters, warmup, child, seq =>
        {
            Fill(client.Prepare(size), seq);
            ulong id = client.SendPrepared(size);
            using Reply rep = client.Receive(id);
            return Check(rep.Data, size, seq);
        });
    }

    // The child creates the service; a client can attach once it exists.
    private static ServiceClient OpenClient(string name, int size, Process child)
    {
        var sw = Stopwatch.StartNew();
        for (;;)
        {
            try
            {
                return new ServiceClient(name, ServiceOpts(size, OpenMode.Open));
            }
            catch (FlatlaneException e) when (e.ErrorCode == ErrorCode.NotFound && sw.Elapsed < TimeSpan.FromSeconds(30) && !child.HasExited)
            {
                System.Threading.Thread.Sleep(1);
            }
        }
    }

    public static int ServeService(string name, int size, long count)
    {
        using var server = new ServiceServer(name, ServiceOpts(size, OpenMode.Create));
        bool bad = false;
        for (long seq = 1; seq <= count; seq++)
        {
            using Request req = server.Receive();
            bad |= !Check(req.Data, size, seq);
            Fill(server.PrepareReply(req, size), seq);
            server.CommitReply(size);
        }
        return bad ? 3 : 0;
    }

    // ---- in-place duplex: this process is the client, a child process the server

    public static long[] DuplexLatency(int size, int iters, int warmup)
    {
        string name = $"cs-bench-{Environment.ProcessId}-dx";
        using var client = new DuplexClient(name, DuplexOpts(size, OpenMode.Create));
        using Process child = Program.Spawn("dserve", name, Str(size), Str(iters + warmup));
        Program.WaitAttached(() => client.PeerAttached, child);
        using Cpus.Pin pin = Cpus.Parent();
        return PingPong(iters, warmup, child, seq =>
        {
            Fill(client.Reserve(size), seq);
            client.Commit(size);
            using DuplexResponse rep = client.Receive();
            return Check(rep.Data, size, Answer(seq));
        });
    }

    public static int ServeDuplex(string name, int size, long count)
    {
        using var server = new DuplexServer(name, DuplexOpts(size, OpenMode.Open));
        bool bad = false;
        for (long seq = 1; seq <= count; seq++)
        {
            using DuplexRequest req = server.Receive();
            bad |= !Check(req.Data, size, seq);
            Fill(req.Data, Answer(seq));  // the answer, in place
            req.Respond();
        }
        return bad ? 3 : 0;
    }

    private static long[] PingPong(int iters, int warmup, Process child, Func<long, bool> roundTrip)
    {
        long[] rtt = Program.SampleBuffer(iters);
        bool bad = false;
        long prev = Stopwatch.GetTimestamp();
        for (long seq = 1; seq <= iters + warmup; seq++)
        {
            bad |= !roundTrip(seq);
            long now = Stopwatch.GetTimestamp();
            if (seq > warmup) rtt[seq - warmup - 1] = now - prev;
            prev = now;
        }
        child.WaitForExit();
        if (bad || child.ExitCode != 0) throw new InvalidOperationException($"ping-pong failed (payload ok: {!bad}, child exit {child.ExitCode})");
        double nsPerTick = 1e9 / Stopwatch.Frequency;
        for (int i = 0; i < rtt.Length; i++) rtt[i] = (long)(rtt[i] * nsPerTick);
        Array.Sort(rtt);
        return rtt;
    }

    private static string Str(long v) => v.ToString(CultureInfo.InvariantCulture);
}
