using System;
using System.Threading;
using System.Threading.Tasks;
using System.Threading.Tasks.Sources;

namespace Flatlane;

/// <summary>
/// The slow path of an endpoint's ReceiveAsync: one background thread per endpoint waits in native
/// code in slices (<see cref="Reader.AsyncCancellationSlice"/>), checking the cancellation token
/// between them, and completes a reusable <see cref="IValueTaskSource{T}"/>, so once the thread
/// exists a wait allocates nothing and no thread-pool thread blocks. A cancellation consumes
/// nothing: the wait stops between two slices, before a message is taken.
/// </summary>
internal sealed class AsyncWaiter<T> : IValueTaskSource<T>
{
    /// <summary>One native receive of at most <paramref name="timeoutNs"/> (0: poll once):
    /// true with the result, or false with the native error code.</summary>
    internal delegate bool TryCore(ulong arg, long timeoutNs, out T result, out int rc);

    private static readonly long SliceNs = Native.ToNanoseconds(Reader.AsyncCancellationSlice);

    private readonly TryCore _core;
    private readonly string _name;
    private readonly SemaphoreSlim _go = new(0);
    private ManualResetValueTaskSourceCore<T> _source = new() { RunContinuationsAsynchronously = true };
    private CancellationToken _ct;
    private ulong _arg;
    private int _pending;  // 1 from Begin until the result is set
    private volatile bool _stop;
    private Thread? _thread;

    internal AsyncWaiter(string name, TryCore core)
    {
        _name = name;
        _core = core;
    }

    /// <summary>
    /// ReceiveAsync: completes synchronously (no allocation) when the first poll finds something or
    /// fails; otherwise the background thread waits. One may be pending at a time.
    /// </summary>
    internal ValueTask<T> ReceiveAsync(ulong arg, CancellationToken ct, string what)
    {
        if (ct.IsCancellationRequested) return ValueTask.FromCanceled<T>(ct);
        if (Interlocked.Exchange(ref _pending, 1) != 0)
            throw new InvalidOperationException($"flatlane: {what} '{_name}': a ReceiveAsync is already pending");
        bool got;
        T result;
        int rc;
        try
        {
            got = _core(arg, 0, out result, out rc);
        }
        catch
        {
            Volatile.Write(ref _pending, 0);
            throw;
        }
        if (got || rc != (int)ErrorCode.Timeout)
        {
            Volatile.Write(ref _pending, 0);
            return got ? new ValueTask<T>(result) : ValueTask.FromException<T>(FlatlaneException.FromNative(rc, _name));
        }
        _source.Reset();
        _ct = ct;
        _arg = arg;
        short version = _source.Version;
        if (_thread is null)  // only one caller gets here at a time (_pending)
        {
            _thread = new Thread(Run) { IsBackground = true, Name = "flatlane-async-" + _name };
            _thread.Start();
        }
        _go.Release();
        return new ValueTask<T>(this, version);
    }

    /// <summary>Ends the thread (the endpoint is being disposed): a pending wait fails with
    /// ObjectDisposedException from its next slice.</summary>
    internal void Stop()
    {
        _stop = true;
        _go.Release();
    }

    private void Run()
    {
        for (;;)
        {
            _go.Wait();
            if (_stop && Volatile.Read(ref _pending) == 0) return;
            T result = default!;
            Exception? error = null;
            try
            {
                for (;;)
                {
                    _ct.ThrowIfCancellationRequested();
                    if (_core(_arg, SliceNs, out result, out int rc)) break;
                    if (rc != (int)ErrorCode.Timeout) throw FlatlaneException.FromNative(rc, _name);
                }
            }
            catch (Exception e)
            {
                error = e;
            }
            Volatile.Write(ref _pending, 0);  // before completion: the continuation may receive again
            if (error is null) _source.SetResult(result);
            else _source.SetException(error);
            if (_stop) return;
        }
    }

    T IValueTaskSource<T>.GetResult(short token) => _source.GetResult(token);
    ValueTaskSourceStatus IValueTaskSource<T>.GetStatus(short token) => _source.GetStatus(token);
    void IValueTaskSource<T>.OnCompleted(Action<object?> continuation, object? state, short token,
        ValueTaskSourceOnCompletedFlags flags) => _source.OnCompleted(continuation, state, token, flags);
}
