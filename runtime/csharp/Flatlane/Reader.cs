using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;
using System.Threading.Tasks.Sources;

namespace Flatlane;

/// <summary>
/// The consuming end of a single-producer/single-consumer channel.
/// <para>
/// Threading: one logical consumer. Read/TryRead/Receive/ReadAsync/ReceiveAsync must not overlap
/// (overlapping calls throw <see cref="InvalidOperationException"/> rather than corrupt the
/// consumer state). Frames and messages may be released from any thread at any time, including
/// while a read is in progress elsewhere: such a release is queued and applied when the read
/// returns or, for a long wait, within <see cref="AsyncCancellationSlice"/> (Read and the async
/// reads wait in slices; a synchronous Receive applies queued releases only when it returns).
/// <see cref="Close"/>, <see cref="Dispose"/> and <see cref="PeerAttached"/> may be called from
/// any thread; Close interrupts a blocked read, which then fails with Closed.
/// </para>
/// </summary>
public sealed unsafe class Reader : IDisposable
{
    /// <summary>
    /// How long the async waiter blocks in native code between checks of a cancellation token:
    /// the bound on how late a cancellation is noticed.
    /// </summary>
    public static readonly TimeSpan AsyncCancellationSlice = TimeSpan.FromMilliseconds(10);
    private static readonly long SliceNs = Native.ToNanoseconds(AsyncCancellationSlice);

    private readonly ReaderHandle _h;  // owns the native reader (destroyed by Dispose or the finalizer)
    private readonly IntPtr _raw;      // the same pointer, for calls made under _gate
    private int _disposed;
    // Serialises native calls touching the consumer state: reads and Stats from the consuming
    // thread, releases from any thread (biased towards the consuming thread, see EndpointGate).
    // Dispose closes it for good before destroying the native reader, which is what makes calls on
    // the raw pointer safe without a SafeHandle reference count per call.
    private EndpointGate _gate;
    // 1 for the whole of a read operation: Read/Receive until they return, ReadAsync/ReceiveAsync
    // until their result is set. It makes overlapping reads an error, deterministically, even
    // though a long wait lets go of _gate between slices.
    private int _reading;
    private readonly ConcurrentQueue<(ulong Token, uint Extent, bool IsMessage)> _deferred = new();
    // Reads and releases plain frames without a native call (on the native reader's own cursor).
    private readonly ReaderFastPath _fast;
    private int _queued;  // items in _deferred: one plain read per Exit (ConcurrentQueue.IsEmpty costs more)
    private AsyncWaiter? _waiter;
    // How long a read that finds nothing spins on the commit word in managed code before the
    // native wait (Stopwatch ticks; 0 for the blocking strategy). See SpinForFrame.
    private readonly long _spinTicks;
    private static readonly long MaxSpinTicks = Stopwatch.Frequency / 20_000;  // 50 us

    /// <summary>Channel name.</summary>
    public string Name { get; }

    /// <summary>Largest frame payload (from the segment header).</summary>
    public long MaxFramePayload { get; }

    /// <summary>Chunk size of the segment.</summary>
    public long ChunkSize { get; }

    /// <summary>Ring capacity in bytes.</summary>
    public long RingCapacity { get; }

    /// <summary>Opens or creates the channel and claims its reader role.</summary>
    /// <exception cref="FlatlaneException">NotFound, Busy, TypeMismatch, AlreadyExists, InvalidArgument, ...</exception>
    public Reader(string name, ChannelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        NativeLoader.EnsureCompatible();
        Name = name;
        options ??= ChannelOptions.Default;
        byte[] typeName = new byte[options.TypeNameBufferSize()];
        NativeOptions o;
        int rc;
        fixed (byte* tn = typeName)
        {
            options.ToNative(&o, typeName, tn);
            rc = Native.flatlane_reader_open(name, &o, out _h);
        }
        if (rc != 0)
        {
            _h.Dispose();
            throw FlatlaneException.FromNative(rc, name);
        }
        _raw = _h.DangerousGetHandle();
        NativeReaderFastPath fp;
        Native.reader_get_fast_path(_raw, &fp);
        _fast = new ReaderFastPath(_raw, fp);
        WaitStrategy strategy = options.Wait ?? WaitStrategy.SpinThenSleep;  // the runtime's defaults
        TimeSpan budget = options.SpinBudget ?? TimeSpan.FromMicroseconds(50);
        _spinTicks = strategy == WaitStrategy.Blocking ? 0
            : strategy == WaitStrategy.BusySpin ? MaxSpinTicks
            : Math.Min(MaxSpinTicks, (long)(budget.TotalSeconds * Stopwatch.Frequency));
        NativeStats s;
        Native.reader_stats(_raw, &s);
        MaxFramePayload = s.MaxFramePayload;
        ChunkSize = s.ChunkSize;
        RingCapacity = (long)s.CapacityBytes;
    }

    // ---- frames

    /// <summary>
    /// The next frame (a whole small message, or one chunk of a large one), held in place until
    /// disposed. Waits up to <paramref name="timeout"/> (null: forever).
    /// </summary>
    /// <exception cref="FlatlaneTimeoutException">Nothing arrived in time.</exception>
    /// <exception cref="FlatlanePeerGoneException">The writer died or closed, and everything it committed has been read.</exception>
    /// <exception cref="FlatlaneException">Closed, Corrupt.</exception>
    public Frame Read(TimeSpan? timeout = null)
    {
        BeginRead();
        try
        {
            // Built straight into the return value: through an `out Frame` (TryReadCore) every
            // field store would go through a GC write barrier (the struct holds a reference).
            NativeFrame nf;
            int rc = TryReadFast(&nf) ? 0 : ReadSliced(Native.ToNanoseconds(timeout), &nf);
            if (rc != 0) ThrowNative(rc);
            if (nf.Size > int.MaxValue) TooLargeForSpan(new Frame(this, nf), nf.Size);
            return new Frame(this, nf);
        }
        finally
        {
            EndRead();
        }
    }

    /// <summary>
    /// Like <see cref="Read"/>, but returns false instead of throwing when the timeout runs out
    /// (a zero timeout polls once), so a polling loop costs no exceptions.
    /// </summary>
    public bool TryRead(TimeSpan timeout, out Frame frame)
    {
        BeginRead();
        try
        {
            if (TryReadCore(Native.ToNanoseconds(timeout), out frame, out int rc)) return true;
            if (rc == (int)ErrorCode.Timeout) return false;
            ThrowNative(rc);
            return false;
        }
        finally
        {
            EndRead();
        }
    }

    /// <summary>
    /// The next frame, asynchronously. Completes synchronously, without allocating, when a frame
    /// is already there. Otherwise a per-reader background thread (started on first need) waits
    /// in native code using the channel's wait strategy, in slices of
    /// <see cref="AsyncCancellationSlice"/> between which it checks
    /// <paramref name="cancellationToken"/>; no thread-pool thread is blocked. Continuations run
    /// on the thread pool. One ReadAsync/ReceiveAsync may be pending at a time.
    /// </summary>
    /// <exception cref="OperationCanceledException">The token was cancelled; nothing was consumed.</exception>
    public ValueTask<Frame> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled<Frame>(cancellationToken);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        BeginRead();
        bool handedOff = false;
        try
        {
            if (TryReadCore(0, out Frame f, out int rc)) return new ValueTask<Frame>(f);
            if (rc != (int)ErrorCode.Timeout) return ValueTask.FromException<Frame>(FlatlaneException.FromNative(rc, Name));
            handedOff = true;
            return Waiter().StartFrame(cancellationToken);
        }
        finally
        {
            if (!handedOff) EndRead();
        }
    }

    // ---- whole messages

    /// <summary>
    /// The next whole message, reassembling chunks. Valid until the next Receive or its Dispose.
    /// The timeout bounds each wait (time without progress), not the whole message.
    /// </summary>
    /// <exception cref="FlatlaneException">As <see cref="Read"/>, plus MessageTooLarge.</exception>
    public Message Receive(TimeSpan? timeout = null)
    {
        BeginRead();
        try
        {
            if (!TryReceiveCore(Native.ToNanoseconds(timeout), out Message m, out int rc)) ThrowNative(rc);
            return m;
        }
        finally
        {
            EndRead();
        }
    }

    /// <summary>Like <see cref="Receive"/>, returning false when the timeout runs out.</summary>
    public bool TryReceive(TimeSpan timeout, out Message message)
    {
        BeginRead();
        try
        {
            if (TryReceiveCore(Native.ToNanoseconds(timeout), out message, out int rc)) return true;
            if (rc == (int)ErrorCode.Timeout) return false;
            ThrowNative(rc);
            return false;
        }
        finally
        {
            EndRead();
        }
    }

    /// <summary>The next whole message, asynchronously; waits as <see cref="ReadAsync"/> does.</summary>
    public ValueTask<Message> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled<Message>(cancellationToken);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        BeginRead();
        bool handedOff = false;
        try
        {
            if (TryReceiveCore(0, out Message m, out int rc)) return new ValueTask<Message>(m);
            if (rc != (int)ErrorCode.Timeout) return ValueTask.FromException<Message>(FlatlaneException.FromNative(rc, Name));
            handedOff = true;
            return Waiter().StartMessage(cancellationToken);
        }
        finally
        {
            if (!handedOff) EndRead();
        }
    }

    // ---- state

    /// <summary>True while a live writer is attached.</summary>
    public bool PeerAttached => Native.flatlane_reader_peer_attached(_h) != 0;

    /// <summary>This endpoint's counters. Consumer-side: must not overlap a read.</summary>
    public EndpointStats Stats
    {
        get
        {
            if (Volatile.Read(ref _reading) != 0)
                throw new InvalidOperationException($"flatlane: reader '{Name}': Stats must not overlap a read");
            Enter();
            try
            {
                NativeStats s;
                Native.reader_stats(_raw, &s);
                return EndpointStats.From(s);
            }
            finally
            {
                Exit();
            }
        }
    }

    /// <summary>
    /// Detaches (the writer sees PeerClosed) and interrupts a read blocked in another thread,
    /// which fails with Closed. Held frames stay readable until disposed or the reader is disposed.
    /// </summary>
    public void Close()
    {
        if (Volatile.Read(ref _disposed) != 0) return;
        try
        {
            Native.flatlane_reader_close(_h);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>
    /// Closes, stops the async waiter and frees the endpoint, releasing every frame still held
    /// (their spans become invalid). A pending ReadAsync fails with Closed.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        try
        {
            Native.flatlane_reader_close(_h);
        }
        catch (ObjectDisposedException)
        {
        }
        _waiter?.Stop();
        // A read blocked in another thread returns promptly now that the reader is closed.
        _gate.EnterDisposed();
        _deferred.Clear();  // destroy releases everything
        _queued = 0;
        _h.Dispose();
    }

    // ---- internals

    private bool TryReadCore(long timeoutNs, out Frame frame, out int rc)
    {
        NativeFrame nf;
        rc = TryReadFast(&nf) ? 0 : ReadSliced(timeoutNs, &nf);
        if (rc != 0)
        {
            frame = default;
            return false;
        }
        frame = new Frame(this, nf);
        if (nf.Size > int.MaxValue) TooLargeForSpan(frame, nf.Size);
        return true;
    }

    // The usual case in front of the general one, with no call and no try/finally: on the gate's
    // bias owner, a plain frame that is already there. Nothing between entering and leaving can
    // throw. False leaves everything as it was; the general read then starts from the same state.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryReadFast(NativeFrame* nf)
    {
        if (!_gate.TryEnterAsOwner()) return false;
        bool ok = _fast.TryRead(out *nf);
        Exit();
        return ok;
    }

    // A wait longer than one slice is split into slices, and releases that other threads queued
    // meanwhile are applied between them (Exit drains the queue). Without that, a full ring whose
    // frames were released elsewhere during a long read would leave the writer waiting for space
    // and this reader waiting for data, each on the other.
    private int ReadSliced(long timeoutNs, NativeFrame* nf)
    {
        long slice = SliceNs;
        if (timeoutNs >= 0 && timeoutNs <= slice) return ReadOnce(timeoutNs, nf);
        if (timeoutNs < 0)
        {
            // No deadline, so no clock read: a frame that is already there costs one poll.
            for (;;)
            {
                int rc = ReadOnce(slice, nf);
                if (rc != (int)ErrorCode.Timeout) return rc;
            }
        }
        int first = ReadOnce(0, nf);  // before the clock read, for the same reason
        if (first != (int)ErrorCode.Timeout) return first;
        long start = Stopwatch.GetTimestamp();
        for (;;)
        {
            long left = timeoutNs - (long)Stopwatch.GetElapsedTime(start).Ticks * 100;
            bool last = left <= slice;
            int rc = ReadOnce(last ? Math.Max(left, 0) : slice, nf);
            if (rc != (int)ErrorCode.Timeout || last) return rc;
        }
    }

    private int ReadOnce(long timeoutNs, NativeFrame* nf)
    {
        Enter();
        try
        {
            // Usually a frame is there: a plain one is read in managed code, anything else by a
            // native poll without the GC transition (a zero-timeout read cannot block); the
            // blocking call only when we really have to wait.
            if (_fast.TryRead(out *nf)) return 0;
            if (timeoutNs != 0 && _spinTicks != 0 && SpinForFrame(timeoutNs, nf)) return 0;
            int rc = Native.reader_read_poll(_raw, 0, nf);
            if (rc == (int)ErrorCode.Timeout && timeoutNs != 0) rc = Native.reader_read(_raw, timeoutNs, nf);
            return rc;
        }
        finally
        {
            Exit();
        }
    }

    // Nothing committed yet: spin on the commit word at the cursor in managed code for a short
    // while (at most 50 us, never beyond the strategy's spin budget nor the caller's timeout)
    // before the native wait. A peer that answers within microseconds (a ping-pong, a request) is then read without any
    // native call: the native wait would return its frame through a P/Invoke with a GC transition
    // and the slot table. The native wait that follows spins its own budget as usual, so an idle
    // reader spins at most 50 us longer than its strategy says; it checks the peer's liveness, so
    // this spin does not have to. Under the gate, like the native wait it stands in front of.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool SpinForFrame(long timeoutNs, NativeFrame* nf)
    {
        if (!_fast.NothingCommitted()) return false;  // something to look at: the native read
        _fast.PublishNow();  // as every read that finds nothing does (PROTOCOL.md 5.6)
        long limit = _spinTicks;
        if (timeoutNs >= 0) limit = Math.Min(limit, (long)(timeoutNs * (Stopwatch.Frequency / 1e9)));
        long start = Stopwatch.GetTimestamp();
        for (int i = 1; ; i++)
        {
            if (System.Runtime.Intrinsics.X86.X86Base.IsSupported) System.Runtime.Intrinsics.X86.X86Base.Pause();
            if (_fast.TryRead(out *nf)) return true;
            if (!_fast.NothingCommitted()) return false;
            if ((i & 63) == 0 && Stopwatch.GetTimestamp() - start > limit) return false;
        }
    }

    private bool TryReceiveCore(long timeoutNs, out Message message, out int rc)
    {
        NativeMessage nm;
        Enter();
        try
        {
            rc = Native.reader_read_message(_raw, timeoutNs, &nm);
        }
        finally
        {
            Exit();
        }
        if (rc != 0)
        {
            message = default;
            return false;
        }
        message = new Message(this, nm);
        if (nm.Size > int.MaxValue) TooLargeForSpan(message, nm.Size);
        return true;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void TooLargeForSpan(IDisposable held, ulong size)
    {
        held.Dispose();
        throw new FlatlaneException(ErrorCode.MessageTooLarge,
            $"flatlane: reader '{Name}': {size} bytes do not fit a Span<byte> (2 GiB - 1); set MaxMessageSize lower or read from C++", Name);
    }

    internal void ReleaseFrame(ulong token, uint extent) => ReleaseAny(token, extent, isMessage: false);

    internal void ReleaseMessage(ulong token) => ReleaseAny(token, 0, isMessage: true);

    private void ReleaseAny(ulong token, uint extent, bool isMessage)
    {
        if (extent != 0 && _gate.TryEnterAsOwner())
        {
            // A fast-path frame released on the owner's thread: no call, no try/finally (the
            // release cannot throw).
            _fast.Release(token, extent);
            Exit();
            return;
        }
        if (!_gate.TryEnter())
        {
            if (_gate.IsDisposed) return;  // destroy released everything
            // A read is running (maybe the async waiter): it applies this as it leaves.
            _deferred.Enqueue((token, extent, isMessage));
            Interlocked.Increment(ref _queued);  // also the fence between the enqueue and TryEnter
            TryDrainDeferred();
            return;
        }
        try
        {
            ReleaseNative(token, extent, isMessage);
        }
        finally
        {
            Exit();
        }
    }

    // Stale tokens (a copy of an already released frame) are refused by the native table, and
    // stale fast-path frames by ReaderFastPath, which is what makes double disposal harmless; the
    // return code is therefore ignored.
    private void ReleaseNative(ulong token, uint extent, bool isMessage)
    {
        if (isMessage) Native.reader_release_message(_raw, token);
        else if (extent != 0) _fast.Release(token, extent);
        else Native.reader_release(_raw, token);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Enter()
    {
        // Reads are serialised by _reading, so another holder is a release or Stats in another
        // thread: short calls that never block. Enter waits for it.
        if (!_gate.Enter()) ThrowDisposed();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowDisposed() => throw new ObjectDisposedException(GetType().FullName);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Exit()
    {
        // Leaving ends with a full fence whenever another thread can have queued anything: it
        // enqueues, then tries the gate; we open the gate, then look at the queue. One of the two
        // sees the other.
        _gate.Exit();
        if (Volatile.Read(ref _queued) != 0) TryDrainDeferred();
        GC.KeepAlive(this);  // _raw was used without the SafeHandle: keep its owner alive until here
    }

    private void TryDrainDeferred()
    {
        while (Volatile.Read(ref _queued) != 0 && _gate.TryEnter())
        {
            while (_deferred.TryDequeue(out var d))
            {
                Interlocked.Decrement(ref _queued);
                ReleaseNative(d.Token, d.Extent, d.IsMessage);
            }
            _gate.Exit();
        }
    }

    // Not atomic on purpose: reads come from one logical consumer, so this only has to catch
    // misuse (a second thread, a read while ReadAsync is pending), and it does so whenever the two
    // do not start within the same few nanoseconds. Safety does not depend on it: every native
    // call is still serialised by _gate.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void BeginRead()
    {
        if (Volatile.Read(ref _reading) != 0) ThrowConcurrent();
        Volatile.Write(ref _reading, 1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void EndRead() => Volatile.Write(ref _reading, 0);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowConcurrent() =>
        throw new InvalidOperationException(
            $"flatlane: reader '{Name}' is single-consumer: another read (or a pending ReadAsync/ReceiveAsync) is running");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowNative(int rc) => throw FlatlaneException.FromNative(rc, Name);

    private AsyncWaiter Waiter()
    {
        // Only reached with _reading held, so no two threads create one.
        return _waiter ??= new AsyncWaiter(this);
    }

    // Blocks (on the waiter thread) until a frame or message arrives, the token is cancelled or
    // the reader is closed. Runs the native wait in slices so cancellation is noticed.
    private T WaitLoop<T>(CancellationToken ct, bool message)
    {
        long slice = SliceNs;  // also applies releases queued by other threads (see ReadSliced)
        for (;;)
        {
            ct.ThrowIfCancellationRequested();
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            int rc;
            if (message)
            {
                if (TryReceiveCore(slice, out Message m, out rc)) return Unsafe.As<Message, T>(ref m);
            }
            else
            {
                if (TryReadCore(slice, out Frame f, out rc)) return Unsafe.As<Frame, T>(ref f);
            }
            if (rc != (int)ErrorCode.Timeout) throw FlatlaneException.FromNative(rc, Name);
        }
    }

    // One background thread per reader that uses async reads: it runs the blocking native wait so
    // that neither the caller nor a thread-pool thread blocks, and completes a reusable
    // IValueTaskSource, so a slow-path ReadAsync allocates nothing either once the waiter exists.
    private sealed class AsyncWaiter : IValueTaskSource<Frame>, IValueTaskSource<Message>
    {
        private readonly Reader _reader;
        private readonly SemaphoreSlim _go = new(0);
        private ManualResetValueTaskSourceCore<Frame> _frame = new() { RunContinuationsAsynchronously = true };
        private ManualResetValueTaskSourceCore<Message> _message = new() { RunContinuationsAsynchronously = true };
        private bool _wantMessage;
        private CancellationToken _ct;
        private volatile bool _stop;

        public AsyncWaiter(Reader reader)
        {
            _reader = reader;
            var t = new Thread(Run) { IsBackground = true, Name = "flatlane-reader-" + reader.Name };
            t.Start();
        }

        public ValueTask<Frame> StartFrame(CancellationToken ct)
        {
            _frame.Reset();
            _wantMessage = false;
            _ct = ct;
            short version = _frame.Version;
            _go.Release();
            return new ValueTask<Frame>(this, version);
        }

        public ValueTask<Message> StartMessage(CancellationToken ct)
        {
            _message.Reset();
            _wantMessage = true;
            _ct = ct;
            short version = _message.Version;
            _go.Release();
            return new ValueTask<Message>(this, version);
        }

        public void Stop()
        {
            _stop = true;
            _go.Release();
        }

        private void Run()
        {
            for (;;)
            {
                _go.Wait();
                if (_stop && Volatile.Read(ref _reader._reading) == 0) return;
                if (_wantMessage) Complete(ref _message, true);
                else Complete(ref _frame, false);
                if (_stop) return;
            }
        }

        private void Complete<T>(ref ManualResetValueTaskSourceCore<T> core, bool message)
        {
            T? result = default;
            Exception? error = null;
            try
            {
                result = _reader.WaitLoop<T>(_ct, message);
            }
            catch (Exception e)
            {
                error = e;
            }
            // Cleared before completion: the continuation may issue the next ReadAsync at once.
            _reader.EndRead();
            if (error is null) core.SetResult(result!);
            else core.SetException(error);
        }

        Frame IValueTaskSource<Frame>.GetResult(short token) => _frame.GetResult(token);
        ValueTaskSourceStatus IValueTaskSource<Frame>.GetStatus(short token) => _frame.GetStatus(token);
        void IValueTaskSource<Frame>.OnCompleted(Action<object?> continuation, object? state, short token,
            ValueTaskSourceOnCompletedFlags flags) => _frame.OnCompleted(continuation, state, token, flags);

        Message IValueTaskSource<Message>.GetResult(short token) => _message.GetResult(token);
        ValueTaskSourceStatus IValueTaskSource<Message>.GetStatus(short token) => _message.GetStatus(token);
        void IValueTaskSource<Message>.OnCompleted(Action<object?> continuation, object? state, short token,
            ValueTaskSourceOnCompletedFlags flags) => _message.OnCompleted(continuation, state, token, flags);
    }
}
