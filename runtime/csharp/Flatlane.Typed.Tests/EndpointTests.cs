using System;
using System.Threading;
using System.Threading.Tasks;
using Flatlane.FlatBuffers;
using Flatlane.Tests;
using Xunit;
using Calc = fltest.Calc;
using Samples = fltest.Samples;

namespace Flatlane.Typed.Tests;

/// <summary>Generated endpoints in one process, through real shared memory: every pattern, sizes, errors, allocation.</summary>
public class EndpointTests
{
    // Samples.samples: no max_message -> 64 KiB slots; a Sample's fixed part is < 100 bytes, its
    // values 4 bytes each.
    private const int SampleMax = 16_350;
    // Bulk.blobs: max_message 1 MiB -> 1 MiB slots; a Blob's fixed part is < 64 bytes.
    private const int BlobMax = (1 << 20) - 64;

    [Fact]
    public void Topic_FanOut_EverySize_ZeroToSlot()
    {
        using var ch = new Channel("tsamples");
        using var pub = new Samples.SamplesChannel.Publisher(ch.Name);
        using var sub1 = new Samples.SamplesChannel.Subscriber(ch.Name);
        using var sub2 = new Samples.SamplesChannel.Subscriber(ch.Name);
        Assert.Equal(64 * 1024, pub.MaxMessage);
        for (ulong k = 0; k < 40; k++)
        {
            FbBuilder b = pub.Begin();
            pub.Publish(Msgs.BuildSample(b, k, SampleMax));
            foreach (var sub in new[] { sub1, sub2 })
            {
                using var s = sub.Receive(TimeSpan.FromSeconds(5));
                Msgs.ExpectSample(s.Message, k, SampleMax);
                Assert.True(fltest.Sample.Verify(s.Data));
            }
        }
    }

    [Fact]
    public void Topic_MessageBeyondTheSlot_IsMessageTooLarge_AndNothingIsSent()
    {
        using var ch = new Channel("tbig");
        using var pub = new Samples.SamplesChannel.Publisher(ch.Name);
        using var sub = new Samples.SamplesChannel.Subscriber(ch.Name);
        FbBuilder b = pub.Begin();
        var e = Assert.Throws<FlatlaneException>(() => Msgs.BuildSample(b, 7, 16_500));
        Assert.Equal(ErrorCode.MessageTooLarge, e.ErrorCode);
        pub.Discard();
        Assert.False(sub.TryReceive(TimeSpan.FromMilliseconds(20), out _));
        // The publisher goes on working.
        pub.Publish(Msgs.BuildSample(pub.Begin(), 3, SampleMax));
        using var s = sub.Receive(TimeSpan.FromSeconds(5));
        Msgs.ExpectSample(s.Message, 3, SampleMax);
    }

    [Fact]
    public void TopicGeometry_IsTheRuleOfTheCppAndPythonEndpoints()
    {
        // Whichever language creates a topic decides its slots, so all three must agree
        // (typed/topic_endpoints.hpp topic_options, typed.py _topic_geometry).
        // samples: 64 KiB ring, no max message -> 64 KiB slots, ring / slot = 1 raised to 8.
        var s = Samples.SamplesChannel.Spec.TopicOptionsFor("x", 1);
        Assert.Equal(64 * 1024, s.SlotSize);
        Assert.Equal(8, s.SlotCount);
        // capped: 16 KiB max message in a 64 KiB ring -> 16 KiB slots, 4 raised to 8.
        var c = fltest.Bulk.Capped.Spec.TopicOptionsFor("x", 1);
        Assert.Equal(16 * 1024, c.SlotSize);
        Assert.Equal(8, c.SlotCount);
        // A small max message: ring / slot, at most 4096.
        var small = Samples.SamplesChannel.Spec with { MaxMessage = 100, RingCapacity = 1 << 20 };
        Assert.Equal(128, small.TopicOptionsFor("x", 1).SlotSize);
        Assert.Equal(4096, small.TopicOptionsFor("x", 1).SlotCount);
    }

    [Fact]
    public void Pipeline_WorkQueue_EachMessageOnce_SizesBeyondTheChunkSize()
    {
        using var ch = new Channel("tblobs");
        using var push = new fltest.Bulk.Blobs.Pusher(ch.Name);
        using var pull1 = new fltest.Bulk.Blobs.Puller(ch.Name);
        using var pull2 = new fltest.Bulk.Blobs.Puller(ch.Name);
        Assert.Equal(1 << 20, push.MaxMessage);
        Assert.Equal(Distribution.WorkQueue, fltest.Bulk.Blobs.Spec.TopicOptionsFor("x", 1).Distribution);
        const int n = 24;
        var seen = new bool[n];
        int got = 0;
        for (ulong k = 0; k < n; k++)
        {
            push.Publish(Msgs.BuildBlob(push.Begin(), k, BlobMax));
            // Whoever has it: each message exactly once.
            var puller = k % 2 == 0 ? pull1 : pull2;
            if (!puller.TryReceive(TimeSpan.FromMilliseconds(50), out var s))
                Assert.True((puller == pull1 ? pull2 : pull1).TryReceive(TimeSpan.FromSeconds(5), out s), $"blob {k} not delivered");
            using (s)
            {
                ulong id = Msgs.ExpectBlob(s.Message, BlobMax);
                Assert.False(seen[id]);
                seen[id] = true;
                got++;
            }
        }
        Assert.Equal(n, got);
        Assert.False(pull1.TryReceive(TimeSpan.FromMilliseconds(10), out _));
        Assert.False(pull2.TryReceive(TimeSpan.FromMilliseconds(10), out _));
    }

    [Fact]
    public async Task Service_Calls_AndStreamingReplies()
    {
        using var ch = new Channel("tcalc");
        using var addServer = new Calc.Add.Server(ch.Name + ".add");
        using var countServer = new Calc.Count.Server(ch.Name + ".count");
        using var add = new Calc.Add.Client(ch.Name + ".add");
        using var count = new Calc.Count.Client(ch.Name + ".count");
        const int calls = 50;
        Task serving = Task.Run(() =>
        {
            for (int i = 0; i < calls; i++)
            {
                using (var r = addServer.Receive(TimeSpan.FromSeconds(10)))
                {
                    var req = r.Message;
                    FbBuilder b = addServer.BeginReply(r);
                    addServer.Reply(fltest.AddReply.Build(b).Sum(req.A + req.B).End());
                }
                using (var r = countServer.Receive(TimeSpan.FromSeconds(10)))
                {
                    uint to = r.Message.To;
                    for (uint n = 1; n <= to; n++)
                    {
                        FbBuilder b = countServer.BeginReply(r);
                        countServer.Reply(fltest.CountReply.Build(b).N(n).End(), more: n < to);
                    }
                }
            }
        });
        for (int i = 0; i < calls; i++)
        {
            ulong id = add.Send(fltest.AddRequest.Build(add.Begin()).A(i).B(1000).End());
            using (var rep = add.Receive(id, TimeSpan.FromSeconds(10)))
            {
                Assert.Equal(i + 1000, rep.Message.Sum);
                Assert.False(rep.More);
            }
            uint want = Msgs.CountFor((ulong)i);
            ulong cid = count.Send(fltest.CountRequest.Build(count.Begin()).To(want).End());
            for (uint n = 1; ; n++)
            {
                using var rep = count.Receive(cid, TimeSpan.FromSeconds(10));
                Assert.Equal(n, rep.Message.N);
                if (!rep.More)
                {
                    Assert.Equal(want, n);
                    break;
                }
            }
        }
        await serving;
    }

    [Fact]
    public async Task Service_ReceiveAsync_OnBothSides_VerifiesAndStreams()
    {
        using var ch = new Channel("tcalc-async");
        using var addServer = new Calc.Add.Server(ch.Name + ".add");
        using var countServer = new Calc.Count.Server(ch.Name + ".count");
        using var add = new Calc.Add.Client(ch.Name + ".add");
        using var count = new Calc.Count.Client(ch.Name + ".count");
        const int calls = 30;
        async Task Serve()
        {
            for (int i = 0; i < calls; i++)
            {
                using (var r = await addServer.ReceiveAsync())
                    addServer.Reply(fltest.AddReply.Build(addServer.BeginReply(r)).Sum(r.Message.A + r.Message.B).End());
                using (var r = await countServer.ReceiveAsync())
                {
                    uint to = r.Message.To;
                    for (uint n = 1; n <= to; n++)
                        countServer.Reply(fltest.CountReply.Build(countServer.BeginReply(r)).N(n).End(), more: n < to);
                }
            }
        }
        Task serving = Serve();  // both servers on one task, awaiting, no thread of their own
        for (int i = 0; i < calls; i++)
        {
            ulong id = add.Send(fltest.AddRequest.Build(add.Begin()).A(i).B(7).End());
            using (var rep = await add.ReceiveAsync(id)) Assert.Equal(i + 7, rep.Message.Sum);
            ulong cid = count.Send(fltest.CountRequest.Build(count.Begin()).To(3).End());
            for (uint n = 1; ; n++)
            {
                using var rep = await count.ReceiveAsync(cid);
                Assert.Equal(n, rep.Message.N);
                if (!rep.More) break;
            }
        }
        await serving.WaitAsync(TimeSpan.FromSeconds(10));
        // A request that is not an AddRequest: refused by verification on the awaiting path too.
        using var raw = new ServiceClient(ch.Name + ".add", new ServiceOptions
        {
            RequestTypeName = fltest.AddRequest.TypeName, RequestTypeHash = fltest.AddRequest.TypeHash,
            ReplyTypeName = fltest.AddReply.TypeName, ReplyTypeHash = fltest.AddReply.TypeHash,
        });
        raw.Send(new byte[] { 0xff, 0xff, 0, 0, 1, 2, 3, 4 });
        var e = await Assert.ThrowsAsync<FlatlaneException>(async () => await addServer.ReceiveAsync());
        Assert.Equal(ErrorCode.Corrupt, e.ErrorCode);
    }

    [Fact]
    public void Service_MoreOnANonStreamingMethod_IsRefused()
    {
        using var ch = new Channel("tmore");
        using var server = new Calc.Add.Server(ch.Name);
        using var client = new Calc.Add.Client(ch.Name);
        ulong id = client.Send(fltest.AddRequest.Build(client.Begin()).A(1).B(2).End());
        using var r = server.Receive(TimeSpan.FromSeconds(5));
        FbBuilder b = server.BeginReply(r);
        var root = fltest.AddReply.Build(b).Sum(3).End();
        var e = Assert.Throws<InvalidOperationException>(() => server.Reply(root, more: true));
        Assert.Contains("not a streaming method", e.Message, StringComparison.Ordinal);
        server.Reply(fltest.AddReply.Build(server.BeginReply(r)).Sum(3).End());
        using var rep = client.Receive(id, TimeSpan.FromSeconds(5));
        Assert.Equal(3, rep.Message.Sum);
    }

    [Fact]
    public void Attach_WithAnotherType_IsTypeMismatch()
    {
        using var ch = new Channel("ttype");
        using var pub = new Samples.SamplesChannel.Publisher(ch.Name);
        var e = Assert.Throws<FlatlaneException>(() => new fltest.Bulk.Blobs.Puller(ch.Name));
        Assert.Equal(ErrorCode.TypeMismatch, e.ErrorCode);
        // Same name, other hash (another version of the type): refused too.
        var raw = Assert.Throws<FlatlaneException>(() => new TopicSubscriber(ch.Name,
            new TopicOptions { TypeName = fltest.Sample.TypeName, TypeHash = fltest.Sample.TypeHash ^ 1 }));
        Assert.Equal(ErrorCode.TypeMismatch, raw.ErrorCode);
        using var server = new Calc.Add.Server(ch.Name + ".svc");
        var s = Assert.Throws<FlatlaneException>(() => new Calc.Count.Client(ch.Name + ".svc"));
        Assert.Equal(ErrorCode.TypeMismatch, s.ErrorCode);
    }

    [Fact]
    public void Malformed_Message_IsCorrupt_AndDropped()
    {
        using var ch = new Channel("tcorrupt");
        using var sub = new Samples.SamplesChannel.Subscriber(ch.Name);
        // A raw publisher with the right identity but bytes that are no Sample.
        using var raw = new TopicPublisher(ch.Name, Samples.SamplesChannel.Spec.TopicOptionsFor(fltest.Sample.TypeName, fltest.Sample.TypeHash));
        raw.Send(new byte[] { 4, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f });
        var e = Assert.Throws<FlatlaneException>(() => sub.Receive(TimeSpan.FromSeconds(5)));
        Assert.Equal(ErrorCode.Corrupt, e.ErrorCode);
        Assert.Contains("failed FlatBuffers verification as fltest.Sample", e.Message, StringComparison.Ordinal);
        raw.Send(ReadOnlySpan<byte>.Empty);
        Assert.Equal(ErrorCode.Corrupt, Assert.Throws<FlatlaneException>(() => sub.Receive(TimeSpan.FromSeconds(5))).ErrorCode);
        Assert.Equal(0u, sub.Raw.Stats.Held); // released, not leaked
        // A good one after them is delivered.
        var b = new FbBuilder(4096);
        b.Finish(Msgs.BuildSample(b, 5, 10).Value);
        raw.Send(b.WrittenSpan);
        using var s = sub.Receive(TimeSpan.FromSeconds(5));
        Msgs.ExpectSample(s.Message, 5, 10);
    }

    [Fact]
    public async Task ReceiveAsync_WithCancellation_ConsumesNothing()
    {
        using var ch = new Channel("tasync");
        using var pub = new Samples.SamplesChannel.Publisher(ch.Name);
        using var sub = new Samples.SamplesChannel.Subscriber(ch.Name);
        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50)))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await sub.ReceiveAsync(cts.Token));
        }
        ValueTask<TypedSample<fltest.Sample>> pending = sub.ReceiveAsync();
        await Task.Delay(20);
        pub.Publish(Msgs.BuildSample(pub.Begin(), 9, 100));
        using (var s = await pending) Msgs.ExpectSample(s.Message, 9, 100);
        pub.Publish(Msgs.BuildSample(pub.Begin(), 10, 100));
        using (var s = await sub.ReceiveAsync()) Msgs.ExpectSample(s.Message, 10, 100);
    }

    [Fact]
    public void HotPath_AllocatesNothing()
    {
        using var ch = new Channel("talloc");
        using var pub = new Samples.SamplesChannel.Publisher(ch.Name);
        using var sub = new Samples.SamplesChannel.Subscriber(ch.Name);
        using var server = new Calc.Add.Server(ch.Name + ".svc");
        using var client = new Calc.Add.Client(ch.Name + ".svc");
        void Round(int i)
        {
            FbBuilder b = pub.Begin();
            Span<float> three = stackalloc float[3];
            three[0] = 1f;
            three[1] = 2f;
            three[2] = 3f;
            var v = b.CreateVector<float>(three);
            pub.Publish(fltest.Sample.Build(b).Id((ulong)i).Values(v).End());
            using (var s = sub.Receive(TimeSpan.FromSeconds(5)))
            {
                if (s.Message.Id != (ulong)i || s.Message.Values[2] != 3f) Assert.Fail("bad sample");
            }
            ulong id = client.Send(fltest.AddRequest.Build(client.Begin()).A(i).B(1).End());
            using (var r = server.Receive(TimeSpan.FromSeconds(5)))
            {
                server.Reply(fltest.AddReply.Build(server.BeginReply(r)).Sum(r.Message.A + r.Message.B).End());
            }
            using var rep = client.Receive(id, TimeSpan.FromSeconds(5));
            if (rep.Message.Sum != i + 1) Assert.Fail("bad reply");
        }
        for (int i = 0; i < 100; i++) Round(i); // warm: reply channel opened, slot tables grown
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++) Round(i);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void Overflow_Fail_NeverWaits()
    {
        using var ch = new Channel("tfail");
        using var pub = new Samples.Strict.Publisher(ch.Name);
        using var sub = new Samples.Strict.Subscriber(ch.Name);   // never reads: its queue and the slots fill up
        var sw = System.Diagnostics.Stopwatch.StartNew();
        int sent = 0;
        FlatlaneException? e = null;
        for (; sent < 1000 && e is null; sent++)
        {
            try
            {
                pub.Publish(Msgs.BuildSample(pub.Begin(), (ulong)sent, 4));
            }
            catch (FlatlaneException x)
            {
                e = x;
            }
        }
        Assert.NotNull(e);
        Assert.Equal(ErrorCode.Timeout, e!.ErrorCode);
        Assert.InRange(sent, 2, 100);
        Assert.True(sw.Elapsed < TimeSpan.FromMilliseconds(900), $"waited {sw.Elapsed}");
        using var first = sub.Receive(TimeSpan.FromSeconds(1));
        Msgs.ExpectSample(first.Message, 0, 4);
    }

    [Fact]
    public void RobotCell_RootTypeWithIdentifier_AndUnion_OverTopicAndWorkQueue()
    {
        using var ch = new Channel("trobot");
        using (var pub = new robot.ArmTopics.Commands.Publisher(ch.Name))
        using (var sub = new robot.ArmTopics.Commands.Subscriber(ch.Name))
        {
            FbBuilder b = pub.Begin();
            Span<double> j = stackalloc double[] { 1, 2, 3 };
            var jv = robot.Command.CreateJointsVector(b, j);
            pub.Publish(robot.Command.Build(b).Speed(0.25f).Mode(robot.Mode.Auto).Joints(jv).End());
            using var m = sub.Receive(TimeSpan.FromSeconds(5));
            Assert.True(Fb.HasIdentifier(m.Data, "RBC1"));
            Assert.Equal(0.25f, m.Message.Speed);
            Assert.Equal(robot.Mode.Auto, m.Message.Mode);
            Assert.Equal(3.0, m.Message.Joints[2]);
        }
        using var push = new robot.Planners.Jobs.Pusher(ch.Name + ".jobs");
        using var pull = new robot.Planners.Jobs.Puller(ch.Name + ".jobs");
        FbBuilder jb = push.Begin();
        var wp = robot.Waypoint.Build(jb).Index(4).Last(true).End();
        push.Publish(robot.PlanJob.Build(jb).Id(77).InputAsWaypoint(wp).DeadlineNs(0).End());
        using var job = pull.Receive(TimeSpan.FromSeconds(5));
        Assert.Equal(77UL, job.Message.Id);
        Assert.Equal(robot.PlanInput.Waypoint, job.Message.InputType);
        Assert.Equal(4u, job.Message.InputAsWaypoint.Index);
        Assert.True(job.Message.InputAsWaypoint.Last);
        Assert.False(job.Message.InputAsCommand.IsPresent);
        Assert.Equal(0L, job.Message.DeadlineNs);
    }

    [Fact]
    public async Task Service_MessagesUpToTheMaximum_AndBeyond()
    {
        // ks.Sinks.Put: no flatlane_max_message, so 64 KiB per request and reply (as in C++).
        using var ch = new Channel("tsinks");
        using var server = new ks.Sinks.Put.Server(ch.Name);
        using var client = new ks.Sinks.Put.Client(ch.Name);
        Assert.InRange(client.MaxRequest, 64 * 1024, 64 * 1024 + 64); // the runtime rounds the slot up
        Assert.Equal(64 * 1024, server.MaxReply);
        int[] sizes = [0, 1, 1000, 30000, 65000];
        Task serving = Task.Run(() =>
        {
            foreach (int n in sizes)
            {
                using var r = server.Receive(TimeSpan.FromSeconds(10));
                int len = r.Message.SUtf8.Length;
                FbBuilder b = server.BeginReply(r);
                var text = b.CreateString(r.Message.SUtf8);          // echo the text back in the reply
                server.Reply(ks.Leaf.Build(b).Text(text).N(len).End());
            }
        });
        foreach (int n in sizes)
        {
            FbBuilder b = client.Begin();
            var text = b.CreateString(new string('q', n));
            ulong id = client.Send(ks.Sink.Build(b).S(text).End());
            using var rep = client.Receive(id, TimeSpan.FromSeconds(10));
            Assert.Equal(n, rep.Message.N);
            Assert.Equal(n, rep.Message.TextUtf8.Length);
            Assert.True(rep.Data.Length > n);
        }
        await serving;
        FbBuilder big = client.Begin();
        Assert.Equal(ErrorCode.MessageTooLarge, Assert.Throws<FlatlaneException>(() => big.CreateString(new string('q', 70000))).ErrorCode);
        client.Abort();
    }
}
