using System;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace Flatlane.Tests;

// Request/reply between C# endpoints, then with real C++ processes
// (build/tests/cpp/flatlane_peer_service, tests/cpp/peer_service.cpp).
public class ServiceTests
{
    private static readonly TimeSpan T = TimeSpan.FromSeconds(10);

    // Serves `count` requests on a thread of its own with the peers' answer rule.
    private static Thread Serve(ServiceServer server, int count)
    {
        var t = new Thread(() =>
        {
            for (int i = 0; i < count; i++)
            {
                using Request r = server.Receive(T);
                ServiceMessages.Answer(server, r);
            }
        }) { IsBackground = true };
        t.Start();
        return t;
    }

    [Fact]
    public void Calls_ZeroCopyBothWays()
    {
        using var ch = new Channel("s-calls");
        const int count = 300;
        using var server = new ServiceServer(ch.Name, ServiceMessages.Options());
        using var client = new ServiceClient(ch.Name, ServiceMessages.Options());
        Assert.InRange(client.MaxRequest, 1024, 1024 + 64);  // at least as asked; the slot is rounded to 64
        var t = Serve(server, count);
        for (ulong i = 0; i < count; i++)
        {
            byte[] req = ServiceMessages.RequestPayload(i);
            if (i % 2 == 0)
            {
                using Reply rep = client.Call(req, T);
                Assert.True(ServiceMessages.IsAnswer(req, rep.Data), $"call {i}");
                Assert.False(rep.More);
            }
            else
            {
                Span<byte> s = client.Prepare(req.Length);
                req.CopyTo(s);
                ulong id = client.SendPrepared(req.Length);
                using Reply rep = client.Receive(id, T);
                Assert.Equal(id, rep.Id);
                Assert.True(ServiceMessages.IsAnswer(req, rep.Data), $"call {i}");
            }
        }
        Assert.True(t.Join(T));
        ServerStats st = server.Stats;
        Assert.Equal((ulong)count, st.Requests);
        Assert.Equal((ulong)count, st.Replies);
        Assert.Equal(0ul, st.DroppedReplies);
        Assert.Equal(1u, st.Clients);
    }

    [Fact]
    public void Streaming_SeveralRepliesPerRequest_TailCommits()
    {
        using var ch = new Channel("s-stream");
        using var server = new ServiceServer(ch.Name, ServiceMessages.Options());
        using var client = new ServiceClient(ch.Name, ServiceMessages.Options());
        ulong id = client.Send("count to 3"u8);
        using (Request r = server.Receive(T))
        {
            Assert.Equal(id, r.Id);
            Assert.True(r.Data.SequenceEqual("count to 3"u8));
            for (byte k = 1; k <= 3; k++)
            {
                Span<byte> o = server.PrepareReply(r, 64);
                o[^2] = k;
                o[^1] = 0xAB;
                server.CommitReplyTail(2, more: k < 3);  // the last 2 bytes only
            }
            server.Reply(r, [9, 9, 9]);  // a fourth, copied
        }
        for (byte k = 1; k <= 3; k++)
        {
            using Reply rep = client.Receive(id, T);
            Assert.Equal(new byte[] { k, 0xAB }, rep.Data.ToArray());
            Assert.Equal(k < 3, rep.More);
        }
        using (Reply last = client.Receive(id, T)) Assert.Equal(new byte[] { 9, 9, 9 }, last.Data.ToArray());
    }

    [Fact]
    public void Timeout_WhenTheServerDoesNotAnswer_ThenALateReplyIsSkipped()
    {
        using var ch = new Channel("s-timeout");
        using var server = new ServiceServer(ch.Name, ServiceMessages.Options());
        using var client = new ServiceClient(ch.Name, ServiceMessages.Options());
        var sw = Stopwatch.StartNew();
        Assert.Throws<FlatlaneTimeoutException>(() => client.Call([1, 2, 3], TimeSpan.FromMilliseconds(150)));
        Assert.InRange(sw.ElapsedMilliseconds, 140, 5000);
        using (Request late = server.Receive(T)) ServiceMessages.Answer(server, late);  // nobody waits for it any more
        byte[] req = ServiceMessages.RequestPayload(7);
        var t = Serve(server, 1);
        using (Reply rep = client.Call(req, T)) Assert.True(ServiceMessages.IsAnswer(req, rep.Data));
        Assert.True(t.Join(T));
    }

    // A zero timeout polls once (the poll runs without the GC transition): nothing there is a
    // Timeout at once, something there is delivered.
    [Fact]
    public void ZeroTimeoutReceives_PollOnce()
    {
        using var ch = new Channel("s-poll");
        using var server = new ServiceServer(ch.Name, ServiceMessages.Options());
        using var client = new ServiceClient(ch.Name, ServiceMessages.Options());
        var sw = Stopwatch.StartNew();
        Assert.Throws<FlatlaneTimeoutException>(() => server.Receive(TimeSpan.Zero));
        ulong id = client.Send(ServiceMessages.RequestPayload(3));
        Assert.Throws<FlatlaneTimeoutException>(() => client.Receive(id, TimeSpan.Zero));
        Assert.InRange(sw.ElapsedMilliseconds, 0, 1000);
        Request req = default;
        var until = Stopwatch.StartNew();
        bool got = false;
        while (!got && until.Elapsed < T)
        {
            try
            {
                req = server.Receive(TimeSpan.Zero);
                got = true;
            }
            catch (FlatlaneTimeoutException)
            {
            }
        }
        Assert.True(got);
        using (req) ServiceMessages.Answer(server, req);
        Reply rep = default;
        got = false;
        while (!got && until.Elapsed < T)
        {
            try
            {
                rep = client.Receive(id, TimeSpan.Zero);
                got = true;
            }
            catch (FlatlaneTimeoutException)
            {
            }
        }
        Assert.True(got);
        using (rep) Assert.True(ServiceMessages.IsAnswer(ServiceMessages.RequestPayload(3), rep.Data));
    }

    [Fact]
    public void ReleasedRequest_CannotBeAnswered_AndDoubleReleaseIsHarmless()
    {
        using var ch = new Channel("s-stale");
        using var server = new ServiceServer(ch.Name, ServiceMessages.Options());
        using var client = new ServiceClient(ch.Name, ServiceMessages.Options());
        client.Send([1]);
        Request r = server.Receive(T);
        r.Dispose();
        r.Dispose();
        Assert.Equal(ErrorCode.InvalidArgument, Assert.Throws<FlatlaneException>(() => server.Reply(r, [2])).ErrorCode);
        Assert.Equal(ErrorCode.InvalidArgument, Assert.Throws<FlatlaneException>(() => server.CommitReply(0)).ErrorCode);
    }

    // ---- asynchronous receive

    [Fact]
    public async Task ReceiveAsync_ServerAndClient_CompleteLaterWithoutBlockingTheCaller()
    {
        using var ch = new Channel("s-async");
        using var server = new ServiceServer(ch.Name, ServiceMessages.Options());
        using var client = new ServiceClient(ch.Name, ServiceMessages.Options());
        ValueTask<Request> pending = server.ReceiveAsync();
        Assert.False(pending.IsCompleted);  // nothing sent yet: the server's waiter thread waits
        for (ulong i = 0; i < 50; i++)
        {
            byte[] req = ServiceMessages.RequestPayload(i);
            ulong id = client.Send(req);
            using (Request r = await pending)
            {
                Assert.Equal(id, r.Id);
                ServiceMessages.Answer(server, r);
            }
            pending = i + 1 < 50 ? server.ReceiveAsync() : default;
            using Reply rep = await client.ReceiveAsync(id);
            Assert.True(ServiceMessages.IsAnswer(req, rep.Data), $"call {i}");
        }
        // A reply that has not been sent yet: the client's waiter picks it up when it comes.
        byte[] last = ServiceMessages.RequestPayload(99);
        ValueTask<Reply> later = client.CallAsync(last);
        Assert.False(later.IsCompleted);
        using (Request r = server.Receive(T)) ServiceMessages.Answer(server, r);
        using (Reply rep = await later) Assert.True(ServiceMessages.IsAnswer(last, rep.Data));
    }

    [Fact]
    public async Task ReceiveAsync_Cancellation_ConsumesNothing_AndDisposeEndsTheWait()
    {
        using var ch = new Channel("s-async-cancel");
        using var server = new ServiceServer(ch.Name, ServiceMessages.Options());
        using var client = new ServiceClient(ch.Name, ServiceMessages.Options());
        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50)))
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await server.ReceiveAsync(cts.Token));
        byte[] req = ServiceMessages.RequestPayload(7);
        ulong id = client.Send(req);
        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50)))  // not answered yet
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await client.ReceiveAsync(id, cts.Token));
        using (Request r = await server.ReceiveAsync()) ServiceMessages.Answer(server, r);  // the request, not lost
        using (Reply rep = await client.ReceiveAsync(id)) Assert.True(ServiceMessages.IsAnswer(req, rep.Data));
        ValueTask<Request> orphan = server.ReceiveAsync();
        Assert.Throws<InvalidOperationException>(() => server.ReceiveAsync());  // one pending at a time
        server.Dispose();  // the pending wait ends: disposed, or closed if the close reached the native wait first
        var e = await Assert.ThrowsAnyAsync<Exception>(async () => await orphan).WaitAsync(T);
        Assert.True(e is ObjectDisposedException || (e is FlatlaneException fe && fe.ErrorCode == ErrorCode.Closed),
                    e.ToString());
    }

    [Fact]
    public async Task ReceiveAsync_ServesACppClientProcess_AndSeesAKilledServer()
    {
        using var ch = new Channel("si-async");
        const int count = 200;
        using (var server = new ServiceServer(ch.Name, ServiceMessages.Options()))
        using (var peer = Peer.Start(Build.PeerService, "call", ch.Name, $"{count}"))
        {
            for (int i = 0; i < count; i++)
            {
                using Request r = await server.ReceiveAsync();
                ServiceMessages.Answer(server, r);
            }
            Assert.Equal($"done {count}", peer.Expect("done"));
            Assert.True(peer.WaitExit() == 0, peer.Describe());
        }
        using var ch2 = new Channel("si-async-kill");
        using var victim = Peer.Start(Build.PeerService, "serve", ch2.Name, "0");
        victim.Expect("ready");
        using var client = new ServiceClient(ch2.Name, ServiceMessages.Options() with { Wait = WaitStrategy.Blocking });
        ulong id = client.Send(ServiceMessages.RequestPayload(1));
        using (Reply rep = await client.ReceiveAsync(id)) Assert.Equal(id, rep.Id);
        ulong id2 = client.Send(ServiceMessages.RequestPayload(2));
        using (Reply rep = await client.ReceiveAsync(id2)) Assert.Equal(id2, rep.Id);
        victim.Kill9();
        var e = await Assert.ThrowsAsync<FlatlanePeerGoneException>(
            async () => await client.ReceiveAsync(client.Send(ServiceMessages.RequestPayload(3))));
        Assert.Equal(ErrorCode.PeerDead, e.ErrorCode);
    }

    // ---- interop with C++ processes

    [Fact]
    public void CSharpClient_To_CppServer()
    {
        using var ch = new Channel("si-cs2cpp");
        const int count = 200;
        using var peer = Peer.Start(Build.PeerService, "serve", ch.Name, $"{count}");
        peer.Expect("ready");
        using var client = new ServiceClient(ch.Name, ServiceMessages.Options());
        for (ulong i = 0; i < count; i++)
        {
            byte[] req = ServiceMessages.RequestPayload(i);
            using Reply rep = client.Call(req, T);
            Assert.True(ServiceMessages.IsAnswer(req, rep.Data), $"call {i}");
        }
        Assert.Equal($"done {count}", peer.Expect("done"));
        Assert.True(peer.WaitExit() == 0, peer.Describe());
    }

    [Fact]
    public void CppClient_To_CSharpServer()
    {
        using var ch = new Channel("si-cpp2cs");
        const int count = 200;
        using var server = new ServiceServer(ch.Name, ServiceMessages.Options());
        using var peer = Peer.Start(Build.PeerService, "call", ch.Name, $"{count}");
        var t = Serve(server, count);
        Assert.Equal($"done {count}", peer.Expect("done"));
        Assert.True(peer.WaitExit() == 0, peer.Describe());
        Assert.True(t.Join(T));
        Assert.Equal((ulong)count, server.Stats.Replies);
    }

    [Fact]
    public void Kill9OfTheCppServer_CSharpClientGetsPeerDead()
    {
        using var ch = new Channel("si-kill-server");
        using var peer = Peer.Start(Build.PeerService, "serve", ch.Name, "0");
        peer.Expect("ready");
        using var client = new ServiceClient(ch.Name, ServiceMessages.Options() with { Wait = WaitStrategy.Blocking });
        byte[] req = ServiceMessages.RequestPayload(1);
        using (Reply rep = client.Call(req, T)) Assert.True(ServiceMessages.IsAnswer(req, rep.Data));
        peer.Kill9();
        var sw = Stopwatch.StartNew();
        var e = Assert.Throws<FlatlanePeerGoneException>(() => client.Call(req, T));
        Assert.Equal(ErrorCode.PeerDead, e.ErrorCode);
        Assert.InRange(sw.ElapsedMilliseconds, 0, 2000);  // a liveness interval (50 ms), not the 10 s timeout
    }

    [Fact]
    public void Kill9OfACppClientWithARequestInFlight_TheCSharpServerGoesOn()
    {
        using var ch = new Channel("si-kill-client");
        using var server = new ServiceServer(ch.Name, ServiceMessages.Options());
        using var peer = Peer.Start(Build.PeerService, "hang", ch.Name, "1");
        peer.Expect("sent");
        using (Request r = server.Receive(T))
        {
            Assert.True(r.Data.SequenceEqual("never read"u8));
            peer.Kill9();
            // Answering a dead client is not the server's failure: the reply fits its ring (nobody
            // reads it) or is dropped and counted; either way the server serves the next client.
            try
            {
                server.Reply(r, [1]);
            }
            catch (FlatlanePeerGoneException)
            {
            }
        }
        using var client = new ServiceClient(ch.Name, ServiceMessages.Options());
        var t = Serve(server, 1);
        byte[] req = ServiceMessages.RequestPayload(3);
        using (Reply rep = client.Call(req, T)) Assert.True(ServiceMessages.IsAnswer(req, rep.Data));
        Assert.True(t.Join(T));
    }
}
