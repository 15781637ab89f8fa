using System;
using System.Diagnostics;
using System.IO;
using Xunit;

namespace Flatlane.Tests;

// Real processes: the Python side is tests/python/py_peer.py (the flatlane package from the build,
// payloads from tests/python/payload_pattern.py, the Python port of the pattern Pattern ports).
// The C# side creates the channel (ring 64 KiB: max frame payload = chunk size = 32736) and the
// peer opens it. Typed topics, pipelines, services and duplex channels with a Python peer are in
// Flatlane.Typed.Tests.
public class PythonInteropTests
{
    private const int Ring = 65536;
    private const int MaxFrame = Ring / 2 - 32;

    private static ChannelOptions Create(WaitStrategy wait = WaitStrategy.SpinThenSleep) =>
        new() { Mode = OpenMode.Create, RingCapacity = Ring, Wait = wait };

    private static Peer StartPython(params string[] args)
    {
        string pkg = Path.Combine(Build.Dir, "python");
        if (!Directory.Exists(Path.Combine(pkg, "flatlane")))
            throw new DirectoryNotFoundException($"{pkg}/flatlane missing: build the Python package (cmake --build <build> --target flatlane_python)");
        string script = Path.Combine(Build.RepoRoot, "tests", "python", "py_peer.py");
        string python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        return Peer.Start("/usr/bin/env", [$"PYTHONPATH={pkg}", python, script, .. args]);
    }

    [Fact]
    public void CSharpWriter_To_PythonReader_WholeMessages_UpToBeyondTheChunkSize()
    {
        using var ch = new Channel("i-cs2py-msg");
        const ulong seed = 13;
        const int count = 40, min = 8, max = 100_000;
        using var w = new Writer(ch.Name, Create());
        using var peer = StartPython("recvmsg", ch.Name, $"{count}", $"{seed}", $"{min}", $"{max}");
        peer.Expect("ready");
        var buf = new byte[max];
        int chunked = 0;
        for (ulong k = 0; k < count; k++)
        {
            int size = Pattern.MessageSize(seed, k, min, max);
            if (size > MaxFrame) chunked++;
            Pattern.FillMessage(seed, k, buf.AsSpan(0, size));
            w.Send(buf.AsSpan(0, size), TimeSpan.FromSeconds(10));
        }
        Assert.InRange(chunked, 5, count - 5);  // both regimes really crossed the boundary
        Assert.Equal($"done {count} {count - 1}", peer.Expect("done"));
        Assert.True(peer.WaitExit() == 0, peer.Describe());
    }

    [Fact]
    public void PythonWriter_To_CSharpReader_WholeMessages_ThenPeerClosed()
    {
        using var ch = new Channel("i-py2cs-msg");
        const ulong seed = 14;
        const int count = 40, min = 8, max = 100_000;
        using var r = new Reader(ch.Name, Create());
        using var peer = StartPython("sendmsg", ch.Name, $"{count}", $"{seed}", $"{min}", $"{max}");
        int zeroCopy = 0;
        for (ulong k = 0; k < count; k++)
        {
            using Message m = r.Receive(TimeSpan.FromSeconds(10));
            ulong? id = Pattern.CheckMessage(seed, m.Data, min, max);
            Assert.True(id == k, $"message {k}: got id {id?.ToString() ?? "<bad bytes>"} of {m.Length} bytes");
            if (m.ZeroCopy) zeroCopy++;
        }
        Assert.InRange(zeroCopy, 5, count - 5);  // single frames in place, chunked ones reassembled
        Assert.True(peer.WaitExit() == 0, peer.Describe());
        var e = Assert.Throws<FlatlanePeerGoneException>(() => r.Receive(TimeSpan.FromSeconds(5)));
        Assert.Equal(ErrorCode.PeerClosed, e.ErrorCode);
    }

    [Fact]
    public void Kill9OfThePythonWriter_CSharpReaderGetsPeerDead_InBoundedTime()
    {
        using var ch = new Channel("i-kill-py");
        using var r = new Reader(ch.Name, Create(WaitStrategy.Blocking));
        using var peer = StartPython("stream", ch.Name);
        peer.Expect("ready");
        var block = new byte[64];
        for (int i = 0; i < block.Length; i++) block[i] = (byte)i;
        for (int i = 0; i < 200; i++)
        {
            using Frame f = r.Read(TimeSpan.FromSeconds(10));
            Assert.True(f.Data.SequenceEqual(block), $"frame {f.Seq}: payload differs");
        }
        peer.Kill9();
        var sw = Stopwatch.StartNew();
        ulong drained = 0;
        FlatlaneException? error = null;
        while (error is null)
        {
            try
            {
                using Frame f = r.Read(TimeSpan.FromSeconds(10));
                Assert.True(f.Data.SequenceEqual(block));  // committed before the kill: intact
                drained++;
            }
            catch (FlatlaneException e)
            {
                error = e;
            }
        }
        sw.Stop();
        Assert.Equal(ErrorCode.PeerDead, error.ErrorCode);
        Assert.IsType<FlatlanePeerGoneException>(error);
        Assert.InRange(sw.ElapsedMilliseconds, 0, 1000);  // runtime bound: one 50 ms liveness interval
        Assert.False(r.PeerAttached);
        Assert.InRange(drained, 0ul, (ulong)(Ring / 16));  // at most a ring's worth was committed
    }
}
