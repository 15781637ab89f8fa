using System;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace Flatlane.Tests;

// The Writer reserves and commits in managed code when nothing has to wait (WriterFastPath), on
// the native writer's own cursor, and leaves everything else to the native writer. These tests
// mix the two paths on one ring so that any state one side failed to keep for the other shows up
// as a lost, repeated or misplaced frame.
public class WriterFastPathTests
{
    [Fact]
    public void ManagedAndNativeCommits_Interleave_AcrossManyLaps()
    {
        using var ch = new Channel("fastmix");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small());
        const ulong seed = 11;
        ulong frames = 0, bytes = 0, ringBytes = 0;
        var pending = new System.Collections.Generic.Queue<(ulong Seq, int Len)>();
        for (ulong i = 1; i <= 3000; i++)
        {
            int len = Pattern.MessageSize(seed, i, 0, 3000);
            int front = (i % 6) switch { 1 => 100, 2 => 1000, 3 => 3000, _ => 0 };  // reserved beyond len
            switch (i % 6)
            {
                case 0:  // managed reserve + commit of the whole reservation
                    Pattern.FillPayload(seed, i, w.Reserve(len, TimeSpan.FromSeconds(5)));
                    w.Commit(len);
                    break;
                case 1:  // managed commit of a prefix
                {
                    Span<byte> s = w.Reserve(len + 100, TimeSpan.FromSeconds(5));
                    Pattern.FillPayload(seed, i, s[..len]);
                    w.Commit(len);
                    break;
                }
                case 2:  // managed commit_tail: the unused front becomes the frame's lead
                {
                    Span<byte> s = w.Reserve(len + 1000, TimeSpan.FromSeconds(5));
                    Pattern.FillPayload(seed, i, s[1000..]);
                    w.CommitTail(len);
                    break;
                }
                case 3:  // a front beyond the largest lead: the native writer adds a gap record
                {
                    Span<byte> s = w.Reserve(len + 3000, TimeSpan.FromSeconds(5));
                    Pattern.FillPayload(seed, i, s[3000..]);
                    w.CommitTail(len);
                    break;
                }
                case 4:  // the native write_message
                {
                    var buf = new byte[len];
                    Pattern.FillPayload(seed, i, buf);
                    w.Send(buf, TimeSpan.FromSeconds(5));
                    break;
                }
                default:  // an aborted reservation takes no sequence number
                    w.Reserve(len, TimeSpan.FromSeconds(5)).Fill(0xEE);
                    w.Abort();
                    Pattern.FillPayload(seed, i, w.Reserve(len, TimeSpan.FromSeconds(5)));
                    w.Commit(len);
                    break;
            }
            frames++;
            bytes += (ulong)len;
            ringBytes += (ulong)(len + front) + 48;  // the record, its header, alignment, a gap
            pending.Enqueue((i, len));
            // Let several frames pile up so that wraps happen with frames outstanding.
            // At most 30 KB unread, plus one reservation and the tail a wrap skips: fits 64 KiB.
            if (ringBytes > 30_000 || i == 3000)
            {
                while (pending.Count > 0)
                {
                    var (k, n) = pending.Dequeue();
                    using Frame f = r.Read(TimeSpan.FromSeconds(5));
                    Assert.Equal(n, f.Length);
                    Assert.True(Pattern.CheckPayload(seed, k, f.Data), $"frame {k} ({n} bytes) differs");
                    Assert.Equal(FrameFlags.First | FrameFlags.Last, f.Flags & (FrameFlags.First | FrameFlags.Last | FrameFlags.Chunked));
                }
                ringBytes = 0;
            }
        }
        Assert.False(r.TryRead(TimeSpan.Zero, out _));
        EndpointStats ws = w.Stats;
        Assert.Equal(frames, ws.Frames);
        Assert.Equal(frames, ws.Messages);
        Assert.Equal(bytes, ws.Bytes);
        Assert.Equal(0ul, ws.OccupancyBytes);
    }

    [Fact]
    public async Task ManagedCommit_WakesAReaderAsleepOnTheFutex()
    {
        using var ch = new Channel("fastwake");
        // The reader sleeps in one futex wait of up to its liveness interval (Receive is not
        // sliced): without the commit's wake-up it would sleep the full 30 s.
        var sleepy = Channel.Sleepy();
        using var w = new Writer(ch.Name, sleepy);
        using var r = new Reader(ch.Name, sleepy);
        for (int round = 1; round <= 3; round++)
        {
            var read = Task.Run(() =>
            {
                using Message m = r.Receive(TimeSpan.FromSeconds(60));
                return m.Data[0];
            });
            await Task.Delay(100);  // the reader is asleep by now (blocking strategy: no spin)
            Assert.False(read.IsCompleted);
            w.Reserve(1)[0] = (byte)round;
            w.Commit(1);
            Assert.Equal((byte)round, await read.WaitAsync(TimeSpan.FromSeconds(10)));
        }
    }

    [Fact]
    public void Commit_RejectsMisuse_AndKeepsTheReservation()
    {
        using var ch = new Channel("fastmisuse");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small());
        var e = Assert.Throws<FlatlaneException>(() => w.Commit(1));
        Assert.Equal(ErrorCode.InvalidArgument, e.ErrorCode);
        w.Reserve(10).Fill(3);
        e = Assert.Throws<FlatlaneException>(() => w.Commit(11));
        Assert.Equal(ErrorCode.InvalidArgument, e.ErrorCode);
        e = Assert.Throws<FlatlaneException>(() => w.CommitTail(11));
        Assert.Equal(ErrorCode.InvalidArgument, e.ErrorCode);
        w.Commit(10);  // the reservation survived the refused commits
        e = Assert.Throws<FlatlaneException>(() => w.CommitTail(1));  // and is gone now
        Assert.Equal(ErrorCode.InvalidArgument, e.ErrorCode);
        using (Frame f = r.Read(TimeSpan.FromSeconds(5)))
        {
            Assert.Equal(10, f.Length);
            Assert.Equal(1ul, f.Seq);
        }
        var big = Assert.Throws<FlatlaneException>(() => w.Reserve((int)w.MaxFramePayload + 1));
        Assert.Equal(ErrorCode.MessageTooLarge, big.ErrorCode);
        w.Close();
        var closed = Assert.Throws<FlatlaneException>(() => w.Reserve(1));
        Assert.Equal(ErrorCode.Closed, closed.ErrorCode);
        // Nothing but the one frame was published: the reader finds the writer gone at once.
        Assert.Throws<FlatlanePeerGoneException>(() => r.TryRead(TimeSpan.Zero, out _));
    }
}
