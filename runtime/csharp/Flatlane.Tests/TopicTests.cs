using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace Flatlane.Tests;

// Topics between C# endpoints of one process (every pattern through the C ABI), then real
// processes: the C++ side is build/tests/cpp/flatlane_peer_topic (tests/cpp/peer_topic.cpp).
public class TopicTests
{
    private static readonly TimeSpan T = TimeSpan.FromSeconds(10);

    [Fact]
    public void FanOut_EverySubscriberGetsEveryMessageInOrder()
    {
        using var ch = new Channel("t-fanout");
        using var pub = new TopicPublisher(ch.Name, TopicMessages.Options());
        using var a = new TopicSubscriber(ch.Name, TopicMessages.Options());
        using var b = new TopicSubscriber(ch.Name, TopicMessages.Options());
        Assert.Equal(2, pub.SubscriberCount);
        Assert.Equal(1024, pub.MaxMessage);
        for (ulong i = 0; i < 12; i++) TopicMessages.Send(pub, i, 16 + (int)i * 50);
        foreach (var sub in new[] { a, b })
        {
            for (ulong i = 0; i < 12; i++)
            {
                using Sample s = sub.Receive(T);
                Assert.Equal(i, TopicMessages.Id(s.Data));
                Assert.True(TopicMessages.Ok(s.Data));
                Assert.Equal(16 + (int)i * 50, s.Length);
                Assert.Equal(i + 1, s.Seq);
            }
            Assert.False(sub.TryReceive(TimeSpan.Zero, out _));
            Assert.Equal(12ul, sub.Stats.Received);
        }
        Assert.Equal(12ul, pub.Stats.Messages);
        // Every slot came back to the pool once both released.
        Assert.Equal(pub.Stats.SlotCount, pub.Stats.FreeSlots);
    }

    [Fact]
    public void PublishTail_SendAndDiscard()
    {
        using var ch = new Channel("t-tail");
        using var pub = new TopicPublisher(ch.Name, TopicMessages.Options());
        using var sub = new TopicSubscriber(ch.Name, TopicMessages.Options());
        Span<byte> s = pub.Loan(100, T);
        TopicMessages.Fill(s[60..], 5);  // built at the end, as a FlatBuffers builder would
        pub.PublishTail(40);
        pub.Loan(10, T);
        pub.Discard();  // nothing becomes visible
        var msg = new byte[30];
        TopicMessages.Fill(msg, 6);
        pub.Send(msg, T);
        using (Sample a = sub.Receive(T))
        {
            Assert.Equal(40, a.Length);
            Assert.Equal(5ul, TopicMessages.Id(a.Data));
            Assert.True(TopicMessages.Ok(a.Data));
        }
        using (Sample b = sub.Receive(T)) Assert.True(b.Data.SequenceEqual(msg));
        Assert.False(sub.TryReceive(TimeSpan.Zero, out _));
        // Misuse is refused, not clamped: publishing without a loan, or more than was loaned.
        Assert.Equal(ErrorCode.InvalidArgument, Assert.Throws<FlatlaneException>(() => pub.Publish(1)).ErrorCode);
        pub.Loan(10, T);
        var e = Assert.Throws<FlatlaneException>(() => pub.Publish(11));
        Assert.Equal(ErrorCode.InvalidArgument, e.ErrorCode);
        Assert.Contains("publish", e.Message);
        Assert.Equal(ErrorCode.MessageTooLarge, Assert.Throws<FlatlaneException>(() => pub.Loan(1025, T)).ErrorCode);
    }

    [Fact]
    public void DropOldest_AFullQueueLosesItsOldestMessages_AndCountsThem()
    {
        using var ch = new Channel("t-drop");
        using var pub = new TopicPublisher(ch.Name, TopicMessages.Options());
        using var sub = new TopicSubscriber(ch.Name, TopicMessages.Options());
        for (ulong i = 0; i < 40; i++) TopicMessages.Send(pub, i);  // never waits: queue depth 16
        SubscriberStats st = sub.Stats;
        Assert.Equal(24ul, st.Dropped);
        Assert.Equal(16u, st.Queued);
        for (ulong i = 24; i < 40; i++)
        {
            using Sample s = sub.Receive(T);
            Assert.Equal(i, TopicMessages.Id(s.Data));  // the newest 16 survive, in order
        }
        Assert.False(sub.TryReceive(TimeSpan.Zero, out _));
    }

    [Fact]
    public void HeldSamples_MaxHeldIsBusy_DoubleReleaseIsHarmless_ReleaseFromAnotherThread()
    {
        using var ch = new Channel("t-held");
        using var pub = new TopicPublisher(ch.Name, TopicMessages.Options());
        using var sub = new TopicSubscriber(ch.Name, TopicMessages.Options());
        for (ulong i = 0; i < 16; i++) TopicMessages.Send(pub, i);  // a full queue, nothing dropped
        var held = new List<Sample>();
        for (int i = 0; i < 16; i++) held.Add(sub.Receive(T));
        TopicMessages.Send(pub, 16);
        Assert.Equal(16u, sub.Stats.Held);
        Assert.Equal(ErrorCode.Busy, Assert.Throws<FlatlaneException>(() => sub.Receive(T)).ErrorCode);
        // Held data stays intact while the publisher goes on (slots are never reused while held).
        for (ulong i = 100; i < 140; i++) TopicMessages.Send(pub, i);
        for (int i = 0; i < 16; i++) Assert.Equal((ulong)i, TopicMessages.Id(held[i].Data));
        Sample copy = held[0];
        held[0].Dispose();
        copy.Dispose();  // the same token: refused by the native table, nothing released twice
        held[0].Dispose();
        Assert.Equal(15u, sub.Stats.Held);
        var t = new Thread(() => { for (int i = 1; i < 16; i++) held[i].Dispose(); });
        t.Start();
        t.Join();
        Assert.Equal(0u, sub.Stats.Held);
        using (Sample s = sub.Receive(T)) Assert.True(TopicMessages.Ok(s.Data));
    }

    [Fact]
    public void ReleaseAfterDispose_AndLateJoiner_AndHistory()
    {
        using var ch = new Channel("t-history");
        var o = TopicMessages.Options() with { History = 4 };
        using var pub = new TopicPublisher(ch.Name, o);
        var early = new TopicSubscriber(ch.Name, o);
        for (ulong i = 0; i < 10; i++) TopicMessages.Send(pub, i);
        Sample kept = early.Receive(T);
        early.Dispose();
        kept.Dispose();  // after the subscriber is gone: harmless
        using var late = new TopicSubscriber(ch.Name, o with { HistoryRequest = 3 });
        for (ulong i = 7; i < 10; i++)
        {
            using Sample s = late.Receive(T);
            Assert.Equal(i, TopicMessages.Id(s.Data));
        }
        Assert.False(late.TryReceive(TimeSpan.Zero, out _));
        TopicMessages.Send(pub, 10);
        using (Sample s = late.Receive(T)) Assert.Equal(10ul, TopicMessages.Id(s.Data));
    }

    [Fact]
    public void WorkQueue_TwoCSharpPullers_EveryMessageExactlyOnce()
    {
        using var ch = new Channel("t-work");
        const int count = 2000;
        using var pub = new TopicPublisher(ch.Name, TopicMessages.WorkOptions());
        using var a = new TopicSubscriber(ch.Name, TopicMessages.WorkOptions());
        using var b = new TopicSubscriber(ch.Name, TopicMessages.WorkOptions());
        var got = new ConcurrentBag<ulong>();
        int total = 0;
        int[] per = new int[2];
        Thread Puller(TopicSubscriber s, int k) => new(() =>
        {
            while (Volatile.Read(ref total) < count)
            {
                if (!s.TryReceive(TimeSpan.FromMilliseconds(20), out Sample m)) continue;
                using (m)
                {
                    Assert.True(TopicMessages.Ok(m.Data));
                    got.Add(TopicMessages.Id(m.Data));
                }
                per[k]++;
                Interlocked.Increment(ref total);
            }
        });
        var ta = Puller(a, 0);
        var tb = Puller(b, 1);
        ta.Start();
        tb.Start();
        for (ulong i = 0; i < count; i++) TopicMessages.Send(pub, i, 64);
        Assert.True(ta.Join(TimeSpan.FromSeconds(30)) && tb.Join(TimeSpan.FromSeconds(30)));
        ulong[] ids = got.OrderBy(x => x).ToArray();
        Assert.Equal(Enumerable.Range(0, count).Select(x => (ulong)x), ids);  // all, none twice
        Assert.Equal(count, per[0] + per[1]);
        Assert.False(a.TryReceive(TimeSpan.Zero, out _) || b.TryReceive(TimeSpan.Zero, out _));
    }

    [Fact]
    public async Task ReceiveAsync_CancellationConsumesNothing_ThenDelivers()
    {
        using var ch = new Channel("t-async");
        using var pub = new TopicPublisher(ch.Name, TopicMessages.Options());
        using var sub = new TopicSubscriber(ch.Name, TopicMessages.Options());
        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50)))
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await sub.ReceiveAsync(cts.Token));
        TopicMessages.Send(pub, 1);
        using (Sample s = await sub.ReceiveAsync())  // already queued: completes synchronously
            Assert.Equal(1ul, TopicMessages.Id(s.Data));
        ValueTask<Sample> pending = sub.ReceiveAsync();
        await Task.Delay(50);
        TopicMessages.Send(pub, 2);
        using (Sample s = await pending.AsTask().WaitAsync(T)) Assert.Equal(2ul, TopicMessages.Id(s.Data));
    }

    [Fact]
    public async Task Close_InterruptsABlockedReceive()
    {
        using var ch = new Channel("t-close");
        using var pub = new TopicPublisher(ch.Name, TopicMessages.Options());
        using var sub = new TopicSubscriber(ch.Name, TopicMessages.Options());
        var blocked = Blocking.Start(() => Record.Exception(() => sub.Receive()));
        sub.Close();
        Exception? e = await blocked.WaitAsync(T);
        Assert.Equal(ErrorCode.Closed, Assert.IsType<FlatlaneException>(e).ErrorCode);
    }

    [Fact]
    public void TypeMismatch_IsRefused()
    {
        using var ch = new Channel("t-type");
        using var pub = new TopicPublisher(ch.Name, TopicMessages.Options());
        var e = Assert.Throws<FlatlaneException>(() => new TopicSubscriber(ch.Name, TopicMessages.WorkOptions(OpenMode.Open)));
        Assert.Equal(ErrorCode.TypeMismatch, e.ErrorCode);
    }

    // ---- interop with C++ processes

    [Fact]
    public void CSharpPublisher_To_CppSubscriber()
    {
        using var ch = new Channel("ti-cs2cpp");
        const int count = 300;
        using var pub = new TopicPublisher(ch.Name, TopicMessages.Options(OpenMode.Create));
        using var peer = Peer.Start(Build.PeerTopic, "subscribe", ch.Name, $"{count}", "mode=block", "size=300");
        peer.Expect("ready");
        Assert.Equal(1, pub.SubscriberCount);
        for (ulong i = 0; i < count; i++) TopicMessages.Send(pub, i, 300);  // block mode: nothing dropped
        Assert.Equal($"done {count}", peer.Expect("done"));
        Assert.True(peer.WaitExit() == 0, peer.Describe());
    }

    [Fact]
    public void CppPublisher_To_CSharpSubscriber_ThenPeerClosed()
    {
        using var ch = new Channel("ti-cpp2cs");
        const int count = 300;
        using var sub = new TopicSubscriber(ch.Name, TopicMessages.Options(OpenMode.Create) with
        {
            SubscriberMode = SubscriberMode.BlockPublisher,
        });
        using var peer = Peer.Start(Build.PeerTopic, "publish", ch.Name, $"{count}", "size=500");
        for (ulong i = 0; i < count; i++)
        {
            using Sample s = sub.Receive(T);
            Assert.Equal(i, TopicMessages.Id(s.Data));
            Assert.Equal(500, s.Length);
            Assert.True(TopicMessages.Ok(s.Data));
        }
        Assert.True(peer.WaitExit() == 0, peer.Describe());
        var e = Assert.Throws<FlatlanePeerGoneException>(() => sub.Receive(T));
        Assert.Equal(ErrorCode.PeerClosed, e.ErrorCode);
        Assert.Equal(0ul, sub.Stats.Dropped);
    }

    [Fact]
    public void CSharpPusher_To_CppPuller_WorkQueue()
    {
        using var ch = new Channel("ti-work");
        const int count = 200;
        using var pub = new TopicPublisher(ch.Name, TopicMessages.WorkOptions(OpenMode.Create));
        // Pushed before any worker exists: a work queue keeps them until one attaches.
        for (ulong i = 0; i < 10; i++) TopicMessages.Send(pub, i);
        using var peer = Peer.Start(Build.PeerTopic, "subscribe", ch.Name, $"{count}", "dist=work");
        peer.Expect("ready");
        for (ulong i = 10; i < count; i++) TopicMessages.Send(pub, i);
        Assert.Equal($"done {count}", peer.Expect("done"));
        Assert.True(peer.WaitExit() == 0, peer.Describe());
        Assert.Equal((ulong)count, pub.Stats.Messages);
    }

    [Fact]
    public void Kill9OfTheCppPublisher_CSharpSubscriberGetsPeerDead()
    {
        using var ch = new Channel("ti-kill-pub");
        using var sub = new TopicSubscriber(ch.Name, TopicMessages.Options(OpenMode.Create) with
        {
            SubscriberMode = SubscriberMode.BlockPublisher,
            Wait = WaitStrategy.Blocking,
        });
        using var peer = Peer.Start(Build.PeerTopic, "publish", ch.Name, "0");
        for (ulong i = 0; i < 100; i++)
        {
            using Sample s = sub.Receive(T);
            Assert.Equal(i, TopicMessages.Id(s.Data));
        }
        peer.Kill9();
        FlatlaneException? error = null;
        int drained = 0;
        while (error is null)
        {
            try
            {
                using Sample s = sub.Receive(T);
                Assert.True(TopicMessages.Ok(s.Data));  // published before the kill: intact
                drained++;
            }
            catch (FlatlaneException e)
            {
                error = e;
            }
        }
        Assert.Equal(ErrorCode.PeerDead, error.ErrorCode);
        Assert.InRange(drained, 0, 16);  // at most one queue's worth was waiting
    }

    [Fact]
    public void Kill9OfACppSubscriberHoldingSamples_TheCSharpPublisherReclaimsItsSlots()
    {
        using var ch = new Channel("ti-kill-sub");
        using var pub = new TopicPublisher(ch.Name, TopicMessages.Options(OpenMode.Create));
        using var peer = Peer.Start(Build.PeerTopic, "hold", ch.Name, "16");
        peer.Expect("ready");
        for (ulong i = 0; i < 16; i++) TopicMessages.Send(pub, i);
        Assert.Equal("held 16", peer.Expect("held"));
        Assert.Equal(48u, pub.Stats.FreeSlots);
        peer.Kill9();
        // The publisher finds the dead subscriber while publishing (at most once per liveness
        // interval) and takes its 16 held slots back.
        var sw = System.Diagnostics.Stopwatch.StartNew();
        ulong id = 16;
        while (pub.Stats.FreeSlots != 64 && sw.Elapsed < TimeSpan.FromSeconds(5))
        {
            TopicMessages.Send(pub, id++, 200, TimeSpan.FromSeconds(5));
            Thread.Sleep(2);
        }
        Assert.Equal(64u, pub.Stats.FreeSlots);
        Assert.Equal(0, pub.SubscriberCount);
    }
}
