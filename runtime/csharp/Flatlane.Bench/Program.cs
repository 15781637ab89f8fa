// C# latency and throughput over Flatlane channels, measured the way bench/flatlane_cases.cpp
// measures C++ (same ring capacity, payload fill and in-place check, busy-spin, one clock read
// per round trip, one-way = round trip / 2, nearest-rank percentiles), between two C# processes
// pinned to separate CPUs as the C++ bench pins its pairs (Cpus.cs). With the C++ bench program
// available it is run in the same invocation for comparison.
//
//   Flatlane.Bench [--quick] [--size N] [--cpp PATH | --no-cpp] [--rounds R] [--case LABEL]
//   (--rounds: C# and C++ cases alternated R times, ratios at the same moment; 0 skips them)
//   Flatlane.Bench --case LABEL [--rounds R]: only those same-moment rounds, for the cases whose
//   label contains LABEL ("raw channel", "typed topic", "service", "duplex", "tput"; "mixed": the raw
//   and the typed stream with each side in either language, the C++ side being flatlane_bench --peer)
//   Flatlane.Bench --cost | --cost-channel | --cost-split: one thread, nothing waits: ns per
//   typed and raw topic message and per channel frame (compare flatlane_typed_cost), the channel
//   frame alone, or a typed Tick's build / verify / read over plain memory
//   (internal) Flatlane.Bench pong FWD BACK SIZE COUNT
//   (internal) Flatlane.Bench produce NAME SIZE COUNT
//   (internal) Flatlane.Bench tpong FWD BACK PAYLOAD COUNT, tproduce NAME PAYLOAD COUNT
//   (internal) Flatlane.Bench sserve NAME SIZE COUNT, dserve NAME SIZE COUNT (PatternBench.cs)
//
// Typed cases (TypedBench.cs): 64 B Tick messages over the endpoints generated for
// bench/schema/bench.fbs, as bench/typed_cases.cpp; beside them the C++ `--only typed` figures.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;

namespace Flatlane.Bench;

internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] is "pong" or "produce" or "tpong" or "sserve" or "dserve" or "tproduce") Cpus.Child();
        if (args.Length > 0 && args[0] == "pong") return Pong(args[1], args[2], Int(args[3]), long.Parse(args[4], CultureInfo.InvariantCulture));
        if (args.Length > 0 && args[0] == "produce") return Produce(args[1], Int(args[2]), long.Parse(args[3], CultureInfo.InvariantCulture));
        if (args.Length > 0 && args[0] == "tpong") return TypedBench.Pong(args[1], args[2], Int(args[3]), long.Parse(args[4], CultureInfo.InvariantCulture));
        if (args.Length > 0 && args[0] == "sserve") return PatternBench.ServeService(args[1], Int(args[2]), long.Parse(args[3], CultureInfo.InvariantCulture));
        if (args.Length > 0 && args[0] == "dserve") return PatternBench.ServeDuplex(args[1], Int(args[2]), long.Parse(args[3], CultureInfo.InvariantCulture));
        if (args.Length > 0 && args[0] == "tproduce") return TypedBench.Produce(args[1], Int(args[2]), long.Parse(args[3], CultureInfo.InvariantCulture));

        bool quick = false;
        int size = 64;
        string? cpp = null;
        bool noCpp = false;
        int rounds = 3;
        string? only = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--quick": quick = true; break;
                case "--size": size = Int(args[++i]); break;
                case "--cpp": cpp = args[++i]; break;
                case "--no-cpp": noCpp = true; break;
                case "--rounds": rounds = Int(args[++i]); break;
                case "--case": only = args[++i]; break;
                case "--cost-channel":
                    var (occ, occa) = ChannelCost(200_000, 30);
                    Console.WriteLine($"C#  cost, one thread, best of 30 x 200000: raw 64 B channel reserve+commit+read+release {occ,6:F1} ns ({occa} B allocated)");
                    return 0;
                case "--cost":
                    var (ct, cr, ca) = TypedBench.Cost(200_000, 7);
                    Console.WriteLine($"C#  cost, one thread, best of 7 x 200000: typed Tick publish+receive {ct,6:F1} ns, raw 64 B topic publish+receive {cr,6:F1} ns ({ca} B allocated)");
                    var (cc, cca) = ChannelCost(200_000, 7);
                    Console.WriteLine($"C#  cost, one thread, best of 7 x 200000: raw 64 B channel reserve+commit+read+release {cc,6:F1} ns ({cca} B allocated)");
                    return 0;
                case "--cost-split":
                    var (sb, sv, sr) = TypedBench.CostSplit(200_000, 7);
                    Console.WriteLine($"C#  typed Tick, one thread: build {sb,6:F1} ns, verify {sv,6:F1} ns, read {sr,6:F1} ns");
                    return 0;
                default:
                    Console.Error.WriteLine($"unknown argument '{args[i]}'");
                    return 2;
            }
        }
        s_quick = quick;
        if (Environment.ProcessorCount < 2)
        {
            Console.Error.WriteLine("busy-spin ping-pong needs two CPUs");
            return 1;
        }
        int iters = quick ? 20_000 : 200_000;
        if (only is not null)
        {
            string? exe = cpp ?? FindCppBench();
            if (exe is null || SizeTag(size).Length == 0)
            {
                Console.Error.WriteLine("--case needs the C++ bench (--cpp PATH) and a size it has (64, 4096, 65536, 1048576)");
                return 2;
            }
            SameMoment(exe, SizeTag(size), size, quick ? 5_000 : 50_000, Math.Max(rounds, 1), only);
            return 0;
        }
        long tputMessages = quick ? 500_000 : 5_000_000;
        Console.WriteLine($"Flatlane C# bench: {size} B payload, busy_spin, ring {RingFor(size)} B, {Environment.ProcessorCount} CPUs, .NET {Environment.Version}");
        Console.WriteLine("latency = one-way = round trip / 2 (payload written in place by the sender, checked in place by the receiver)");

        var lat = Latency(size, iters, Warmup(iters));
        Console.WriteLine($"C#  lat-busy  {size,5} B  p50 {Us(lat, 0.50),7:F3} us  p99 {Us(lat, 0.99),7:F3} us  p99.9 {Us(lat, 0.999),7:F3} us  mean {Mean(lat),7:F3} us  ({iters} round trips)");
        var (mps, gbs) = Throughput(size, tputMessages, WarmupFrames(tputMessages));
        Console.WriteLine($"C#  tput      {size,5} B  {mps / 1e6,7:F2} M msg/s  {gbs,6:F3} GB/s  ({tputMessages} messages)");

        int tickPayload = TypedBench.PayloadFor(TypedBench.Size);
        Console.WriteLine($"typed: flbench.Tick (bench/schema/bench.fbs), {TypedBench.MessageSize(tickPayload)} B FlatBuffer ({tickPayload} B payload), generated topic endpoints, ring 256 KiB, busy_spin, verify {(Environment.GetEnvironmentVariable("FLBENCH_NOVERIFY") is null ? "on" : "off")}");
        var (tlat, tlatAlloc) = TypedBench.Latency(iters, Warmup(iters));
        Console.WriteLine($"C#  typed lat-busy  {TypedBench.Size,5} B  p50 {Us(tlat, 0.50),7:F3} us  p99 {Us(tlat, 0.99),7:F3} us  p99.9 {Us(tlat, 0.999),7:F3} us  mean {Mean(tlat),7:F3} us  ({iters} round trips, {tlatAlloc} B allocated)");
        var (tmps, ttputAlloc) = TypedBench.Throughput(tputMessages, WarmupFrames(tputMessages));
        Console.WriteLine($"C#  typed tput      {TypedBench.Size,5} B  {tmps / 1e6,7:F2} M msg/s  {tmps * TypedBench.Size / 1e9,6:F3} GB/s  ({tputMessages} messages, {ttputAlloc} B allocated)");

        var svc = PatternBench.ServiceLatency(size, iters, Warmup(iters));
        Console.WriteLine($"C#  service rtt-busy {size,5} B  p50 {Us(svc, 0.50),7:F3} us  p99 {Us(svc, 0.99),7:F3} us  p99.9 {Us(svc, 0.999),7:F3} us  mean {Mean(svc),7:F3} us  ({iters} calls; one-way = call / 2)");
        var dx = PatternBench.DuplexLatency(size, iters, Warmup(iters));
        Console.WriteLine($"C#  duplex inplace   {size,5} B  p50 {Us(dx, 0.50),7:F3} us  p99 {Us(dx, 0.99),7:F3} us  p99.9 {Us(dx, 0.999),7:F3} us  mean {Mean(dx),7:F3} us  ({iters} round trips)");

        if (!noCpp)
        {
            cpp ??= FindCppBench();
            if (cpp is null)
            {
                Console.WriteLine("C++ figures: flatlane_bench not found (build with -DFLATLANE_BUILD_BENCH=ON, pass --cpp PATH)");
            }
            else
            {
                string tag = SizeTag(size);
                if (tag.Length == 0)
                {
                    Console.WriteLine($"C++ figures: the C++ bench has no {size} B case");
                }
                else
                {
                    RunCpp(cpp, $"flatlane/lat-busy/{tag}", quick);
                    RunCpp(cpp, $"flatlane/tput/{tag}", quick);
                }
                RunCpp(cpp, "typed", quick);
                if (tag.Length != 0)
                {
                    RunCpp(cpp, $"service/rtt-busy/{tag}", quick);
                    RunCpp(cpp, $"duplex/inplace/{tag}", quick);
                    if (rounds > 0) SameMoment(cpp, tag, size, quick ? 5_000 : 50_000, rounds, null);
                }
            }
        }
        return 0;
    }

    // ---- warm-up: every case starts fresh child processes, whose methods run as tier-0 JIT code
    // (unoptimized, nothing inlined) until tiered compilation has counted their calls (it starts
    // counting ~100 ms after the last tier-0 compile) and compiled tier 1 in the background. C++
    // is compiled ahead of time, and a long-running C# service runs tier-1 code: so each case
    // first runs at least ~0.3 s of traffic, unmeasured, the same on both sides (--quick: 10%).

    private static bool s_quick;

    private const int WarmupRoundTrips = 300_000;   // 0.2-0.6 s at 0.3-1 us one-way
    private const long WarmupMessages = 5_000_000;  // 0.2-0.3 s at 15-30 M msg/s

    internal static int Warmup(int iters) => s_quick ? iters / 10 : Math.Max(iters / 10, WarmupRoundTrips);

    internal static long WarmupFrames(long messages) => s_quick ? messages / 10 : Math.Max(messages / 10, WarmupMessages);

    // ---- latency: this process pings, a child C# process pongs

    // One sample per round trip, every page written before the timed loop: an array this large
    // comes from fresh, untouched pages (the GC does not zero what the kernel zeroes), so
    // without this each 512th sample took a ~2-8 us page fault inside the loop, the p99.9
    // (bench/measure.hpp does the same for C++).
    internal static long[] SampleBuffer(int n)
    {
        var samples = new long[n];
        Array.Fill(samples, -1L);
        return samples;
    }

    private static long[] Latency(int size, int iters, int warmup)
    {
        string baseName = $"cs-bench-{Environment.ProcessId}";
        var opts = new ChannelOptions { Mode = OpenMode.Create, RingCapacity = RingFor(size), Wait = WaitStrategy.BusySpin };
        using var output = new Writer(baseName + "-fwd", opts);
        using var input = new Reader(baseName + "-back", opts);
        using Process child = Spawn("pong", baseName + "-fwd", baseName + "-back", size.ToString(CultureInfo.InvariantCulture),
            (iters + warmup).ToString(CultureInfo.InvariantCulture));
        WaitAttached(() => output.PeerAttached && input.PeerAttached, child);
        using Cpus.Pin pin = Cpus.Parent();

        long[] rtt = SampleBuffer(iters);
        bool bad = false;
        long prev = Stopwatch.GetTimestamp();
        for (long seq = 1; seq <= iters + warmup; seq++)
        {
            Send(output, size, seq);
            bad |= !Receive(input, size, seq);
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

    private static int Pong(string fwd, string back, int size, long count)
    {
        var opts = new ChannelOptions { Mode = OpenMode.Open, Wait = WaitStrategy.BusySpin };
        using var input = new Reader(fwd, opts);
        using var output = new Writer(back, opts);
        bool bad = false;
        for (long seq = 1; seq <= count; seq++)
        {
            bad |= !Receive(input, size, seq);
            Send(output, size, seq);
        }
        return bad ? 3 : 0;
    }

    // ---- throughput: a child C# process writes, this process reads each frame in place

    // cppWriter: the C++ bench's --peer produce writes instead of a C# child.
    private static (double MsgPerSec, double GBPerSec) Throughput(int size, long n, long warmup, string? cppWriter = null)
    {
        string name = $"cs-bench-{Environment.ProcessId}-tput";
        using var input = new Reader(name, new ChannelOptions { Mode = OpenMode.Create, RingCapacity = RingFor(size), Wait = WaitStrategy.BusySpin });
        using Process child = cppWriter is null
            ? Spawn("produce", name, size.ToString(CultureInfo.InvariantCulture), (n + warmup).ToString(CultureInfo.InvariantCulture))
            : StartCppPeer(cppWriter, "produce", name, size, warmup, n);
        using Cpus.Pin pin = Cpus.Parent();
        bool bad = false;
        long seq = 1;
        for (; seq <= warmup; seq++) bad |= !Receive(input, size, seq);
        long t0 = Stopwatch.GetTimestamp();
        for (; seq <= warmup + n; seq++) bad |= !Receive(input, size, seq);
        double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        child.WaitForExit();
        if (bad || child.ExitCode != 0) throw new InvalidOperationException($"throughput run failed (payload ok: {!bad}, child exit {child.ExitCode})");
        return (n / seconds, n * (double)size / seconds / 1e9);
    }

    // The other way round: this process writes, the C++ bench's --peer consume reads and times.
    private static double CppReadsCSharp(string cpp, int size, long n, long warmup)
    {
        string name = $"cs-bench-{Environment.ProcessId}-mixed";
        using var output = new Writer(name, new ChannelOptions { Mode = OpenMode.Create, RingCapacity = RingFor(size), Wait = WaitStrategy.BusySpin });
        using Process child = StartCppPeer(cpp, "consume", name, size, warmup, n, redirect: true);
        Task<string> text = child.StandardOutput.ReadToEndAsync();
        WaitAttached(() => output.PeerAttached, child);
        using Cpus.Pin pin = Cpus.Parent();
        for (long seq = 1; seq <= warmup + n; seq++) Send(output, size, seq);
        return PeerRate(cpp, "consume", child, text);
    }

    // What a C++ --peer consume|tconsume printed once it is done: "msgs_per_s N".
    internal static double PeerRate(string cpp, string role, Process child, Task<string> text)
    {
        child.WaitForExit();
        string line = text.Result.Trim();
        if (child.ExitCode != 0 || !line.StartsWith("msgs_per_s ", StringComparison.Ordinal))
            throw new InvalidOperationException($"{cpp} --peer {role} failed (exit {child.ExitCode}, printed '{line}')");
        return double.Parse(line["msgs_per_s ".Length..], CultureInfo.InvariantCulture);
    }

    internal static Process StartCppPeer(string cpp, string role, string name, int size, long warmup, long count, bool redirect = false)
    {
        var psi = new ProcessStartInfo(cpp) { UseShellExecute = false, RedirectStandardOutput = redirect };
        foreach (string a in new[] { "--peer", role, name, size.ToString(CultureInfo.InvariantCulture),
                                     warmup.ToString(CultureInfo.InvariantCulture), count.ToString(CultureInfo.InvariantCulture) })
            psi.ArgumentList.Add(a);
        return Process.Start(psi) ?? throw new InvalidOperationException($"could not start {cpp}");
    }

    private static int Produce(string name, int size, long count)
    {
        using var output = new Writer(name, new ChannelOptions { Mode = OpenMode.Open, Wait = WaitStrategy.BusySpin });
        for (long seq = 1; seq <= count; seq++) Send(output, size, seq);
        return 0;
    }

    // ---- single-threaded cost of a channel frame: writer and reader in one thread, nothing waits

    private static (double Ns, long Allocated) ChannelCost(int n, int runs)
    {
        string name = $"cs-bench-{Environment.ProcessId}-ccost";
        using var w = new Writer(name, new ChannelOptions { Mode = OpenMode.Create, Wait = WaitStrategy.BusySpin });
        using var r = new Reader(name, new ChannelOptions { Mode = OpenMode.Open, Wait = WaitStrategy.BusySpin });
        double best = double.MaxValue;
        bool bad = false;
        long seq = 1, allocated = 0;
        for (int k = 0; k <= runs; k++)  // run 0 warms up
        {
            if (k == 1) allocated = GC.GetAllocatedBytesForCurrentThread();
            long t0 = Stopwatch.GetTimestamp();
            for (int i = 0; i < n; i++, seq++)
            {
                Send(w, 64, seq);
                bad |= !Receive(r, 64, seq);
            }
            double ns = Stopwatch.GetElapsedTime(t0).TotalNanoseconds / n;
            if (k > 0) best = Math.Min(best, ns);
        }
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        if (bad) throw new InvalidOperationException("channel cost run: a frame read back wrong");
        return (best, allocated);
    }

    // ---- payload: every 8-byte word = seq, summed in place by the receiver (bench/measure.hpp)

    private static void Send(Writer w, int size, long seq)
    {
        Span<byte> s = w.Reserve(size);
        Span<long> words = MemoryMarshal.Cast<byte, long>(s);
        words.Fill(seq);
        w.Commit(size);
    }

    private static bool Receive(Reader r, int size, long seq)
    {
        using Frame f = r.Read();
        if (f.Length != size) return false;
        ReadOnlySpan<long> words = MemoryMarshal.Cast<byte, long>(f.Data);
        long sum = 0;
        foreach (long v in words) sum += v;
        return sum == (size / 8) * seq;
    }

    // ---- helpers

    internal static long RingFor(int size) => Math.Max(256 * 1024, (long)BitOps.Ceil((ulong)(4 * (size + 64))));

    internal static Process Spawn(params string[] args)
    {
        string self = Environment.ProcessPath ?? "dotnet";
        var psi = new ProcessStartInfo(self) { UseShellExecute = false };
        // Under `dotnet Flatlane.Bench.dll` the process is the host: pass the assembly first.
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") psi.ArgumentList.Add(typeof(Program).Assembly.Location);
        foreach (string a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi) ?? throw new InvalidOperationException("cannot start the child process");
    }

    internal static void WaitAttached(Func<bool> attached, Process child)
    {
        var sw = Stopwatch.StartNew();
        while (!attached())
        {
            if (child.HasExited) throw new InvalidOperationException($"child exited early ({child.ExitCode})");
            if (sw.Elapsed > TimeSpan.FromSeconds(30)) throw new TimeoutException("child did not attach");
            Thread.Sleep(1);
        }
    }

    private static string? FindCppBench()
    {
        var dirs = new List<string>();
        if (Environment.GetEnvironmentVariable("FLATLANE_BUILD_DIR") is { Length: > 0 } b) dirs.Add(b);
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent) dirs.Add(Path.Combine(d.FullName, "build"));
        foreach (string dir in dirs)
        {
            string p = Path.Combine(dir, "bench", "flatlane_bench");
            if (File.Exists(p)) return p;
        }
        return null;
    }

    private static void RunCpp(string exe, string only, bool quick)
    {
        var psi = new ProcessStartInfo(exe) { UseShellExecute = false, RedirectStandardOutput = true };
        if (quick) psi.ArgumentList.Add("--quick");
        psi.ArgumentList.Add("--only");
        psi.ArgumentList.Add(only);
        string json = Path.Combine(Path.GetTempPath(), $"flatlane-bench-{Environment.ProcessId}.json");
        psi.ArgumentList.Add("--json");
        psi.ArgumentList.Add(json);
        using Process p = Process.Start(psi)!;
        string text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        File.Delete(json);
        Console.WriteLine($"C++ ({exe}{(quick ? " --quick" : "")} --only {only}):");
        foreach (string line in text.Split('\n'))
        {
            if (line.StartsWith("flatlane ", StringComparison.Ordinal) || line.StartsWith("typed ", StringComparison.Ordinal)
                || line.StartsWith("service ", StringComparison.Ordinal) || line.StartsWith("duplex ", StringComparison.Ordinal))
                Console.WriteLine("    " + line.TrimEnd());
        }
    }

    // ---- C# beside C++ at the same moment: on this kind of VM a whole run can move 3-4x (the two
    // vCPUs are sometimes hyper-thread siblings), so each C# case is followed at once by the same
    // C++ case, several rounds, and the ratios of p50 are reported per round and as a median.

    private static string SizeTag(int size) => size switch { 64 => "64B", 4096 => "4K", 65536 => "64K", 1048576 => "1M", _ => "" };

    // only: run just the cases whose label contains it (--case).
    private static void SameMoment(string cpp, string tag, int size, int iters, int rounds, string? only)
    {
        var cases = new (string Label, Func<long[]> CSharp, string CppId)[]
        {
            ("raw channel", () => Latency(size, iters, Warmup(iters)), $"flatlane/lat-busy/{tag}"),
            ("typed topic", () => TypedBench.Latency(iters, Warmup(iters)).Rtt, "typed/lat-busy/64B"),
            ("service call", () => PatternBench.ServiceLatency(size, iters, Warmup(iters)), $"service/rtt-busy/{tag}"),
            ("duplex in place", () => PatternBench.DuplexLatency(size, iters, Warmup(iters)), $"duplex/inplace/{tag}"),
        };
        Console.WriteLine($"C# / C++ one-way p50, each C# case followed at once by the C++ case ({rounds} rounds, {iters} round trips each):");
        foreach (var (label, cs, id) in cases)
        {
            if (only is not null && !label.Contains(only, StringComparison.Ordinal)) continue;
            var ratios = new List<double>();
            var text = new List<string>();
            for (int r = 0; r < rounds; r++)
            {
                double c = Us(cs(), 0.50);
                double p = CppP50(cpp, id, iters);
                ratios.Add(c / p);
                text.Add($"{c:F3}/{p:F3}");
            }
            ratios.Sort();
            Console.WriteLine($"  {label,-16} {string.Join("  ", text)} us  ratios {string.Join(" ", ratios.ConvertAll(x => x.ToString("F2", CultureInfo.InvariantCulture) + "x"))}  median {ratios[ratios.Count / 2]:F2}x");
        }
        // Throughput the same way: C# beside C++ with as many messages (raw frames: reserve, fill,
        // commit / read, sum in place, release; typed: Tick built in the slot / verified and read);
        // the ratio is C++ rate / C# rate.
        long messages = Math.Max(iters * 20L, 10_000);
        var tputCases = new (string Label, Func<double> CSharp, string CppId)[]
        {
            ("raw tput", () => Throughput(size, messages, WarmupFrames(messages)).MsgPerSec, $"flatlane/tput/{tag}"),
            ("typed tput", () => TypedBench.Throughput(messages, WarmupFrames(messages)).MsgPerSec, "typed/tput/64B"),
        };
        foreach (var (label, cs, id) in tputCases)
        {
            if (only is not null && !label.Contains(only, StringComparison.Ordinal)) continue;
            var tr = new List<double>();
            var tt = new List<string>();
            for (int r = 0; r < rounds; r++)
            {
                double c = cs();
                double p = CppResult(cpp, id, iters, "msgs_per_s");
                tr.Add(p / c);
                tt.Add($"{c / 1e6:F1}/{p / 1e6:F1}");
            }
            tr.Sort();
            Console.WriteLine($"  {label,-16} {string.Join("  ", tt)} M msg/s ({messages} messages)  C++/C# {string.Join(" ", tr.ConvertAll(x => x.ToString("F2", CultureInfo.InvariantCulture) + "x"))}  median {tr[tr.Count / 2]:F2}x");
        }
        // Which side bounds the raw stream: the four writer/reader pairs back to back, per round.
        if (only is null || "mixed tput".Contains(only, StringComparison.Ordinal))
        {
            Console.WriteLine($"  mixed tput, raw {size} B, M msg/s per round, writer->reader: C#->C#  C++->C++  C++->C#  C#->C++");
            for (int r = 0; r < rounds; r++)
            {
                double cc = Throughput(size, messages, WarmupFrames(messages)).MsgPerSec;
                double pp = CppResult(cpp, $"flatlane/tput/{tag}", iters, "msgs_per_s");
                double pc = Throughput(size, messages, WarmupFrames(messages), cpp).MsgPerSec;
                double cp = CppReadsCSharp(cpp, size, messages, WarmupFrames(messages));
                Console.WriteLine($"    round {r + 1}: {cc / 1e6,6:F1}  {pp / 1e6,6:F1}  {pc / 1e6,6:F1}  {cp / 1e6,6:F1}");
            }
            // The same for typed Ticks: publisher -> subscriber in either language.
            Console.WriteLine("  mixed tput, typed 64 B Tick, M msg/s per round, publisher->subscriber: C#->C#  C++->C++  C++->C#  C#->C++");
            for (int r = 0; r < rounds; r++)
            {
                double cc = TypedBench.Throughput(messages, WarmupFrames(messages)).MsgPerSec;
                double pp = CppResult(cpp, "typed/tput/64B", iters, "msgs_per_s");
                double pc = TypedBench.Throughput(messages, WarmupFrames(messages), cpp).MsgPerSec;
                double cp = TypedBench.CppReceives(cpp, messages, WarmupFrames(messages));
                Console.WriteLine($"    round {r + 1}: {cc / 1e6,6:F1}  {pp / 1e6,6:F1}  {pc / 1e6,6:F1}  {cp / 1e6,6:F1}");
            }
        }
    }

    private static double CppP50(string exe, string id, int iters) => CppResult(exe, id, iters, "p50_us");

    private static double CppResult(string exe, string id, int iters, string field)
    {
        string json = Path.Combine(Path.GetTempPath(), $"flatlane-bench-{Environment.ProcessId}-pair.json");
        var psi = new ProcessStartInfo(exe) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "--only", id, "--iters", iters.ToString(CultureInfo.InvariantCulture), "--no-zmq", "--json", json })
            psi.ArgumentList.Add(a);
        using (Process p = Process.Start(psi)!)
        {
            var err = p.StandardError.ReadToEndAsync();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"{exe} --only {id} failed: {err.Result}");
        }
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
        File.Delete(json);
        foreach (var r in doc.RootElement.GetProperty("results").EnumerateArray())
            if (r.GetProperty("id").GetString() == id) return r.GetProperty(field).GetDouble();
        throw new InvalidOperationException($"the C++ bench printed no {id}");
    }

    private static double Us(long[] sortedNs, double q)
    {
        int rank = (int)Math.Ceiling(q * sortedNs.Length);  // nearest rank
        return sortedNs[Math.Clamp(rank - 1, 0, sortedNs.Length - 1)] / 2000.0;
    }

    private static double Mean(long[] ns)
    {
        double t = 0;
        foreach (long v in ns) t += v;
        return t / ns.Length / 2000.0;
    }

    private static int Int(string s) => int.Parse(s, CultureInfo.InvariantCulture);
}

internal static class BitOps
{
    public static ulong Ceil(ulong v) => v <= 1 ? 1 : 1ul << (64 - System.Numerics.BitOperations.LeadingZeroCount(v - 1));
}
