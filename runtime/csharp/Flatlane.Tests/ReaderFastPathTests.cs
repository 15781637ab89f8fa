using System;
using System.Collections.Generic;
using System.Threading.Tasks;
using Xunit;

namespace Flatlane.Tests;

// The Reader reads and releases plain frames in managed code (ReaderFastPath), on the native
// reader's own cursor, and leaves padding, chunks, new writers and waiting to the native reader.
// These tests mix both kinds of frame and every release order over many laps of a small ring, so
// that state one side failed to keep for the other shows up as a lost, repeated or leaked frame.
public class ReaderFastPathTests
{
    [Fact]
    public void PlainAndChunkFrames_ReleasedInRandomOrder_OverManyLaps_LeakNothing()
    {
        using var ch = new Channel("rfmix");
        var opts = new ChannelOptions { Mode = OpenMode.CreateOrOpen, RingCapacity = 65536, MaxFramePayload = 2048 };
        using var w = new Writer(ch.Name, opts);
        using var r = new Reader(ch.Name, opts);
        var rng = new Random(1234);
        var held = new List<(Frame F, ulong Key, int Part, int Round)>();
        ulong nextPlain = 1, frames = 0;
        var big = new byte[3000];  // two chunks of 2032 and 968 bytes
        for (int round = 0; round < 400; round++)
        {
            // Write a few records: plain frames (fast path on both sides) and a chunked message.
            int k = rng.Next(1, 5);
            for (int j = 0; j < k; j++)
            {
                ulong key = nextPlain++;
                int len = Pattern.MessageSize(21, key, 0, 1000);
                if (rng.Next(4) == 0)
                {
                    Pattern.FillPayload(22, key, big);
                    w.Send(big, TimeSpan.FromSeconds(5));
                    frames += 2;
                    for (int part = 0; part < 2; part++) held.Add((r.Read(TimeSpan.FromSeconds(5)), key, -1 - part, round));
                }
                else
                {
                    Pattern.FillPayload(21, key, w.Reserve(len, TimeSpan.FromSeconds(5)));
                    w.Commit(len);
                    frames++;
                    held.Add((r.Read(TimeSpan.FromSeconds(5)), key, len, round));
                }
            }
            // Check and release, in random order, everything from before the previous round and a
            // random part of the rest. What stays pins at most three rounds of records (< 40 KB),
            // so the writer never has to wait: this thread is the writer too.
            int release = rng.Next(0, held.Count + 1);
            for (int j = 0; held.Count > 0 && (j < release || held.Exists(h => h.Round < round - 1)); j++)
            {
                int at = rng.Next(held.Count);
                if (j >= release)
                {
                    at = held.FindIndex(h => h.Round < round - 1);
                    if (rng.Next(2) == 0) at = held.FindLastIndex(h => h.Round < round - 1);
                }
                var (f, key, part, _) = held[at];
                held.RemoveAt(at);
                if (part >= 0)
                {
                    Assert.Equal(part, f.Length);
                    Assert.True(Pattern.CheckPayload(21, key, f.Data), $"plain frame {key} differs");
                }
                else
                {
                    Pattern.FillPayload(22, key, big);
                    Assert.True(f.IsChunk);
                    ReadOnlySpan<byte> want = part == -1 ? big.AsSpan(0, 2032) : big.AsSpan(2032);
                    Assert.True(want.SequenceEqual(f.Data), $"chunk {-part} of message {key} differs");
                }
                f.Dispose();
                f.Dispose();  // stale: ignored, whichever path delivered it
            }
        }
        Assert.Equal((ulong)held.Count, r.Stats.HeldFrames);
        foreach (var h in held) h.F.Dispose();
        Assert.Equal(0ul, r.Stats.HeldFrames);
        Assert.False(r.TryRead(TimeSpan.Zero, out _));  // a failed poll publishes the release
        EndpointStats rs = r.Stats;
        Assert.Equal(0ul, rs.OccupancyBytes);
        Assert.Equal(frames, rs.Frames);  // released frames
        Assert.Equal(0ul, w.Stats.OccupancyBytes);
    }

    [Fact]
    public void ReaderDispose_ReleasesTheFramesItStillHeld_SoTheNextReaderDoesNotGetThemAgain()
    {
        using var ch = new Channel("rfdispose");
        using var w = new Writer(ch.Name, Channel.Small());
        for (int i = 1; i <= 4; i++)
        {
            w.Reserve(8).Fill((byte)i);
            w.Commit(8);
        }
        var first = new Reader(ch.Name, Channel.Small());
        Frame a = first.Read(TimeSpan.FromSeconds(5));
        Frame b = first.Read(TimeSpan.FromSeconds(5));
        Frame c = first.Read(TimeSpan.FromSeconds(5));
        b.Dispose();  // out of order: only marked
        Assert.Equal(2ul, first.Stats.HeldFrames);
        first.Dispose();  // a and c are still held: disposing releases them
        a.Dispose();      // harmless now
        c.Dispose();
        using var second = new Reader(ch.Name, Channel.Small());
        using (Frame d = second.Read(TimeSpan.FromSeconds(5)))
        {
            Assert.Equal(4, d.Data[0]);  // frames 1-3 were consumed by the first reader
            Assert.Equal(4ul, d.Seq);
        }
        Assert.False(second.TryRead(TimeSpan.Zero, out _));
        Assert.Equal(0ul, w.Stats.OccupancyBytes);
    }

    [Fact]
    public async Task FastPathRelease_WakesAWriterAsleepOnAFullRing()
    {
        using var ch = new Channel("rfwake");
        // The writer sleeps in one futex wait of up to its liveness interval (Reserve is not
        // sliced): without the release's wake-up it would sleep the full 30 s.
        var sleepy = Channel.Sleepy();
        using var w = new Writer(ch.Name, sleepy);
        using var r = new Reader(ch.Name, sleepy);
        int written = 0;
        while (w.TryReserve(4000, TimeSpan.Zero, out Span<byte> s))
        {
            s[0] = (byte)++written;
            w.Commit(4000);
        }
        var frames = new List<Frame>();
        for (int i = 0; i < written; i++) frames.Add(r.Read(TimeSpan.FromSeconds(5)));
        var reserve = Task.Run(() =>
        {
            w.Reserve(4000, TimeSpan.FromSeconds(60))[0] = 0xAB;
            w.Commit(4000);
        });
        await Task.Delay(100);  // the writer is asleep by now (blocking strategy: no spin)
        Assert.False(reserve.IsCompleted);
        // The first frame came through the native read (a new reader resynchronises there), so
        // the native release wakes the writer: not enough space yet (it wraps), it sleeps again.
        frames[0].Dispose();
        await Task.Delay(100);
        Assert.False(reserve.IsCompleted);
        // These came through the fast path: its publication must wake the writer.
        for (int i = 1; i < frames.Count; i++) frames[i].Dispose();
        await reserve.WaitAsync(TimeSpan.FromSeconds(10));
        using Frame next = r.Read(TimeSpan.FromSeconds(5));
        Assert.Equal(0xAB, next.Data[0]);
    }
}
