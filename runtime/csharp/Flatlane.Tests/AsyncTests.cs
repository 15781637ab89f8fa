using System;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;
using Xunit;

namespace Flatlane.Tests;

public class AsyncTests
{
    [Fact]
    public async Task ReadAsync_CompletesSynchronously_WhenAFrameIsWaiting()
    {
        using var ch = new Channel("async-sync");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small());
        w.Send(new byte[] { 5 });
        ValueTask<Frame> vt = r.ReadAsync();
        Assert.True(vt.IsCompletedSuccessfully);
        using Frame f = await vt;
        Assert.Equal(5, f.Data[0]);
    }

    [Fact]
    public async Task ReadAsync_WaitsForALaterFrame_WithoutBlockingTheCaller()
    {
        using var ch = new Channel("async-wait");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small());
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        ValueTask<Frame> pending = r.ReadAsync(cts.Token);
        Assert.False(pending.IsCompleted);
        Assert.Throws<InvalidOperationException>(() => r.Read(TimeSpan.Zero));  // one consumer at a time
        await Task.Delay(50);
        w.Send(new byte[] { 1, 2 });
        using (Frame f = await pending) Assert.Equal(new byte[] { 1, 2 }, f.Data.ToArray());
        // The waiter thread is reused for the next slow-path read, messages included.
        ValueTask<Message> next = r.ReceiveAsync(cts.Token);
        byte[] big = new byte[100_000];
        Pattern.FillPayload(1, 2, big);
        var send = Task.Run(() => w.Send(big, TimeSpan.FromSeconds(10)));
        using (Message m = await next) Assert.True(m.Data.SequenceEqual(big));
        await send;
    }

    [Fact]
    public async Task ReadAsync_Cancellation_IsObservedPromptly_AndConsumesNothing()
    {
        using var ch = new Channel("async-cancel");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small());
        using var cts = new CancellationTokenSource();
        ValueTask<Frame> pending = r.ReadAsync(cts.Token);
        await Task.Delay(30);
        var sw = Stopwatch.StartNew();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await pending);
        sw.Stop();
        Assert.InRange(sw.ElapsedMilliseconds, 0, 1000);  // one slice (10 ms) plus scheduling
        // Nothing was lost: the reader still works and gets the next frame.
        w.Send(new byte[] { 7 });
        using Frame f = await r.ReadAsync(CancellationToken.None);
        Assert.Equal(7, f.Data[0]);
        Assert.Equal(1ul, f.Seq);
        Assert.True(r.ReadAsync(new CancellationToken(canceled: true)).IsCanceled);
    }

    [Fact]
    public async Task ReadAsync_FailsWithPeerClosed_WhenTheWriterLeaves()
    {
        using var ch = new Channel("async-peer");
        using var r = new Reader(ch.Name, Channel.Small());
        var w = new Writer(ch.Name, Channel.Small());
        ValueTask<Frame> pending = r.ReadAsync();
        await Task.Delay(30);
        w.Dispose();
        var e = await Assert.ThrowsAsync<FlatlanePeerGoneException>(async () => await pending);
        Assert.Equal(ErrorCode.PeerClosed, e.ErrorCode);
    }

    [Fact]
    public async Task ReaderDispose_FailsAPendingReadAsync()
    {
        using var ch = new Channel("async-dispose");
        using var w = new Writer(ch.Name, Channel.Small());
        var r = new Reader(ch.Name, Channel.Small());
        ValueTask<Frame> pending = r.ReadAsync();
        await Task.Delay(30);
        r.Dispose();
        var e = await Assert.ThrowsAnyAsync<Exception>(async () => await pending).WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(e is ObjectDisposedException || (e is FlatlaneException fe && fe.ErrorCode == ErrorCode.Closed),
            $"unexpected {e}");
    }

    [Fact]
    public async Task AsyncStream_OfManyFrames_ArrivesInOrder_WithFramesReleasedOnOtherThreads()
    {
        using var ch = new Channel("async-stream");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small());
        const int n = 5000;
        var producer = Task.Run(() =>
        {
            for (int i = 0; i < n; i++)
            {
                int size = Pattern.PayloadSize(9, (ulong)i + 1, 2000);
                Pattern.FillPayload(9, (ulong)i + 1, w.Reserve(size, TimeSpan.FromSeconds(10)));
                w.Commit(size);
            }
        });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var releases = new System.Collections.Generic.List<Task>();
        bool readAll = false;
        try
        {
            for (int i = 0; i < n; i++)
            {
                Frame f = await r.ReadAsync(cts.Token);
                Assert.Equal((ulong)i + 1, f.Seq);
                Assert.True(Pattern.CheckPayload(9, f.Seq, f.Data));
                // Hand every other frame to the pool to be released there, racing the next read.
                if ((i & 1) == 0) releases.Add(Task.Run(() => f.Dispose()));
                else f.Dispose();
            }
            readAll = true;
        }
        finally
        {
            // On failure the producer must stop writing into its reserved span before the writer
            // is disposed (which unmaps it): Close makes its next Reserve fail instead. Only on
            // failure: after the last frame the producer's task may not be marked completed yet,
            // and closing the writer then makes the final check below see peer_closed.
            if (!readAll && !producer.IsCompleted) w.Close();
            await Task.WhenAny(producer);
        }
        await producer;
        await Task.WhenAll(releases);
        Assert.False(r.TryRead(TimeSpan.Zero, out _));
        Assert.Equal(0ul, r.Stats.HeldFrames);
    }
}
