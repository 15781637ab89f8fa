using System;
using System.Threading.Tasks;
using Flatlane.FlatBuffers;
using Flatlane.Tests;
using Xunit;
using Calc = fltest.Calc;

namespace Flatlane.Typed.Tests;

/// <summary>
/// Generated C# endpoints against real C++ and Python processes (peers/typed_peer.cpp: the C++
/// runtime's topics, work queues and services with flatc's C++ code and verifier;
/// peers/typed_peer.py: the Python package with flatc's Python code). Every pattern both ways;
/// messages from 0 elements up to the slot (Blob: 1 MiB, beyond the schema's 8 KiB chunk size).
/// </summary>
public class InteropTests
{
    private const int SampleMax = 990;
    private const int BlobMax = (1 << 20) - 64;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private static Peer Start(string lang, string mode, string name, int count, string t1, ulong h1, string t2, ulong h2, int max)
    {
        string[] args = [mode, name, count.ToString(System.Globalization.CultureInfo.InvariantCulture), t1, TypedPeers.Hex(h1), t2,
            TypedPeers.Hex(h2), max.ToString(System.Globalization.CultureInfo.InvariantCulture)];
        return TypedPeers.Start(lang, args);
    }

    private static void Finish(Peer p, string done)
    {
        string line = p.Expect("done", Wait);
        Assert.StartsWith(done, line, StringComparison.Ordinal);
        Assert.True(p.WaitExit() == 0, p.Describe());
    }

    private static int Count(string lang) => lang == "cpp" ? 40 : 16;

    [Theory]
    [InlineData("cpp")]
    [InlineData("python")]
    public void Topic_CSharpPublishes_PeerSubscribes(string lang)
    {
        using var ch = new Channel("isub" + lang);
        using var pub = new fltest.Samples.SamplesChannel.Publisher(ch.Name);
        int n = Count(lang);
        using var peer = Start(lang, "sub-sample", ch.Name, n, fltest.Sample.TypeName, fltest.Sample.TypeHash, "none", 0, SampleMax);
        peer.Expect("ready", Wait);
        for (int i = 0; i < 2000 && pub.Raw.SubscriberCount == 0; i++) System.Threading.Thread.Sleep(1);
        for (ulong k = 0; k < (ulong)n; k++) pub.Publish(Msgs.BuildSample(pub.Begin(TimeSpan.FromSeconds(10)), k, SampleMax));
        Finish(peer, "done " + n);
    }

    [Theory]
    [InlineData("cpp")]
    [InlineData("python")]
    public void Topic_PeerPublishes_CSharpSubscribes(string lang)
    {
        using var ch = new Channel("ipub" + lang);
        using var sub = new fltest.Samples.SamplesChannel.Subscriber(ch.Name);
        int n = Count(lang);
        using var peer = Start(lang, "pub-sample", ch.Name, n, fltest.Sample.TypeName, fltest.Sample.TypeHash, "none", 0, SampleMax);
        for (ulong k = 0; k < (ulong)n; k++)
        {
            using var s = sub.Receive(Wait);
            Msgs.ExpectSample(s.Message, k, SampleMax);
        }
        Finish(peer, "done " + n);
    }

    [Theory]
    [InlineData("cpp")]
    [InlineData("python")]
    public void Pipeline_CSharpPushes_PeerPulls(string lang)
    {
        using var ch = new Channel("ipull" + lang);
        using var push = new fltest.Bulk.Blobs.Pusher(ch.Name);
        int n = Count(lang) / 2;
        using var peer = Start(lang, "pull-blob", ch.Name, n, fltest.Blob.TypeName, fltest.Blob.TypeHash, "none", 0, BlobMax);
        peer.Expect("ready", Wait);
        ulong ids = 0;
        for (ulong k = 0; k < (ulong)n; k++)
        {
            push.Publish(Msgs.BuildBlob(push.Begin(TimeSpan.FromSeconds(10)), k, BlobMax));
            ids += k;
        }
        Finish(peer, $"done {n} {ids}");
    }

    [Theory]
    [InlineData("cpp")]
    [InlineData("python")]
    public void Pipeline_PeerPushes_CSharpPulls(string lang)
    {
        using var ch = new Channel("ipush" + lang);
        using var pull = new fltest.Bulk.Blobs.Puller(ch.Name);
        int n = Count(lang) / 2;
        using var peer = Start(lang, "push-blob", ch.Name, n, fltest.Blob.TypeName, fltest.Blob.TypeHash, "none", 0, BlobMax);
        var seen = new bool[n];
        for (int i = 0; i < n; i++)
        {
            using var s = pull.Receive(Wait);
            ulong k = Msgs.ExpectBlob(s.Message, BlobMax);
            Assert.False(seen[k], $"blob {k} twice");
            seen[k] = true;
        }
        Finish(peer, "done " + n);
    }

    [Theory]
    [InlineData("cpp")]
    [InlineData("python")]
    public void Service_CSharpClient_PeerServer(string lang)
    {
        using var ch = new Channel("isrv" + lang);
        int n = Count(lang);
        using var add = new Calc.Add.Client(ch.Name + ".add");
        using var count = new Calc.Count.Client(ch.Name + ".count");
        using var addPeer = Start(lang, "serve-add", ch.Name + ".add", n, fltest.AddRequest.TypeName, fltest.AddRequest.TypeHash,
            fltest.AddReply.TypeName, fltest.AddReply.TypeHash, 0);
        using var countPeer = Start(lang, "serve-count", ch.Name + ".count", n, fltest.CountRequest.TypeName, fltest.CountRequest.TypeHash,
            fltest.CountReply.TypeName, fltest.CountReply.TypeHash, 0);
        addPeer.Expect("ready", Wait);
        countPeer.Expect("ready", Wait);
        for (int k = 0; k < n; k++)
        {
            ulong id = add.Send(fltest.AddRequest.Build(add.Begin()).A(k).B(-7).End());
            using (var rep = add.Receive(id, Wait)) Assert.Equal(k - 7, rep.Message.Sum);
            uint want = Msgs.CountFor((ulong)k);
            ulong cid = count.Send(fltest.CountRequest.Build(count.Begin()).To(want).End());
            for (uint i = 1; ; i++)
            {
                using var rep = count.Receive(cid, Wait);
                Assert.Equal(i, rep.Message.N);
                if (!rep.More)
                {
                    Assert.Equal(want, i);
                    break;
                }
            }
        }
        Finish(addPeer, "done " + n);
        Finish(countPeer, "done " + n);
    }

    [Theory]
    [InlineData("cpp")]
    [InlineData("python")]
    public async Task Service_PeerClient_CSharpServer(string lang)
    {
        using var ch = new Channel("icli" + lang);
        int n = Count(lang);
        using var addServer = new Calc.Add.Server(ch.Name + ".add");
        using var countServer = new Calc.Count.Server(ch.Name + ".count");
        Task serveAdd = Task.Run(() =>
        {
            for (int i = 0; i < n; i++)
            {
                using var r = addServer.Receive(Wait);
                addServer.Reply(fltest.AddReply.Build(addServer.BeginReply(r)).Sum(r.Message.A + r.Message.B).End());
            }
        });
        Task serveCount = Task.Run(() =>
        {
            for (int i = 0; i < n; i++)
            {
                using var r = countServer.Receive(Wait);
                uint to = r.Message.To;
                for (uint k = 1; k <= to; k++)
                    countServer.Reply(fltest.CountReply.Build(countServer.BeginReply(r)).N(k).End(), more: k < to);
            }
        });
        using var addPeer = Start(lang, "call-add", ch.Name + ".add", n, fltest.AddRequest.TypeName, fltest.AddRequest.TypeHash,
            fltest.AddReply.TypeName, fltest.AddReply.TypeHash, 0);
        using var countPeer = Start(lang, "call-count", ch.Name + ".count", n, fltest.CountRequest.TypeName, fltest.CountRequest.TypeHash,
            fltest.CountReply.TypeName, fltest.CountReply.TypeHash, 0);
        Finish(addPeer, "done " + n);
        Finish(countPeer, "done " + n);
        await serveAdd;
        await serveCount;
    }

    [Fact]
    public void CppPeer_WithAnotherTypeHash_IsRefused()
    {
        using var ch = new Channel("ihash");
        using var pub = new fltest.Samples.SamplesChannel.Publisher(ch.Name);
        using var peer = Start("cpp", "sub-sample", ch.Name, 1, fltest.Sample.TypeName, fltest.Sample.TypeHash ^ 0x10, "none", 0, 10);
        string line = peer.Expect("error", Wait);
        Assert.Contains("type", line, StringComparison.OrdinalIgnoreCase);
        Assert.NotEqual(0, peer.WaitExit());
    }
}
