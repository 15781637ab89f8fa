using System;
using System.Threading.Tasks;
using Flatlane.FlatBuffers;
using Flatlane.Tests;
using Xunit;
using Invert = fltest.Inplace.Invert;

namespace Flatlane.Typed.Tests;

/// <summary>
/// Generated in-place duplex endpoints (fltest.Inplace.invert, a Blob over a 64 KiB ring): the
/// client builds the Blob in the frame, the server inverts its data and rewrites its checksum
/// where it lies (as tests/cpp/test_typed_duplex.cpp does), the client checks the same frame.
/// </summary>
public class DuplexTests
{
    private static readonly TimeSpan T = TimeSpan.FromSeconds(10);

    // What the servers do: invert every byte of Blob.data and rewrite the checksum, in place.
    internal static void InvertBlob(fltest.Blob.Mutable blob)
    {
        Span<byte> d = blob.Data;
        ulong sum = 0;
        for (int i = 0; i < d.Length; i++)
        {
            d[i] = (byte)~d[i];
            sum += d[i];
        }
        // A checksum that is not stored reads 0: right only when the new sum is 0 too.
        if (!blob.MutateChecksum(sum) && sum != 0) throw new InvalidOperationException("checksum not stored in the buffer");
    }

    // Builds blob k of n bytes; the checksum is set non-zero so it is stored (a default is not).
    internal static Offset<fltest.Blob> BuildBlob(FbBuilder b, ulong k, int n)
    {
        b.StartVector(1, n, 1);
        ulong sum = 0;
        for (int i = n - 1; i >= 0; i--)
        {
            byte x = Msgs.BlobByte(k, i);
            sum += x;
            b.Put(x);
        }
        var data = b.EndVector();
        return fltest.Blob.Build(b).Id(k).Data(data).Checksum(sum + 1).End();
    }

    internal static void ExpectInverted(fltest.Blob blob, ulong k, int n)
    {
        Assert.Equal(k, blob.Id);
        ReadOnlySpan<byte> d = blob.Data;
        Assert.Equal(n, d.Length);
        ulong sum = 0;
        for (int i = 0; i < n; i++)
        {
            if (d[i] != (byte)~Msgs.BlobByte(k, i)) Assert.Fail($"blob {k} byte {i}: {d[i]}");
            sum += d[i];
        }
        Assert.Equal(sum, blob.Checksum);
    }

    [Fact]
    public void Spec_IsTheSchemas()
    {
        Assert.Equal("fltest.Inplace.invert", Invert.Name);
        Assert.Equal(ChannelKind.Duplex, Invert.Spec.Kind);
        Assert.Equal(65536L, Invert.Spec.RingCapacity);
        ChannelOptions o = Invert.Spec.DuplexOptionsFor(fltest.Blob.TypeName, fltest.Blob.TypeHash);
        Assert.Equal(65536L, o.RingCapacity);
        Assert.Equal("fltest.Blob", o.TypeName);
        Assert.Throws<InvalidOperationException>(() => fltest.Calc.Add.Spec.DuplexOptionsFor("x", 1));
    }

    [Fact]
    public void ClientAndServer_InvertInPlace()
    {
        using var ch = new Channel("tdx");
        using var server = new Invert.Server(ch.Name);
        using var client = new Invert.Client(ch.Name);
        Assert.Equal(32704 & ~31, client.MaxMessage);
        foreach (int n in new[] { 0, 1, 7, 1000, 20_000 })
        {
            ulong k = (ulong)n + 42;
            ulong seq = client.Send(BuildBlob(client.Begin(), k, n));
            using (InPlaceCall<fltest.Blob> call = server.Receive(T))
            {
                Assert.Equal(seq, call.Seq);
                Assert.Equal(k, call.Message.Id);
                InvertBlob(Invert.Server.Mutable(call));
                Assert.True(fltest.Blob.Mutable.GetRoot(call.Data).View.IsPresent);
                call.Respond();
            }
            using InPlaceReply<fltest.Blob> reply = client.Receive(T);
            Assert.False(reply.Rejected);
            Assert.Equal(seq, reply.Seq);
            ExpectInverted(reply.Message, k, n);
        }
    }

    [Fact]
    public void SeveralInFlight_AnsweredOutOfOrder()
    {
        using var ch = new Channel("tdx-ooo");
        using var server = new Invert.Server(ch.Name);
        using var client = new Invert.Client(ch.Name);
        const int n = 4;
        for (int i = 0; i < n; i++) client.Send(BuildBlob(client.Begin(2048), (ulong)i, 100 * i));
        Assert.Equal(n, client.Outstanding);
        var calls = new InPlaceCall<fltest.Blob>[n];
        for (int i = 0; i < n; i++) calls[i] = server.Receive(T);
        for (int i = n - 1; i >= 0; i--)
        {
            InvertBlob(Invert.Server.Mutable(calls[i]));
            server.Respond(calls[i]);
        }
        for (int i = 0; i < n; i++)
        {
            using var r = client.Receive(T);
            Assert.Equal((ulong)i + 1, r.Seq);
            ExpectInverted(r.Message, (ulong)i, 100 * i);
        }
    }

    [Fact]
    public void MutateOfAFieldNotInTheBuffer_IsFalse_AndChangesNothing()
    {
        using var ch = new Channel("tdx-absent");
        using var server = new Invert.Server(ch.Name);
        using var client = new Invert.Client(ch.Name);
        FbBuilder b = client.Begin(256);
        client.Send(fltest.Blob.Build(b).Id(5).End());  // no data, checksum default: not stored
        using (var call = server.Receive(T))
        {
            fltest.Blob.Mutable m = Invert.Server.Mutable(call);
            Assert.True(m.Data.IsEmpty);
            byte[] before = call.Data.ToArray();
            Assert.False(m.MutateChecksum(9));
            Assert.Equal(before, call.Data.ToArray());
            Assert.True(m.MutateId(6));
            call.Respond();
        }
        using var r = client.Receive(T);
        Assert.Equal(6ul, r.Message.Id);
        Assert.Equal(0ul, r.Message.Checksum);
    }

    [Fact]
    public void Rejected_And_Corrupt()
    {
        using var ch = new Channel("tdx-rej");
        using var server = new Invert.Server(ch.Name);
        using var client = new Invert.Client(ch.Name);
        client.Send(BuildBlob(client.Begin(), 1, 10));
        server.Receive(T).Reject();
        using (var r = client.Receive(T))
        {
            Assert.True(r.Rejected);
            Assert.Throws<InvalidOperationException>(() => { _ = r.Message.Id; });
        }
        // Garbage through the raw client: the typed server rejects it and says Corrupt.
        client.Raw.Send([1, 2, 3, 4, 5, 6, 7, 8]);
        Assert.Equal(ErrorCode.Corrupt, Assert.Throws<FlatlaneException>(() => server.Receive(T)).ErrorCode);
        using (var r = client.Receive(T)) Assert.True(r.Rejected);
        // A server that answers garbage: the typed client says Corrupt (and releases the frame).
        client.Send(BuildBlob(client.Begin(), 2, 10));
        using (var call = server.Receive(T))
        {
            call.Data.Fill(0xFF);
            call.Respond();
        }
        Assert.Equal(ErrorCode.Corrupt, Assert.Throws<FlatlaneException>(() => client.Receive(T)).ErrorCode);
        Assert.Equal(0, client.Raw.HeldResponses);
    }

    [Fact]
    public async Task Async_ClientAndServer()
    {
        using var ch = new Channel("tdx-async");
        using var server = new Invert.Server(ch.Name);
        using var client = new Invert.Client(ch.Name);
        ValueTask<InPlaceCall<fltest.Blob>> pending = server.ReceiveAsync();
        ulong seq = client.Send(BuildBlob(client.Begin(), 9, 300));
        InPlaceCall<fltest.Blob> call = await pending.AsTask().WaitAsync(T);
        InvertBlob(Invert.Server.Mutable(call));
        call.Respond();
        using InPlaceReply<fltest.Blob> r = await client.ReceiveAsync().AsTask().WaitAsync(T);
        Assert.Equal(seq, r.Seq);
        ExpectInverted(r.Message, 9, 300);
    }

    [Fact]
    public void Client_StartsSmall_AndMovesAGrowingRequestOnce()
    {
        using var ch = new Channel("tdx-grow");
        using var server = new Invert.Server(ch.Name);
        using var client = new Invert.Client(ch.Name);
        void Serve(int count)
        {
            for (int i = 0; i < count; i++)
            {
                using var call = server.Receive(T);
                InvertBlob(Invert.Server.Mutable(call));
                call.Respond();
            }
        }
        // 5000 bytes do not fit the first 256-byte reservation: moved once, intact.
        ulong seq = client.Send(BuildBlob(client.Begin(), 1, 5000));
        Assert.Equal(1ul, client.Regrown);
        Serve(1);
        using (var r = client.Receive(T)) ExpectInverted(r.Message, 1, 5000);
        // The next request of that size fits the learned reservation: nothing moves.
        client.Send(BuildBlob(client.Begin(), 2, 5000));
        Assert.Equal(1ul, client.Regrown);
        // Several growing requests in flight (each moved while the others hold ring space), then answered.
        for (ulong k = 3; k < 6; k++) client.Send(BuildBlob(client.Begin(64), k, 2000 * (int)k));
        Assert.Equal(4ul, client.Regrown);
        Serve(4);
        using (var r = client.Receive(T)) ExpectInverted(r.Message, 2, 5000);
        for (ulong k = 3; k < 6; k++)
            using (var r = client.Receive(T)) ExpectInverted(r.Message, k, 2000 * (int)k);
        // Beyond the frame limit: MessageTooLarge while building, nothing sent, the client goes on.
        var e = Assert.Throws<FlatlaneException>(() => client.Send(BuildBlob(client.Begin(), 6, client.MaxMessage + 1)));
        Assert.Equal(ErrorCode.MessageTooLarge, e.ErrorCode);
        Assert.Equal(0, client.Raw.Outstanding);
        client.Send(BuildBlob(client.Begin(), 7, 10));
        Serve(1);
        using (var r = client.Receive(T)) ExpectInverted(r.Message, 7, 10);
        _ = seq;
    }

    [Fact]
    public void HotPath_DoesNotAllocate()
    {
        using var ch = new Channel("tdx-alloc");
        using var server = new Invert.Server(ch.Name);
        using var client = new Invert.Client(ch.Name);

        static void One(Invert.Client client, Invert.Server server, ulong k)
        {
            client.Send(BuildBlob(client.Begin(1024), k, 200));
            using (var call = server.Receive(TimeSpan.FromSeconds(10)))
            {
                InvertBlob(Invert.Server.Mutable(call));
                call.Respond();
            }
            using var r = client.Receive(TimeSpan.FromSeconds(10));
            if (r.Message.Id != k) throw new InvalidOperationException("bad reply");
        }

        for (ulong k = 0; k < 200; k++) One(client, server, k);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (ulong k = 0; k < 2000; k++) One(client, server, k);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    // ---- with a C++ or Python process (peers/typed_peer.cpp: the C++ runtime's DuplexServer/Client and
    // flatc's C++ code; peers/typed_peer.py: the flatlane package's and flatc's Python code)

    private static Peer StartPeer(string lang, string mode, string name, int count, int max)
    {
        string[] args = [mode, name, count.ToString(System.Globalization.CultureInfo.InvariantCulture), fltest.Blob.TypeName,
            TypedPeers.Hex(fltest.Blob.TypeHash), "-", "0", max.ToString(System.Globalization.CultureInfo.InvariantCulture)];
        return TypedPeers.Start(lang, args);
    }

    [Theory]
    [InlineData("cpp")]
    [InlineData("python")]
    public void CSharpClient_PeerServer(string lang)
    {
        using var ch = new Channel("tdx-cs2" + lang);
        const int count = 100, max = 5000;
        using var client = new Invert.Client(ch.Name);
        using var peer = StartPeer(lang, "serve-invert", ch.Name, count, max);
        peer.Expect("ready");
        ulong sent = 0, got = 0;
        while (got < count)
        {
            while (sent < count && sent - got < 4)
            {
                sent++;
                client.Send(BuildBlob(client.Begin(8192), sent, Msgs.SizeOf(sent, max)));
            }
            using var r = client.Receive(T);
            got++;
            Assert.False(r.Rejected);
            Assert.Equal(got, r.Seq);
            ExpectInverted(r.Message, got, Msgs.SizeOf(got, max));
        }
        Assert.Equal($"done {count}", peer.Expect("done"));
        Assert.True(peer.WaitExit() == 0, peer.Describe());
    }

    [Theory]
    [InlineData("cpp")]
    [InlineData("python")]
    public void PeerClient_CSharpServer(string lang)
    {
        using var ch = new Channel("tdx-" + lang + "2cs");
        const int count = 100, max = 5000;
        using var server = new Invert.Server(ch.Name);
        using var peer = StartPeer(lang, "call-invert", ch.Name, count, max);
        peer.Expect("ready");
        for (int i = 0; i < count; i++)
        {
            using var call = server.Receive(T);
            Assert.Equal(Msgs.SizeOf(call.Message.Id, max), call.Message.Data.Length);
            InvertBlob(Invert.Server.Mutable(call));
            call.Respond();
        }
        Assert.Equal($"done {count}", peer.Expect("done"));
        Assert.True(peer.WaitExit() == 0, peer.Describe());
    }
}
