using System;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace Flatlane.Tests;

/// <summary>In-place duplex (kind 3): DuplexClient / DuplexServer, and interop with tests/cpp/peer_duplex.cpp.</summary>
public class DuplexTests
{
    private static readonly TimeSpan T = TimeSpan.FromSeconds(10);

    private static ChannelOptions Opts(long capacity = 65536) =>
        new() { Mode = OpenMode.CreateOrOpen, RingCapacity = capacity };

    // The byte pattern of tests/cpp/duplex_test_util.hpp, bit for bit.
    private static byte PatternByte(ulong seq, int i) => (byte)((seq * 131 + (ulong)i * 7 + ((ulong)i >> 8)) & 0xFF);

    private static void Fill(Span<byte> s, ulong seq)
    {
        for (int i = 0; i < s.Length; i++) s[i] = PatternByte(seq, i);
    }

    private static bool IsInverted(ReadOnlySpan<byte> s, ulong seq)
    {
        for (int i = 0; i < s.Length; i++)
            if (s[i] != (byte)~PatternByte(seq, i)) return false;
        return true;
    }

    private static void Invert(Span<byte> s)
    {
        for (int i = 0; i < s.Length; i++) s[i] = (byte)~s[i];
    }

    [Fact]
    public void RoundTrip_InPlace()
    {
        using var ch = new Channel("dx-rt");
        using var server = new DuplexServer(ch.Name, Opts());
        using var client = new DuplexClient(ch.Name, Opts());
        Assert.True(client.PeerAttached);
        Assert.True(server.PeerAttached);
        Span<byte> f = client.Reserve(300);
        Fill(f[..256], 1);
        ulong seq = client.Commit(256);
        Assert.Equal(1ul, seq);
        Assert.Equal(1, client.Outstanding);

        using (DuplexRequest req = server.Receive(T))
        {
            Assert.Equal(seq, req.Seq);
            Assert.Equal(256, req.Length);
            Assert.Equal(0, req.RequestOffset);
            Assert.True(req.Capacity >= 300);
            Invert(req.Data);
            req.Respond();
            Assert.Equal(0, server.Outstanding);
        }  // Dispose after Respond: nothing more happens

        using (DuplexResponse rep = client.Receive(T))
        {
            Assert.False(rep.Rejected);
            Assert.Equal(seq, rep.Seq);
            Assert.True(IsInverted(rep.Data, seq));
            Assert.Equal(1, client.HeldResponses);
        }
        Assert.Equal(0, client.HeldResponses);
        Assert.Equal(0, client.Outstanding);
        DuplexStats cs = client.Stats, ss = server.Stats;
        Assert.Equal(1ul, cs.Requests);
        Assert.Equal(1ul, cs.Responses);
        Assert.Equal(1ul, ss.Responses);
        Assert.Equal(256ul, ss.Bytes);
        Assert.Equal(0ul, cs.OccupancyBytes);
        Assert.Equal(65536ul, cs.CapacityBytes);

        // An answer elsewhere in the frame: the whole reservation belongs to the frame.
        client.Reserve(300);
        ulong s2 = client.Commit(10);
        using (DuplexRequest req = server.Receive(T))
        {
            req.Frame[100..150].Fill(0xAB);
            req.Respond(100, 50);
        }
        using (DuplexResponse rep = client.Receive(T))
        {
            Assert.Equal(s2, rep.Seq);
            Assert.Equal(50, rep.Length);
            Assert.All(rep.Data.ToArray(), b => Assert.Equal(0xAB, b));
        }
    }

    [Fact]
    public void SeveralOutstanding_AnsweredOutOfOrder_ArriveInRequestOrder()
    {
        using var ch = new Channel("dx-ooo");
        using var server = new DuplexServer(ch.Name, Opts());
        using var client = new DuplexClient(ch.Name, Opts());
        const int n = 8;
        for (int i = 0; i < n; i++)
        {
            Span<byte> f = client.Reserve(64 + i);
            ulong seq = (ulong)i + 1;
            Fill(f, seq);
            Assert.Equal(seq, client.Commit(64 + i));
        }
        Assert.Equal(n, client.Outstanding);
        var reqs = new DuplexRequest[n];
        for (int i = 0; i < n; i++) reqs[i] = server.Receive(T);
        Assert.Equal(n, server.Outstanding);
        // Answer the last one first: the client still gets nothing until seq 1 is answered.
        for (int i = n - 1; i >= 1; i--)
        {
            Invert(reqs[i].Data);
            server.Respond(reqs[i]);
        }
        Assert.False(client.TryReceive(TimeSpan.Zero, out _));
        Invert(reqs[0].Data);
        reqs[0].Respond();
        var held = new DuplexResponse[n];
        for (int i = 0; i < n; i++)
        {
            held[i] = client.Receive(T);
            Assert.Equal((ulong)i + 1, held[i].Seq);
            Assert.Equal(64 + i, held[i].Length);
            Assert.True(IsInverted(held[i].Data, held[i].Seq));
        }
        Assert.Equal(n, client.HeldResponses);
        // Release in any order; a second release of the same response is harmless.
        for (int i = n - 1; i >= 0; i -= 2) held[i].Dispose();
        for (int i = 0; i < n; i++) held[i].Dispose();
        Assert.Equal(0, client.HeldResponses);
        Assert.Equal(0ul, client.Stats.OccupancyBytes);
    }

    [Fact]
    public void FullRing_ReserveFailsAtOnce_UntilResponsesAreReleased()
    {
        using var ch = new Channel("dx-full");
        using var server = new DuplexServer(ch.Name, Opts(4096));
        using var client = new DuplexClient(ch.Name, Opts(4096));
        // 992 bytes + the 32-byte header: 4 frames would fill the ring exactly, but the client
        // keeps one header slot free, so 3 fit.
        int sent = 0;
        for (;;)
        {
            if (!client.TryReserve(992, TimeSpan.FromMilliseconds(500), out Span<byte> f)) break;
            f[0] = (byte)sent;
            client.Commit(992);
            sent++;
            Assert.True(sent < 10);
        }
        Assert.Equal(3, sent);
        var e = Assert.Throws<FlatlaneTimeoutException>(() => client.Reserve(992, TimeSpan.FromSeconds(5)));
        Assert.Equal(ErrorCode.Timeout, e.ErrorCode);
        // Answered but not yet received / released: still no room.
        for (int i = 0; i < sent; i++)
        {
            using DuplexRequest r = server.Receive(T);
            r.Respond();
        }
        Assert.False(client.TryReserve(992, TimeSpan.Zero, out _));
        DuplexResponse first = client.Receive(T);
        Assert.False(client.TryReserve(992, TimeSpan.Zero, out _));
        first.Dispose();
        Assert.True(client.TryReserve(992, TimeSpan.Zero, out _));
        client.Abort();
        for (int i = 1; i < sent; i++) client.Receive(T).Dispose();
    }

    [Fact]
    public void Oversize_AndMisuse_AreErrors()
    {
        using var ch = new Channel("dx-big");
        using var server = new DuplexServer(ch.Name, Opts());
        using var client = new DuplexClient(ch.Name, Opts());
        Assert.Equal(client.MaxFramePayload, server.MaxFramePayload);
        var e = Assert.Throws<FlatlaneException>(() => client.Reserve(client.MaxFramePayload + 1));
        Assert.Equal(ErrorCode.MessageTooLarge, e.ErrorCode);
        Assert.Contains(ch.Name, e.Message);
        Assert.Equal(ErrorCode.InvalidArgument, Assert.Throws<FlatlaneException>(() => client.Commit(1)).ErrorCode);
        // Nothing outstanding: receive is a usage error, not a wait.
        Assert.Equal(ErrorCode.InvalidArgument, Assert.Throws<FlatlaneException>(() => client.Receive(T)).ErrorCode);

        client.Reserve(client.MaxFramePayload);
        Assert.Equal(ErrorCode.InvalidArgument,
            Assert.Throws<FlatlaneException>(() => client.Commit(client.MaxFramePayload + 1)).ErrorCode);
        client.Commit(client.MaxFramePayload);
        DuplexRequest req = server.Receive(T);
        Assert.Equal(client.MaxFramePayload, req.Capacity);
        Assert.Equal(ErrorCode.MessageTooLarge,
            Assert.Throws<FlatlaneException>(() => server.Respond(req, 1, req.Capacity)).ErrorCode);
        req.Respond();  // still held after the failed answer
        Assert.Equal(ErrorCode.InvalidArgument, Assert.Throws<FlatlaneException>(() => req.Respond()).ErrorCode);
        Assert.Equal(ErrorCode.InvalidArgument, Assert.Throws<FlatlaneException>(() => req.Reject()).ErrorCode);
        using DuplexResponse rep = client.Receive(T);
        Assert.Equal(client.MaxFramePayload, rep.Length);
    }

    [Fact]
    public void Rejected_AndDroppedRequests_ComeBackRejected()
    {
        using var ch = new Channel("dx-rej");
        using var client = new DuplexClient(ch.Name, Opts());
        ulong a, b, c;
        using (var server = new DuplexServer(ch.Name, Opts()))
        {
            a = client.Send([1, 2, 3]);
            b = client.Send([4, 5, 6]);
            c = client.Send([7, 8, 9]);
            server.Receive(T).Reject();
            server.Receive(T).Dispose();  // dropped unanswered: rejected
            _ = server.Receive(T);        // held when the server goes away: rejected too
            Assert.Equal(2ul, server.Stats.Rejected);
        }
        foreach (ulong seq in new[] { a, b, c })
        {
            using DuplexResponse r = client.Receive(T);
            Assert.Equal(seq, r.Seq);
            Assert.True(r.Rejected);
            Assert.Equal(0, r.Length);
        }
        Assert.Equal(3ul, client.Stats.Rejected);
    }

    [Fact]
    public void HotPath_DoesNotAllocate()
    {
        using var ch = new Channel("dx-alloc");
        using var server = new DuplexServer(ch.Name, Opts());
        using var client = new DuplexClient(ch.Name, Opts());

        static void One(DuplexClient client, DuplexServer server, ulong k)
        {
            Span<byte> f = client.Reserve(128);
            Fill(f, k);
            ulong seq = client.Commit(128);
            using (DuplexRequest r = server.Receive(TimeSpan.FromSeconds(10)))
            {
                Invert(r.Data);
                r.Respond();
            }
            using DuplexResponse rep = client.Receive(TimeSpan.FromSeconds(10));
            if (rep.Seq != seq || !IsInverted(rep.Data, seq)) throw new InvalidOperationException("bad response");
        }

        for (int i = 0; i < 200; i++) One(client, server, (ulong)i + 1);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 2000; i++) One(client, server, (ulong)i + 201);
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(0, after - before);
    }

    [Fact]
    public async Task ReceiveAsync_CancelsAndCompletes()
    {
        using var ch = new Channel("dx-async");
        using var server = new DuplexServer(ch.Name, Opts());
        using var client = new DuplexClient(ch.Name, Opts());
        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50)))
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await server.ReceiveAsync(cts.Token));

        ValueTask<DuplexRequest> pending = server.ReceiveAsync();
        Assert.Throws<InvalidOperationException>(() => server.ReceiveAsync());
        ulong seq = client.Send([10, 20, 30]);
        DuplexRequest req = await pending.AsTask().WaitAsync(T);
        Assert.Equal(seq, req.Seq);
        req.Data[0] = 11;
        req.Respond();
        using DuplexResponse rep = await client.ReceiveAsync().AsTask().WaitAsync(T);
        Assert.Equal(new byte[] { 11, 20, 30 }, rep.Data.ToArray());
    }

    [Fact]
    public async Task Close_InterruptsABlockedReceive()
    {
        using var ch = new Channel("dx-close");
        using var server = new DuplexServer(ch.Name, Opts());
        var t = Blocking.Start(() =>
        {
            try
            {
                server.Receive();
                return ErrorCode.Ok;
            }
            catch (FlatlaneException e)
            {
                return e.ErrorCode;
            }
        });
        server.Close();
        Assert.Equal(ErrorCode.Closed, await t.WaitAsync(T));
    }

    // ---- interop with C++ processes (tests/cpp/peer_duplex.cpp)

    [Fact]
    public void CSharpClient_To_CppServer()
    {
        using var ch = new Channel("dx-cs2cpp");
        const int count = 300, size = 256, outstanding = 4;
        using var client = new DuplexClient(ch.Name, Opts());
        using var peer = Peer.Start(Build.PeerDuplex, "serve", ch.Name, "0");
        peer.Expect("ready");
        ulong sent = 0, got = 0;
        while (got < count)
        {
            while (sent < count && sent - got < outstanding)
            {
                Span<byte> f = client.Reserve(size, T);
                Fill(f, sent + 1);
                Assert.Equal(sent + 1, client.Commit(size));
                sent++;
            }
            using DuplexResponse rep = client.Receive(T);
            got++;
            Assert.Equal(got, rep.Seq);
            Assert.False(rep.Rejected);
            Assert.Equal(size, rep.Length);
            Assert.True(IsInverted(rep.Data, rep.Seq), $"response {rep.Seq}");
        }
        client.Close();
        Assert.Equal($"done {count}", peer.Expect("done"));
        Assert.True(peer.WaitExit() == 0, peer.Describe());
    }

    [Fact]
    public void CppClient_To_CSharpServer_AnsweringOutOfOrder()
    {
        using var ch = new Channel("dx-cpp2cs");
        const int count = 300, outstanding = 4;
        using var server = new DuplexServer(ch.Name, Opts());
        using var peer = Peer.Start(Build.PeerDuplex, "client", ch.Name, $"{count}", "size=1000", $"outstanding={outstanding}");
        peer.Expect("ready");
        var batch = new DuplexRequest[outstanding];
        int n = 0;
        while (n < count)
        {
            // Take what is there (up to `outstanding`), answer newest first.
            int k = 0;
            batch[k++] = server.Receive(T);
            while (k < outstanding && server.TryReceive(TimeSpan.FromMilliseconds(2), out batch[k])) k++;
            for (int i = k - 1; i >= 0; i--)
            {
                Assert.Equal(1000, batch[i].Length);
                Invert(batch[i].Data);
                batch[i].Respond();
            }
            n += k;
        }
        Assert.Equal($"done {count}", peer.Expect("done"));
        Assert.True(peer.WaitExit() == 0, peer.Describe());
        Assert.Equal((ulong)count, server.Stats.Responses);
    }

    [Fact]
    public void Kill9OfACppServerHoldingRequests_ClientGetsPeerDead_AndTheNextServerRejectsThem()
    {
        using var ch = new Channel("dx-kill");
        using var client = new DuplexClient(ch.Name, Opts() with { Wait = WaitStrategy.Blocking });
        ulong a = client.Send([1, 2, 3]);
        ulong b = client.Send([4, 5, 6]);
        using (var peer = Peer.Start(Build.PeerDuplex, "hold", ch.Name, "2"))
        {
            peer.Expect("held 2");
            peer.Kill9();
        }
        var e = Assert.Throws<FlatlanePeerGoneException>(() => client.Receive(T));
        Assert.Equal(ErrorCode.PeerDead, e.ErrorCode);
        ulong c = client.Send([7, 8, 9]);  // not received by the dead server: served normally
        using var server = new DuplexServer(ch.Name, Opts());
        using (DuplexRequest req = server.Receive(T))
        {
            Assert.Equal(c, req.Seq);
            Invert(req.Data);
            req.Respond();
        }
        foreach (ulong seq in new[] { a, b })
        {
            using DuplexResponse r = client.Receive(T);
            Assert.Equal(seq, r.Seq);
            Assert.True(r.Rejected);
        }
        using (DuplexResponse r = client.Receive(T))
        {
            Assert.Equal(c, r.Seq);
            Assert.Equal(new byte[] { 0xF8, 0xF7, 0xF6 }, r.Data.ToArray());
        }
    }

    [Fact]
    public void Kill9OfACppClient_TheCSharpServerGoesOn_AndANewClientContinues()
    {
        using var ch = new Channel("dx-kill-client");
        using var server = new DuplexServer(ch.Name, Opts());
        using (var peer = Peer.Start(Build.PeerDuplex, "client", ch.Name, "3", "size=64", "outstanding=2", "hang=1"))
        {
            peer.Expect("ready");
            for (int i = 0; i < 3; i++)
            {
                using DuplexRequest r = server.Receive(T);
                Invert(r.Data);
                r.Respond();
            }
            peer.Expect("outstanding 2");
            peer.Kill9();
        }
        // The two requests it left: still answerable (the server never waits for the client).
        for (int i = 0; i < 2; i++)
        {
            using DuplexRequest r = server.Receive(T);
            r.Respond();
        }
        Assert.Throws<FlatlanePeerGoneException>(() => server.Receive(T));
        using var client = new DuplexClient(ch.Name, Opts());
        ulong seq = client.Send([1]);
        Assert.Equal(6ul, seq);  // continues the sequence numbers
        using (DuplexRequest r = server.Receive(T))
        {
            Assert.Equal(seq, r.Seq);
            r.Respond();
        }
        using DuplexResponse rep = client.Receive(T);
        Assert.Equal(seq, rep.Seq);
    }
}
