using System;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Threading;
using System.Threading.Tasks;

namespace Flatlane.Tests;

/// <summary>Where the CMake build lives and what it holds.</summary>
internal static class Build
{
    public static string RepoRoot
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            {
                if (File.Exists(Path.Combine(d.FullName, "runtime", "c", "CMakeLists.txt"))) return d.FullName;
            }
            throw new InvalidOperationException("tests must run inside the Flatlane checkout (runtime/c not found above " +
                                                AppContext.BaseDirectory + ")");
        }
    }

    /// <summary>$FLATLANE_BUILD_DIR, else the checkout's build/.</summary>
    public static string Dir => Environment.GetEnvironmentVariable("FLATLANE_BUILD_DIR") is { Length: > 0 } d
        ? Path.GetFullPath(d)
        : Path.Combine(RepoRoot, "build");

    public static string PeerProcess => PeerProgram("flatlane_peer_process");

    /// <summary>tests/cpp/peer_topic.cpp: a topic publisher or subscriber.</summary>
    public static string PeerTopic => PeerProgram("flatlane_peer_topic");

    /// <summary>tests/cpp/peer_service.cpp: a service server or client.</summary>
    public static string PeerService => PeerProgram("flatlane_peer_service");

    /// <summary>tests/cpp/peer_duplex.cpp: an in-place duplex client or server.</summary>
    public static string PeerDuplex => PeerProgram("flatlane_peer_duplex");

    private static string PeerProgram(string target)
    {
        string p = Path.Combine(Dir, "tests", "cpp", target);
        if (!File.Exists(p))
            throw new FileNotFoundException(
                $"C++ peer program missing: {p}. Build it (cmake --build <build> --target {target}) " +
                "and point FLATLANE_BUILD_DIR at that build directory.", p);
        return p;
    }
}

/// <summary>Unique channel names, removed again if a test leaves them behind.</summary>
internal sealed class Channel : IDisposable
{
    private static int _counter;
    public string Name { get; }

    public Channel(string tag)
    {
        Name = $"cs-test-{Environment.ProcessId}-{Interlocked.Increment(ref _counter)}-{tag}";
    }

    public static ChannelOptions Small(OpenMode mode = OpenMode.CreateOrOpen, WaitStrategy wait = WaitStrategy.SpinThenSleep) =>
        new() { Mode = mode, RingCapacity = 65536, Wait = wait };

    // Blocking waits that sleep in one futex wait of up to 30 s (the liveness interval): an endpoint
    // woken by its peer returns at once, a missing wake-up shows as a 30 s stall.
    public static ChannelOptions Sleepy() =>
        new() { Mode = OpenMode.CreateOrOpen, RingCapacity = 65536, Wait = WaitStrategy.Blocking, LivenessInterval = TimeSpan.FromSeconds(30) };

    // Also removes names derived from this one (a service's reply channels "<name>.reply.<i>.<e>"),
    // which a killed peer leaves behind.
    public void Dispose()
    {
        try
        {
            foreach (string f in Directory.GetFiles("/dev/shm", "flatlane." + Name + "*")) File.Delete(f);
        }
        catch (IOException)
        {
        }
    }

    public static bool Exists(string name) => File.Exists("/dev/shm/flatlane." + name);
}

/// <summary>
/// A port of tests/cpp/payload_pattern.hpp: both sides derive every byte from (seed, seq), so a
/// receiver in another language checks content with no shared state. Must stay bit-identical.
/// </summary>
internal static class Pattern
{
    public static ulong Mix64(ulong x)
    {
        unchecked
        {
            x += 0x9E3779B97F4A7C15ul;
            x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ul;
            x = (x ^ (x >> 27)) * 0x94D049BB133111EBul;
            return x ^ (x >> 31);
        }
    }

    public static int PayloadSize(ulong seed, ulong seq, int max) =>
        (int)(Mix64(unchecked(seed * 0x100000001B3ul) ^ (seq << 1) ^ 0x5A5A5A5Aul) % (ulong)(max + 1));

    public static void FillPayload(ulong seed, ulong seq, Span<byte> p)
    {
        ulong b = Mix64(seed ^ Mix64(seq));
        int i = 0;
        for (; i + 8 <= p.Length; i += 8) BinaryPrimitives.WriteUInt64LittleEndian(p[i..], Mix64(unchecked(b + (ulong)i)));
        if (i < p.Length)
        {
            Span<byte> w = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(w, Mix64(unchecked(b + (ulong)i)));
            w[..(p.Length - i)].CopyTo(p[i..]);
        }
    }

    public static bool CheckPayload(ulong seed, ulong seq, ReadOnlySpan<byte> p)
    {
        Span<byte> expect = p.Length <= 4096 ? stackalloc byte[p.Length] : new byte[p.Length];
        FillPayload(seed, seq, expect);
        return p.SequenceEqual(expect);
    }

    public static int MessageSize(ulong seed, ulong k, int min, int max) =>
        min + (int)(Mix64(unchecked(seed * 0x9E3779B1ul) ^ (k << 3) ^ 0x77ul) % (ulong)(max - min + 1));

    public static void FillMessage(ulong seed, ulong k, Span<byte> p)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(p, k);
        FillPayload(seed ^ 0xC0FFEEul, k, p[8..]);
    }

    /// <summary>The message id, or null when size or bytes do not match.</summary>
    public static ulong? CheckMessage(ulong seed, ReadOnlySpan<byte> p, int min, int max)
    {
        if (p.Length < 8) return null;
        ulong k = BinaryPrimitives.ReadUInt64LittleEndian(p);
        if (p.Length != MessageSize(seed, k, min, max) || !CheckPayload(seed ^ 0xC0FFEEul, k, p[8..])) return null;
        return k;
    }
}

/// <summary>
/// One run of build/tests/cpp/flatlane_peer_process (see the header comment of
/// tests/cpp/peer_process.cpp): its stdout lines arrive on a queue as it writes them.
/// </summary>
internal sealed class Peer : IDisposable
{
    private readonly Process _p;
    private readonly BlockingCollection<string> _lines = new();
    private readonly List<string> _all = new();
    private readonly StringWriter _stderr = new();

    public Peer(string mode, string channel, params string[] keys) : this(Build.PeerProcess, [mode, channel, .. keys])
    {
    }

    /// <summary>Starts any peer program of the build (e.g. <see cref="Build.PeerTopic"/>) with these arguments.</summary>
    public static Peer Start(string program, params string[] args) => new(program, args);

    /// <summary>Starts tests/python/py_peer.py with the build's Python package (Debian's python3).</summary>
    public static Peer Python(params string[] args)
    {
        string pkg = Path.Combine(Build.Dir, "python");
        if (!Directory.Exists(Path.Combine(pkg, "flatlane")))
            throw new DirectoryNotFoundException($"{pkg}/flatlane missing: build the Python package (cmake --build <build> --target flatlane_python)");
        string python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        return new("/usr/bin/env", [$"PYTHONPATH={pkg}", python, Path.Combine(Build.RepoRoot, "tests", "python", "py_peer.py"), .. args]);
    }

    private Peer(string program, string[] args)
    {
        var psi = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in args) psi.ArgumentList.Add(a);
        _p = new Process { StartInfo = psi };
        _p.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) _lines.CompleteAdding();
            else
            {
                lock (_all) _all.Add(e.Data);
                _lines.Add(e.Data);
            }
        };
        _p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) lock (_stderr) _stderr.WriteLine(e.Data);
        };
        Spawner.Run(() => _p.Start());
        _p.BeginOutputReadLine();
        _p.BeginErrorReadLine();
    }

    // The peer asks for PR_SET_PDEATHSIG(SIGKILL), which Linux ties to the THREAD that forked it:
    // started from a thread-pool thread that the pool later retires, a peer is killed mid-test
    // (seen: "peer process died" half-way through a message). So every peer is forked by one
    // thread that lives as long as the test process.
    private static class Spawner
    {
        private static readonly BlockingCollection<(Action Work, TaskCompletionSource Done)> Queue = new();

        static Spawner()
        {
            var t = new Thread(() =>
            {
                foreach (var (work, done) in Queue.GetConsumingEnumerable())
                {
                    try
                    {
                        work();
                        done.SetResult();
                    }
                    catch (Exception e)
                    {
                        done.SetException(e);
                    }
                }
            }) { IsBackground = true, Name = "peer-spawner" };
            t.Start();
        }

        public static void Run(Action work)
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Queue.Add((work, done));
            done.Task.GetAwaiter().GetResult();
        }
    }

    public int Pid => _p.Id;

    /// <summary>Waits for the next stdout line starting with <paramref name="prefix"/>; fails with the peer's output otherwise.</summary>
    public string Expect(string prefix, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        for (;;)
        {
            TimeSpan left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !_lines.TryTake(out string? line, left))
                throw new Xunit.Sdk.XunitException($"peer did not print '{prefix}' in time. {Describe()}");
            if (line.StartsWith(prefix, StringComparison.Ordinal)) return line;
        }
    }

    /// <summary>Waits for the exit and returns the exit code.</summary>
    public int WaitExit(TimeSpan? timeout = null)
    {
        if (!_p.WaitForExit(timeout ?? TimeSpan.FromSeconds(30)))
            throw new Xunit.Sdk.XunitException($"peer did not exit in time. {Describe()}");
        _p.WaitForExit();  // drains the redirected streams
        return _p.ExitCode;
    }

    /// <summary>SIGKILL (Process.Kill on Linux): the peer runs no cleanup at all.</summary>
    public void Kill9()
    {
        _p.Kill();
        _p.WaitForExit();
    }

    public string Describe()
    {
        string outText, errText;
        lock (_all) outText = string.Join(" | ", _all);
        lock (_stderr) errText = _stderr.ToString();
        string exit = _p.HasExited ? $"exit {_p.ExitCode}" : "still running";
        return $"[{exit}] stdout: {outText} stderr: {errText}";
    }

    public void Dispose()
    {
        if (!_p.HasExited)
        {
            try
            {
                _p.Kill();
                _p.WaitForExit();
            }
            catch (InvalidOperationException)
            {
            }
        }
        _p.Dispose();
        _lines.Dispose();
    }
}

internal static class Blocking
{
    /// <summary>
    /// Runs <paramref name="call"/> on a thread of its own and returns once that thread is about
    /// to make the call, plus a settle time, so the test then acts on a call that is really
    /// waiting (a thread-pool task may not even have started on a loaded machine).
    /// </summary>
    public static Task<T> Start<T>(Func<T> call)
    {
        using var started = new ManualResetEventSlim();
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var t = new Thread(() =>
        {
            started.Set();
            try
            {
                done.SetResult(call());
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        }) { IsBackground = true };
        t.Start();
        started.Wait();
        Thread.Sleep(100);
        return done.Task;
    }
}
