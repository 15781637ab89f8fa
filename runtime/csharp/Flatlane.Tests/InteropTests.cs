using System;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace Flatlane.Tests;

// Real processes: the C++ side is build/tests/cpp/flatlane_peer_process (tests/cpp/peer_process.cpp),
// which derives and verifies every byte with tests/cpp/payload_pattern.hpp; Pattern is its port.
// The Python side ("python" cases) is tests/python/py_peer.py with the build's flatlane package and
// tests/python/payload_pattern.py, the pattern's Python port. The C# side creates the channel
// (ring 64 KiB: max frame payload = chunk size = 32736) and the peer opens it. Typed topics,
// pipelines, services and duplex channels with both peers are in Flatlane.Typed.Tests.
public class InteropTests
{
    private const int Ring = 65536;
    private const int MaxFrame = Ring / 2 - 32;

    private static ChannelOptions Create(WaitStrategy wait = WaitStrategy.SpinThenSleep) =>
        new() { Mode = OpenMode.Create, RingCapacity = Ring, Wait = wait };

    // A reader (read: true) or writer of count pattern messages (ids 0.., sizes min..max).
    private static Peer MessagePeer(string lang, bool read, string channel, ulong seed, int count, int min, int max) => lang == "cpp"
        ? new Peer(read ? "readmsg" : "writemsg", channel, $"seed={seed}", $"count={count}", $"minsize={min}", $"maxsize={max}")
        : Peer.Python(read ? "recvmsg" : "sendmsg", channel, $"{count}", $"{seed}", $"{min}", $"{max}");

    [Theory]
    [InlineData("cpp")]
    [InlineData("python")]
    public void CSharpWriter_To_PeerReader_WholeMessages_UpToBeyondTheChunkSize(string lang)
    {
        using var ch = new Channel("i-cs2" + lang + "-msg");
        const ulong seed = 3;
        const int count = 80, min = 8, max = 100_000;
        using var w = new Writer(ch.Name, Create());
        using var peer = MessagePeer(lang, read: true, ch.Name, seed, count, min, max);
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
        Assert.InRange(chunked, 10, count - 10);  // both regimes really crossed the boundary
        Assert.Equal($"done {count} {count - 1}", peer.Expect("done"));
        Assert.True(peer.WaitExit() == 0, peer.Describe());
    }

    [Theory]
    [InlineData("cpp")]
    [InlineData("python")]
    public void PeerWriter_To_CSharpReader_WholeMessages_ThenPeerClosed(string lang)
    {
        using var ch = new Channel("i-" + lang + "2cs-msg");
        const ulong seed = 4;
        const int count = 80, min = 8, max = 100_000;
        using var r = new Reader(ch.Name, Create());
        using var peer = MessagePeer(lang, read: false, ch.Name, seed, count, min, max);
        int zeroCopy = 0;
        for (ulong k = 0; k < count; k++)
        {
            using Message m = r.Receive(TimeSpan.FromSeconds(10));
            ulong? id = Pattern.CheckMessage(seed, m.Data, min, max);
            Assert.True(id == k, $"message {k}: got id {id?.ToString() ?? "<bad bytes>"} of {m.Length} bytes");
            if (m.ZeroCopy) zeroCopy++;
        }
        Assert.InRange(zeroCopy, 10, count - 10);
        Assert.True(peer.WaitExit() == 0, peer.Describe());
        var e = Assert.Throws<FlatlanePeerGoneException>(() => r.Receive(TimeSpan.FromSeconds(5)));
        Assert.Equal(ErrorCode.PeerClosed, e.ErrorCode);
    }

    // A reader (read: true) or writer of count frames whose sizes (0..max) and bytes come from (seed, seq).
    private static Peer FramePeer(string lang, bool read, string channel, ulong seed, int count, int max) => lang == "cpp"
        ? new Peer(read ? "read" : "write", channel, $"seed={seed}", $"count={count}", $"maxsize={max}")
        : Peer.Python(read ? "readframes" : "writeframes", channel, $"{count}", $"{seed}", $"{max}");

    [Theory]
    [InlineData("cpp")]
    [InlineData("python")]
    public void CSharpWriter_To_PeerReader_ZeroCopyFrames_AllSizesUpToTheFrameLimit(string lang)
    {
        using var ch = new Channel("i-cs2" + lang + "-frames");
        const ulong seed = 5;
        const int count = 2000;
        using var w = new Writer(ch.Name, Create());
        using var peer = FramePeer(lang, read: true, ch.Name, seed, count, MaxFrame);
        peer.Expect("ready");
        for (int i = 0; i < count; i++)
        {
            ulong seq = w.Stats.Frames + 1;  // the sequence number the commit will stamp
            int size = Pattern.PayloadSize(seed, seq, MaxFrame);
            Span<byte> s = w.Reserve(size, TimeSpan.FromSeconds(10));
            Pattern.FillPayload(seed, seq, s);
            w.Commit(size);
        }
        Assert.Equal($"done {count} {count}", peer.Expect("done"));
        Assert.True(peer.WaitExit() == 0, peer.Describe());
    }

    [Theory]
    [InlineData("cpp")]
    [InlineData("python")]
    public void PeerWriter_To_CSharpReader_ZeroCopyFrames(string lang)
    {
        using var ch = new Channel("i-" + lang + "2cs-frames");
        const ulong seed = 6;
        const int count = 2000;
        using var r = new Reader(ch.Name, Create());
        using var peer = FramePeer(lang, read: false, ch.Name, seed, count, MaxFrame);
        for (int i = 0; i < count; i++)
        {
            using Frame f = r.Read(TimeSpan.FromSeconds(10));
            Assert.Equal((ulong)i + 1, f.Seq);
            Assert.Equal(Pattern.PayloadSize(seed, f.Seq, MaxFrame), f.Length);
            Assert.True(Pattern.CheckPayload(seed, f.Seq, f.Data), $"frame {f.Seq}: payload differs");
        }
        Assert.True(peer.WaitExit() == 0, peer.Describe());
    }

    [Theory]
    [InlineData("cpp")]
    [InlineData("python")]
    public void Kill9OfThePeerWriter_CSharpReaderGetsPeerDead_InBoundedTime(string lang)
    {
        using var ch = new Channel("i-kill-" + lang + "-writer");
        const ulong seed = 7;
        using var r = new Reader(ch.Name, Create(WaitStrategy.Blocking));
        // Frames until killed: C++ pattern payloads of 0..1000 bytes, Python 64 bytes 0, 1, .. 63.
        using var peer = lang == "cpp" ? new Peer("write", ch.Name, $"seed={seed}", "count=inf", "maxsize=1000") : Peer.Python("stream", ch.Name);
        byte[] block = new byte[64];
        for (int i = 0; i < block.Length; i++) block[i] = (byte)i;
        bool Intact(in Frame f) => lang == "cpp" ? Pattern.CheckPayload(seed, f.Seq, f.Data) : f.Data.SequenceEqual(block);
        peer.Expect("ready");
        for (int i = 0; i < 200; i++)
        {
            using Frame f = r.Read(TimeSpan.FromSeconds(10));
            Assert.True(Intact(f), $"frame {f.Seq}: payload differs");
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
                Assert.True(Intact(f));  // committed before the kill: intact
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
        // Whatever was committed before the kill is delivered first: at most a ring's worth.
        Assert.InRange(drained, 0ul, (ulong)(Ring / 16));
    }

    [Fact]
    public void Kill9OfTheCppReader_CSharpWriterBlockedOnAFullRingGetsPeerDead()
    {
        using var ch = new Channel("i-kill-reader");
        using var w = new Writer(ch.Name, Create(WaitStrategy.Blocking));
        using var peer = new Peer("hold", ch.Name, "frames=2");
        w.Send(new byte[100]);
        w.Send(new byte[100]);
        peer.Expect("ready");  // it now holds both frames and hangs
        Assert.True(w.PeerAttached);
        while (w.TryReserve(4000, TimeSpan.Zero, out Span<byte> s))
        {
            s.Clear();
            w.Commit(4000);
        }
        long killedAt = 0;
        var killer = new Thread(() =>
        {
            Thread.Sleep(100);  // let the writer block first
            Interlocked.Exchange(ref killedAt, Stopwatch.GetTimestamp());
            peer.Kill9();
        });
        killer.Start();
        var e = Assert.Throws<FlatlanePeerGoneException>(() => w.Reserve(4000, TimeSpan.FromSeconds(10)));
        long after = Stopwatch.GetTimestamp();
        killer.Join();
        Assert.Equal(ErrorCode.PeerDead, e.ErrorCode);
        Assert.InRange(Stopwatch.GetElapsedTime(Interlocked.Read(ref killedAt), after).TotalMilliseconds, 0, 1000);
        Assert.False(w.PeerAttached);
    }

    [Fact]
    public async Task CppWriter_To_CSharpReceiveAsync_TheFullConversation()
    {
        using var ch = new Channel("i-async");
        const ulong seed = 8;
        const int count = 40, min = 8, max = 70_000;
        using var r = new Reader(ch.Name, Create());
        using var peer = new Peer("writemsg", ch.Name, $"seed={seed}", $"count={count}", $"minsize={min}", $"maxsize={max}",
            "linger_ms=200");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        for (ulong k = 0; k < count; k++)
        {
            using Message m = await r.ReceiveAsync(cts.Token);
            Assert.Equal(k, Pattern.CheckMessage(seed, m.Data, min, max));
        }
        var e = await Assert.ThrowsAsync<FlatlanePeerGoneException>(async () => await r.ReceiveAsync(cts.Token));
        int exit = peer.WaitExit();
        Assert.True(e.ErrorCode == ErrorCode.PeerClosed, $"{e.Message}; peer {peer.Describe()}");
        Assert.True(exit == 0, peer.Describe());
    }
}
