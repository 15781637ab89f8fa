using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading;

namespace Flatlane;

/// <summary>
/// Common base of topic and service endpoints: owns the native handle and serialises every
/// native call on it.
/// <para>
/// The C ABI allows one thread at a time per endpoint (and close must not overlap a call either:
/// the C++ endpoints tear down queues and reply channels on close). Here a gate makes that hold
/// whatever threads the application uses; it is biased towards the thread that uses the endpoint,
/// which enters and leaves with plain stores (<see cref="EndpointGate"/>). Samples, requests and
/// replies are released from any thread: a release that finds the gate taken is queued and applied
/// by the gate holder as it leaves, and blocking waits run in slices of
/// <see cref="Reader.AsyncCancellationSlice"/>, so a queued release or a <see cref="Close"/> from
/// another thread takes effect within one slice. Close itself is queued the same way, which is how
/// it interrupts a blocked receive (that receive then fails with <see cref="ErrorCode.Closed"/>).
/// </para>
/// </summary>
public abstract unsafe class GatedEndpoint : IDisposable
{
    private protected static readonly long SliceNs = Native.ToNanoseconds(Reader.AsyncCancellationSlice);

    private readonly PatternHandle _h;  // destroys the native endpoint (Dispose or finalizer)
    private protected readonly IntPtr Raw;
    private EndpointGate _gate;
    private int _closeRequested;
    private bool _closedNative;  // written under the gate
    private readonly ConcurrentQueue<ulong> _deferred = new();
    private int _queued;  // items in _deferred: one plain read per Exit (ConcurrentQueue.IsEmpty costs more)

    /// <summary>Topic or service name.</summary>
    public string Name { get; }

    private protected GatedEndpoint(string name, IntPtr raw, delegate*<IntPtr, void> destroy)
    {
        Name = name;
        Raw = raw;
        _h = new PatternHandle(raw, destroy);
    }

    // Under the gate: release one held item / close the native endpoint.
    private protected abstract void ReleaseNative(ulong token);
    private protected abstract void CloseNative();

    /// <summary>
    /// Leaves the topic or service. A receive blocked in another thread fails with Closed within
    /// one slice (10 ms); later calls fail with Closed. Held samples, requests and replies stay
    /// valid until released. Idempotent.
    /// </summary>
    public void Close()
    {
        Volatile.Write(ref _closeRequested, 1);
        TryDrain();
    }

    /// <summary>Closes, waits for a call running in another thread to leave, and frees the endpoint (releasing everything still held).</summary>
    public void Dispose()
    {
        Volatile.Write(ref _closeRequested, 1);
        if (!_gate.EnterDisposed()) return;
        if (!_closedNative) CloseNative();
        _closedNative = true;
        OnDisposed();
        _h.Dispose();
        GC.SuppressFinalize(this);
    }

    // Runs once, after the gate is closed for good and before the native endpoint is freed.
    private protected virtual void OnDisposed() { }

    private protected bool IsDisposed => _gate.IsDisposed;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private protected void Enter()
    {
        if (!_gate.Enter()) ThrowDisposed();
        if (Volatile.Read(ref _closeRequested) != 0 && !_closedNative) DoCloseNative();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowDisposed() => throw new ObjectDisposedException(GetType().FullName);

    // Out of line: inlined into Enter, CloseNative's P/Invoke would put a P/Invoke frame in the
    // prolog of every gated call (see Native.cs).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void DoCloseNative()
    {
        _closedNative = true;
        CloseNative();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private protected void Exit()
    {
        // Leaving ends with a full fence whenever another thread can have queued anything: it
        // enqueues, then tries the gate; we open the gate, then look at the queue. One of the two
        // sees the other.
        _gate.Exit();
        if (Volatile.Read(ref _queued) != 0 || (Volatile.Read(ref _closeRequested) != 0 && !Volatile.Read(ref _closedNative))) TryDrain();
        GC.KeepAlive(this);  // Raw was used without the SafeHandle: keep its owner alive until here
    }

    // Releases a held item from any thread (see the class doc). Stale tokens are refused by the
    // native table, which is what makes a double release harmless; the code is ignored.
    internal void Release(ulong token)
    {
        if (!_gate.TryEnter())
        {
            if (_gate.IsDisposed) return;  // destroy released everything
            _deferred.Enqueue(token);
            Interlocked.Increment(ref _queued);  // also the fence between the enqueue and TryEnter
            TryDrain();
            return;
        }
        ReleaseNative(token);
        Exit();
    }

    private void TryDrain()
    {
        while ((Volatile.Read(ref _queued) != 0 || (Volatile.Read(ref _closeRequested) != 0 && !Volatile.Read(ref _closedNative)))
               && _gate.TryEnter())
        {
            while (_deferred.TryDequeue(out ulong t))
            {
                Interlocked.Decrement(ref _queued);
                ReleaseNative(t);
            }
            if (Volatile.Read(ref _closeRequested) != 0 && !_closedNative) DoCloseNative();
            _gate.Exit();
        }
    }

    // The next slice of a wait of timeoutNs (negative: forever) that began at `start`; `last` is
    // true when this slice ends the wait.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private protected static long NextSlice(long timeoutNs, long start, out bool last)
    {
        if (timeoutNs < 0)
        {
            last = false;
            return SliceNs;
        }
        long left = timeoutNs - (long)Stopwatch.GetElapsedTime(start).Ticks * 100;
        last = left <= SliceNs;
        return last ? Math.Max(left, 0) : SliceNs;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private protected void ThrowNative(int rc) => throw FlatlaneException.FromNative(rc, Name);

    private protected static void ThrowOnOpen(int rc, string name)
    {
        throw FlatlaneException.FromNative(rc, name);
    }
}
