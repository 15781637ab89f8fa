using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace Flatlane.Tests;

// Writer and reader in this one process: each endpoint maps the segment on its own, so these
// exercise the same shared-memory protocol as two processes do (the interop tests add real peers).
public class ChannelTests
{
    [Fact]
    public void Geometry_IsReadFromTheSegment()
    {
        using var ch = new Channel("geo");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, new ChannelOptions { Mode = OpenMode.Open });
        Assert.Equal(65536, w.RingCapacity);
        Assert.Equal(65536 / 2 - 32, w.MaxFramePayload);
        Assert.Equal(w.MaxFramePayload, w.ChunkSize);  // min(max frame, 1 MiB)
        // The reader asked for nothing: it takes the creator's geometry.
        Assert.Equal(w.RingCapacity, r.RingCapacity);
        Assert.Equal(w.MaxFramePayload, r.MaxFramePayload);
        Assert.True(w.PeerAttached);
        Assert.True(r.PeerAttached);
    }

    [Fact]
    public void ReserveCommit_ZeroCopy_ArrivesAsWritten()
    {
        using var ch = new Channel("zc");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small());
        var sizes = new[] { 0, 1, 7, 8, 15, 16, 17, 63, 64, 65, 1000, 4096, (int)w.MaxFramePayload };
        ulong seq = 0;
        foreach (int n in sizes)
        {
            Span<byte> span = w.Reserve(n, TimeSpan.FromSeconds(5));
            Assert.Equal(n, span.Length);
            unsafe
            {
                fixed (byte* p = span) Assert.Equal(0, (long)p % 16);  // runtime promise: 16-aligned
            }
            Pattern.FillPayload(7, (ulong)n, span);
            w.Commit(n);
            using Frame f = r.Read(TimeSpan.FromSeconds(5));
            Assert.Equal(n, f.Length);
            Assert.True(Pattern.CheckPayload(7, (ulong)n, f.Data), $"payload of {n} bytes differs");
            Assert.Equal(++seq, f.Seq);
            Assert.Equal(FrameFlags.First | FrameFlags.Last, f.Flags);
        }
        Assert.Equal((ulong)sizes.Length, w.Stats.Frames);
    }

    [Fact]
    public void Commit_PublishesOnlyTheUsedPrefix_AndCommitTailTheSuffix()
    {
        using var ch = new Channel("tail");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small());

        Span<byte> a = w.Reserve(100);
        for (int i = 0; i < 100; i++) a[i] = (byte)i;
        w.Commit(40);
        using (Frame f = r.Read(TimeSpan.FromSeconds(5)))
        {
            Assert.Equal(40, f.Length);
            for (int i = 0; i < 40; i++) Assert.Equal((byte)i, f.Data[i]);
        }

        // A back-to-front builder leaves its buffer at the end of the reservation.
        Span<byte> b = w.Reserve(100);
        for (int i = 0; i < 100; i++) b[i] = (byte)(200 - i);
        w.CommitTail(33);
        using (Frame f = r.Read(TimeSpan.FromSeconds(5)))
        {
            Assert.Equal(33, f.Length);
            for (int i = 0; i < 33; i++) Assert.Equal((byte)(200 - (67 + i)), f.Data[i]);
        }
    }

    [Fact]
    public void Abort_PublishesNothing()
    {
        using var ch = new Channel("abort");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small());
        w.Reserve(64).Fill(0xAA);
        w.Abort();
        Assert.False(r.TryRead(TimeSpan.Zero, out _));
        w.Reserve(3).Fill(0x55);
        w.Commit(3);
        using Frame f = r.Read(TimeSpan.FromSeconds(5));
        Assert.Equal(new byte[] { 0x55, 0x55, 0x55 }, f.Data.ToArray());
        Assert.Equal(1ul, f.Seq);  // the aborted reservation took no sequence number
    }

    public static IEnumerable<object[]> MessageSizes()
    {
        // Ring 64 KiB: max frame payload = chunk size = 32736, chunk data = 32720 per frame.
        foreach (int n in new[] { 0, 1, 16, 17, 4096, 32735, 32736, 32737, 32720 * 3, 32720 * 3 + 1, 200_000, 1 << 20 })
            yield return new object[] { n };
    }

    [Theory]
    [MemberData(nameof(MessageSizes))]
    public async Task SendReceive_RoundTrip_FromEmptyToBeyondTheChunkSizeAndTheRing(int size)
    {
        using var ch = new Channel("msg");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small());
        var data = new byte[size];
        Pattern.FillPayload(11, (ulong)size, data);
        // Larger than the ring: the writer must run concurrently with the reader.
        var send = Task.Run(() =>
        {
            w.Send(data, TimeSpan.FromSeconds(10));
            w.Send(new byte[] { 1, 2, 3 }, TimeSpan.FromSeconds(10));
        });
        try
        {
            using (Message m = r.Receive(TimeSpan.FromSeconds(10)))
            {
                Assert.Equal(size, m.Length);
                Assert.True(m.Data.SequenceEqual(data), $"message of {size} bytes differs");
                Assert.Equal(size <= r.MaxFramePayload, m.ZeroCopy);
            }
            using (Message m = r.Receive(TimeSpan.FromSeconds(10)))
            {
                Assert.Equal(new byte[] { 1, 2, 3 }, m.ToArray());  // framing intact after the big one
            }
        }
        finally
        {
            if (!send.IsCompleted) w.Close();  // never dispose a writer another thread still uses
            await Task.WhenAny(send);
        }
        await send;
        Assert.Equal(2ul, r.Stats.Messages);
    }

    [Fact]
    public void Read_OfAChunkedMessage_ShowsItsChunks()
    {
        using var ch = new Channel("chunks");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small());
        int size = 32720 + 100;  // two chunks
        var data = new byte[size];
        Pattern.FillPayload(3, 3, data);
        w.Send(data);
        using Frame a = r.Read(TimeSpan.FromSeconds(5));
        using Frame b = r.Read(TimeSpan.FromSeconds(5));
        Assert.True(a.IsChunk && b.IsChunk);
        Assert.Equal((0u, 2u, (ulong)size), (a.ChunkIndex, a.ChunkCount, a.MessageSize));
        Assert.Equal((1u, 2u), (b.ChunkIndex, b.ChunkCount));
        Assert.Equal(FrameFlags.Chunked | FrameFlags.First, a.Flags);
        Assert.Equal(FrameFlags.Chunked | FrameFlags.Last, b.Flags);
        Assert.True(a.Data.SequenceEqual(data.AsSpan(0, a.Length)));
        Assert.True(b.Data.SequenceEqual(data.AsSpan(a.Length)));
    }

    [Fact]
    public void Frames_ReleasedOutOfOrder_FreeTheRingOnlyWhenAllBeforeAreReleased()
    {
        using var ch = new Channel("ooo");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small());
        for (int i = 0; i < 3; i++)
        {
            w.Reserve(1000).Fill((byte)i);
            w.Commit(1000);
        }
        Frame f1 = r.Read(TimeSpan.FromSeconds(1));
        Frame f2 = r.Read(TimeSpan.FromSeconds(1));
        Frame f3 = r.Read(TimeSpan.FromSeconds(1));
        Assert.Equal(3ul, r.Stats.HeldFrames);
        f2.Dispose();
        f3.Dispose();
        Assert.Equal(1ul, r.Stats.HeldFrames);
        // f1 still pins the ring: nothing is handed back yet, and its bytes are intact.
        Assert.True(r.Stats.OccupancyBytes >= 3000);
        Assert.All(f1.Data.ToArray(), b => Assert.Equal(0, b));
        f1.Dispose();
        Assert.False(r.TryRead(TimeSpan.Zero, out _));  // a failed poll publishes the release
        Assert.Equal(0ul, r.Stats.HeldFrames);
        Assert.Equal(0ul, r.Stats.OccupancyBytes);
    }

    [Fact]
    public void Frame_DisposedTwiceOrThroughACopy_IsReleasedOnce()
    {
        using var ch = new Channel("twice");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small());
        for (int i = 0; i < 2; i++)
        {
            w.Reserve(8);
            w.Commit(8);
        }
        Frame a = r.Read(TimeSpan.FromSeconds(1));
        Frame copy = a;
        Frame b = r.Read(TimeSpan.FromSeconds(1));
        a.Dispose();
        a.Dispose();
        copy.Dispose();  // a stale token: must not release b's slot or anything else
        Assert.Equal(1ul, r.Stats.HeldFrames);
        b.Dispose();
        Assert.Equal(0ul, r.Stats.HeldFrames);
        default(Frame).Dispose();  // no reader: nothing to do
    }

    [Fact]
    public void ManyHeldFrames_GrowTheNativeFrameTable_BesideFastPathFrames()
    {
        using var ch = new Channel("many");
        // 64-byte frames: a 96-byte Send becomes two chunks of 48 bytes, which the native read delivers
        // (slot-table tokens); the plain 16-byte frames between them come from the managed fast
        // path (position tokens). All are held at once, then released back to front.
        var opts = new ChannelOptions { Mode = OpenMode.CreateOrOpen, RingCapacity = 65536, MaxFramePayload = 64 };
        using var w = new Writer(ch.Name, opts);
        using var r = new Reader(ch.Name, opts);
        const int n = 150;  // 300 chunk frames: beyond the initial table of 64
        var msg = new byte[96];
        for (int i = 0; i < n; i++)
        {
            Pattern.FillPayload(5, (ulong)i, w.Reserve(16));
            w.Commit(16);
            Pattern.FillPayload(6, (ulong)i, msg);
            w.Send(msg);
        }
        var held = new List<Frame>();
        for (int i = 0; i < 3 * n; i++) held.Add(r.Read(TimeSpan.FromSeconds(1)));
        Assert.Equal((ulong)(3 * n), r.Stats.HeldFrames);
        for (int i = 0; i < n; i++)
        {
            Assert.True(Pattern.CheckPayload(5, (ulong)i, held[3 * i].Data));
            Assert.True(held[3 * i + 1].IsChunk && held[3 * i + 2].IsChunk);
            Pattern.FillPayload(6, (ulong)i, msg);
            Assert.True(msg.AsSpan(0, 48).SequenceEqual(held[3 * i + 1].Data));
            Assert.True(msg.AsSpan(48).SequenceEqual(held[3 * i + 2].Data));
        }
        for (int i = held.Count - 1; i >= 0; i--) held[i].Dispose();
        Assert.Equal(0ul, r.Stats.HeldFrames);
        Assert.False(r.TryRead(TimeSpan.Zero, out _));  // a failed poll publishes the release
        Assert.Equal(0ul, r.Stats.OccupancyBytes);
    }

    [Fact]
    public void HotPath_AllocatesNoManagedMemory()
    {
        using var ch = new Channel("alloc");
        using var w = new Writer(ch.Name, Channel.Small(wait: WaitStrategy.BusySpin));
        using var r = new Reader(ch.Name, Channel.Small(wait: WaitStrategy.BusySpin));
        byte[] msg = new byte[100];
        long bytesSeen = 0;
        int emptyPolls = 0;
        // No xunit asserts inside: Assert.Equal itself allocates. Results are checked afterwards.
        void Round()
        {
            Span<byte> s = w.Reserve(64, TimeSpan.FromSeconds(1));
            s[0] = 1;
            w.Commit(64);
            using (Frame f = r.Read(TimeSpan.FromSeconds(1))) bytesSeen += f.Length;
            if (!r.TryRead(TimeSpan.Zero, out _)) emptyPolls++;
            w.Send(msg, TimeSpan.FromSeconds(1));
            using (Message m = r.Receive(TimeSpan.FromSeconds(1))) bytesSeen += m.Length;
            bytesSeen += (long)w.Stats.Frames & 0;
        }
        for (int i = 0; i < 2000; i++) Round();  // warm up (JIT tiers, lazy init)
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 5000; i++) Round();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(7000L * (64 + 100), bytesSeen);
        Assert.Equal(7000, emptyPolls);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Read_TimesOut_InBoundedTime()
    {
        using var ch = new Channel("tmo");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small());
        var sw = Stopwatch.StartNew();
        var e = Assert.Throws<FlatlaneTimeoutException>(() => r.Read(TimeSpan.FromMilliseconds(100)));
        sw.Stop();
        Assert.Equal(ErrorCode.Timeout, e.ErrorCode);
        Assert.Equal(ch.Name, e.Channel);
        Assert.Contains(ch.Name, e.Message);
        Assert.InRange(sw.ElapsedMilliseconds, 90, 2000);
        Assert.False(r.TryRead(TimeSpan.FromMilliseconds(1), out Frame none));
        Assert.False(none.IsValid);
        Assert.False(r.TryReceive(TimeSpan.Zero, out _));
    }

    [Fact]
    public void Reserve_TimesOut_WhenTheReaderHoldsTheRing()
    {
        using var ch = new Channel("full");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small());
        int written = 0;
        while (w.TryReserve(1000, TimeSpan.Zero, out Span<byte> s))
        {
            s.Clear();
            w.Commit(1000);
            written++;
        }
        Assert.InRange(written, 60, 66);  // ~64 KiB of 1016-byte frames
        var sw = Stopwatch.StartNew();
        var e = Assert.Throws<FlatlaneTimeoutException>(() => w.Reserve(1000, TimeSpan.FromMilliseconds(100)));
        Assert.InRange(sw.ElapsedMilliseconds, 90, 2000);
        Assert.Contains("reserve(1000)", e.Message);
        // Reading frees space again.
        for (int i = 0; i < written; i++) r.Read(TimeSpan.FromSeconds(1)).Dispose();
        Assert.False(r.TryRead(TimeSpan.Zero, out _));
        Assert.True(w.TryReserve(1000, TimeSpan.FromSeconds(1), out _));
        w.Abort();
    }

    [Fact]
    public async Task Close_FromAnotherThread_InterruptsABlockedRead()
    {
        using var ch = new Channel("close");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small(wait: WaitStrategy.Blocking));
        var reading = Blocking.Start(() => Assert.Throws<FlatlaneException>(() => r.Read()));
        Assert.False(reading.IsCompleted);
        r.Close();
        FlatlaneException interrupted = await reading.WaitAsync(TimeSpan.FromSeconds(5));  // TimeoutException if not
        Assert.Equal(ErrorCode.Closed, interrupted.ErrorCode);
        Assert.Equal(ErrorCode.Closed, Assert.Throws<FlatlaneException>(() => r.Read(TimeSpan.Zero)).ErrorCode);
    }

    [Fact]
    public void WriterDispose_ReaderDrainsThenSeesPeerClosed()
    {
        using var ch = new Channel("drain");
        using var r = new Reader(ch.Name, Channel.Small());
        using (var w = new Writer(ch.Name, Channel.Small()))
        {
            w.Send(new byte[] { 42 });
        }
        using (Message m = r.Receive(TimeSpan.FromSeconds(1))) Assert.Equal(42, m.Data[0]);
        var e = Assert.Throws<FlatlanePeerGoneException>(() => r.Read(TimeSpan.FromSeconds(1)));
        Assert.Equal(ErrorCode.PeerClosed, e.ErrorCode);
        Assert.False(r.PeerAttached);
    }

    [Fact]
    public void Dispose_MakesFurtherCallsThrowObjectDisposed_AndFramesHarmless()
    {
        using var ch = new Channel("disp");
        var w = new Writer(ch.Name, Channel.Small());
        var r = new Reader(ch.Name, Channel.Small());
        w.Send(new byte[] { 1 });
        Frame held = r.Read(TimeSpan.FromSeconds(1));
        r.Dispose();
        r.Dispose();  // idempotent
        held.Dispose();  // after its reader: a no-op, not a crash
        Assert.Throws<ObjectDisposedException>(() => r.Read(TimeSpan.Zero));
        Assert.Throws<ObjectDisposedException>(() => r.ReadAsync().AsTask().GetAwaiter().GetResult());
        r.Close();  // harmless after Dispose
        w.Dispose();
        Assert.Throws<ObjectDisposedException>(() => w.Reserve(1));
        Assert.Throws<ObjectDisposedException>(() => w.Send(new byte[1]));
        // Both endpoints gone: the name was removed.
        Assert.False(Channel.Exists(ch.Name));
    }

    [Fact]
    public async Task OverlappingReads_AreRefused_NotRaced()
    {
        using var ch = new Channel("overlap");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small(wait: WaitStrategy.Blocking));
        var blocked = Blocking.Start(() => Assert.Throws<FlatlaneException>(() => r.Read()));
        Assert.Throws<InvalidOperationException>(() => r.Read(TimeSpan.Zero));
        r.Close();
        await blocked.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Release_WhileAnotherThreadReads_IsDeferredAndApplied()
    {
        using var ch = new Channel("defer");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small(wait: WaitStrategy.Blocking));
        w.Send(new byte[] { 1 });
        Frame first = r.Read(TimeSpan.FromSeconds(1));
        var second = Blocking.Start(() => r.Read(TimeSpan.FromSeconds(10)));  // blocked, holding the consumer state
        first.Dispose();  // queued, not run concurrently with the read
        w.Send(new byte[] { 2 });
        using Frame f2 = await second;
        Assert.Equal(2, f2.Data[0]);
        Assert.Equal(1ul, r.Stats.HeldFrames);  // the deferred release of `first` was applied
    }

    [Fact]
    public async Task ReleasesQueuedDuringABlockedRead_FreeTheRingForTheWriter()
    {
        // The ring is full of frames held by this reader; a read blocks waiting for more while
        // another thread releases them. The queued releases must reach the writer during the
        // read, or writer (waiting for space) and reader (waiting for data) wait for each other.
        using var ch = new Channel("nodeadlock");
        using var w = new Writer(ch.Name, Channel.Small(wait: WaitStrategy.Blocking));
        using var r = new Reader(ch.Name, Channel.Small(wait: WaitStrategy.Blocking));
        int n = 0;
        while (w.TryReserve(2000, TimeSpan.Zero, out Span<byte> s))
        {
            s.Fill((byte)n++);
            w.Commit(2000);
        }
        var held = new List<Frame>();
        for (int i = 0; i < n; i++) held.Add(r.Read(TimeSpan.FromSeconds(1)));
        var reading = Blocking.Start(() => r.Read());  // infinite wait
        var writing = Task.Run(() =>
        {
            w.Reserve(2000, TimeSpan.FromSeconds(20)).Fill(0xEE);  // needs the held space back
            w.Commit(2000);
        });
        await Task.Delay(100);
        Assert.False(reading.IsCompleted);
        foreach (Frame f in held) f.Dispose();  // deferred: the read holds the consumer state
        try
        {
            await writing.WaitAsync(TimeSpan.FromSeconds(5));
            using Frame next = await reading.WaitAsync(TimeSpan.FromSeconds(5));
            Assert.Equal(0xEE, next.Data[0]);
        }
        finally
        {
            w.Close();
            r.Close();
            await Task.WhenAny(Task.WhenAll(reading, writing));
        }
    }

    [Fact]
    public async Task WriterDispose_FromAnotherThread_InterruptsABlockedReserve_ThenObjectDisposed()
    {
        using var ch = new Channel("wdispose");
        var w = new Writer(ch.Name, Channel.Small(wait: WaitStrategy.Blocking));
        using var r = new Reader(ch.Name, Channel.Small());
        while (w.TryReserve(4000, TimeSpan.Zero, out Span<byte> s))
        {
            s.Clear();
            w.Commit(4000);
        }
        var blocked = Blocking.Start(() => Assert.Throws<FlatlaneException>(() => w.Reserve(4000)));
        Assert.False(blocked.IsCompleted);
        w.Dispose();  // waits for the interrupted call to leave before freeing the native writer
        FlatlaneException e = await blocked.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(ErrorCode.Closed, e.ErrorCode);
        Assert.Throws<ObjectDisposedException>(() => w.Commit(0));
        Assert.Throws<ObjectDisposedException>(() => w.Abort());
    }
}
