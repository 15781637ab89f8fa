using System;
using System.Runtime.CompilerServices;
using System.Threading;

namespace Flatlane;

/// <summary>
/// The producing end of a single-producer/single-consumer channel. Messages are built in place:
/// <see cref="Reserve"/> hands out a span inside the shared ring, <see cref="Commit"/> publishes
/// it. One thread at a time may use a writer (the exceptions are <see cref="Close"/> and
/// <see cref="PeerAttached"/>, callable from anywhere: Close interrupts a blocked Reserve/Send).
/// </summary>
public sealed unsafe class Writer : IDisposable
{
    private readonly WriterHandle _h;  // owns the native writer (destroyed by Dispose or the finalizer)
    private readonly IntPtr _raw;      // the same pointer, for hot calls (guarded by _inCall)
    private int _disposed;
    // 1 while a call on _raw runs. Written with plain stores by the producer thread; Dispose
    // (any thread) sets _disposed, then issues a process-wide barrier, then waits for 0. That
    // asymmetric handshake keeps interlocked instructions (~10 ns each) off the hot path while
    // still guaranteeing that the native writer is never destroyed under a running call.
    private int _inCall;
    // Reserve/commit without a P/Invoke when nothing has to wait (on the native writer's cursor).
    private readonly WriterFastPath _fast;

    /// <summary>Channel name (the segment is /dev/shm/flatlane.&lt;name&gt;).</summary>
    public string Name { get; }

    /// <summary>Largest size <see cref="Reserve"/> accepts (from the segment header).</summary>
    public long MaxFramePayload { get; }

    /// <summary>Frame size that <see cref="Send"/> splits larger messages into.</summary>
    public long ChunkSize { get; }

    /// <summary>Ring capacity in bytes.</summary>
    public long RingCapacity { get; }

    /// <summary>Opens or creates the channel and claims its writer role.</summary>
    /// <exception cref="FlatlaneException">NotFound, Busy, TypeMismatch, AlreadyExists, InvalidArgument, ...</exception>
    public Writer(string name, ChannelOptions? options = null)
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
            rc = Native.flatlane_writer_open(name, &o, out _h);
        }
        if (rc != 0)
        {
            _h.Dispose();
            throw FlatlaneException.FromNative(rc, name);
        }
        _raw = _h.DangerousGetHandle();
        NativeWriterFastPath fp;
        Native.writer_get_fast_path(_raw, &fp);
        _fast = new WriterFastPath(_raw, fp);
        NativeStats s;
        Native.flatlane_writer_stats(_h, &s);
        MaxFramePayload = s.MaxFramePayload;
        ChunkSize = s.ChunkSize;
        RingCapacity = (long)s.CapacityBytes;
    }

    /// <summary>
    /// A writable span of exactly <paramref name="n"/> bytes inside the ring (16-byte aligned),
    /// waiting for space up to <paramref name="timeout"/> (null: forever). Write the message
    /// into it, then <see cref="Commit"/>, <see cref="CommitTail"/> or <see cref="Abort"/>. The
    /// span is valid until then; a new Reserve or Send drops an uncommitted reservation.
    /// </summary>
    /// <exception cref="FlatlaneTimeoutException">No space within the timeout.</exception>
    /// <exception cref="FlatlanePeerGoneException">The reader died or closed.</exception>
    /// <exception cref="FlatlaneException">MessageTooLarge (n &gt; <see cref="MaxFramePayload"/>), Closed.</exception>
    public Span<byte> Reserve(int n, TimeSpan? timeout = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        byte* p;
        // The usual case first, with no call and no try/finally (nothing in it throws).
        Enter();
        bool fast = _fast.TryReserve(n, out p);
        Exit();
        if (fast) return new Span<byte>(p, n);
        int rc = ReserveNative(n, Native.ToNanoseconds(timeout), &p);
        if (rc != 0) ThrowNative(rc);
        return new Span<byte>(p, n);
    }

    // Space is usually there: the managed fast path takes it without any native call. Otherwise
    // poll without the GC transition (a zero-timeout reserve cannot block), and make the blocking
    // call only when we really have to wait. Before a wait the poll is try_reserve, which does not
    // raise `demand`: the blocking reserve raises it after its spin, as C++'s does. Raising it on
    // every poll of a full ring made the reader publish per release, and both sides trade the
    // position lines per message (C# throughput halved).
    private int ReserveNative(int n, long timeoutNs, byte** p)
    {
        Enter();
        try
        {
            if (_fast.TryReserve(n, out *p)) return 0;
            int rc = timeoutNs == 0
                ? Native.writer_reserve_poll(_raw, (ulong)n, 0, p)
                : Native.writer_try_reserve(_raw, (ulong)n, p);
            if (rc == (int)ErrorCode.Timeout && timeoutNs != 0) rc = Native.writer_reserve(_raw, (ulong)n, timeoutNs, p);
            return rc;
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// Like <see cref="Reserve"/>, but returns false instead of throwing when the timeout runs
    /// out (a zero timeout polls once), so a polling loop costs no exceptions.
    /// </summary>
    public bool TryReserve(int n, TimeSpan timeout, out Span<byte> span)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        byte* p;
        int rc = ReserveNative(n, Native.ToNanoseconds(timeout), &p);
        if (rc == 0)
        {
            span = new Span<byte>(p, n);
            return true;
        }
        span = default;
        if (rc == (int)ErrorCode.Timeout) return false;
        ThrowNative(rc);
        return false;
    }

    /// <summary>Publishes the first <paramref name="used"/> bytes of the reservation.</summary>
    /// <exception cref="FlatlaneException">InvalidArgument: no reservation, or used larger than it.</exception>
    public void Commit(int used)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(used);
        Enter();
        int rc = 0;
        if (_fast.Reserved && (ulong)used <= _fast.ReservedSize) _fast.Commit((ulong)used);
        else rc = Native.writer_commit(_raw, (ulong)used);  // reports the misuse
        Exit();
        if (rc != 0) ThrowNative(rc);
    }

    /// <summary>
    /// Publishes the LAST <paramref name="used"/> bytes of the reservation, where a back-to-front
    /// builder (FlatBuffers) leaves its finished buffer; the bytes in front are skipped, not copied.
    /// </summary>
    public void CommitTail(int used)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(used);
        Enter();
        int rc = 0;
        if (!_fast.Reserved || (ulong)used > _fast.ReservedSize || !_fast.TryCommitTail((ulong)used))
            rc = Native.writer_commit_tail(_raw, (ulong)used);  // a gap record, or the misuse
        Exit();
        if (rc != 0) ThrowNative(rc);
    }

    /// <summary>Drops the reservation; nothing becomes visible.</summary>
    public void Abort()
    {
        Enter();
        _fast.Abort();
        Exit();
    }

    /// <summary>
    /// Copies a whole message in: one frame if it fits <see cref="MaxFramePayload"/>, else chunks
    /// of <see cref="ChunkSize"/> that a reader's Receive reassembles. The timeout bounds each
    /// wait for space (time without progress), not the whole transfer.
    /// </summary>
    public void Send(ReadOnlySpan<byte> data, TimeSpan? timeout = null)
    {
        int rc;
        Enter();
        try
        {
            fixed (byte* p = data)
            {
                rc = Native.writer_write_message(_raw, p, (ulong)data.Length, Native.ToNanoseconds(timeout));
            }
        }
        finally
        {
            Exit();
        }
        if (rc != 0) ThrowNative(rc);
    }

    /// <summary>True while a live reader is attached.</summary>
    public bool PeerAttached => Native.flatlane_writer_peer_attached(_h) != 0;

    /// <summary>This endpoint's counters.</summary>
    public EndpointStats Stats
    {
        get
        {
            NativeStats s;
            Native.flatlane_writer_stats(_h, &s);
            return EndpointStats.From(s);
        }
    }

    /// <summary>
    /// Detaches: the reader sees PeerClosed once it has read everything; a Reserve or Send blocked
    /// in another thread returns Closed. Later calls fail with Closed. Idempotent.
    /// </summary>
    public void Close()
    {
        if (Volatile.Read(ref _disposed) != 0) return;
        try
        {
            Native.flatlane_writer_close(_h);
        }
        catch (ObjectDisposedException)
        {
            // Disposed concurrently: closing is part of disposal, nothing left to do.
        }
    }

    /// <summary>Closes and frees the endpoint (deferred until a call still running in another thread returns).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        try
        {
            Native.flatlane_writer_close(_h);  // makes a Reserve/Send blocked in another thread return
        }
        catch (ObjectDisposedException)
        {
        }
        // Every thread now either sees _disposed (and stays out) or has its _inCall = 1 visible here.
        Interlocked.MemoryBarrierProcessWide();
        var spin = new SpinWait();
        while (Volatile.Read(ref _inCall) != 0) spin.SpinOnce();
        _h.Dispose();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Enter()
    {
        // Best effort: catches a second producer thread unless both enter in the same instant.
        if (Volatile.Read(ref _inCall) != 0) ThrowConcurrent();
        Volatile.Write(ref _inCall, 1);
        if (Volatile.Read(ref _disposed) != 0) ThrowDisposed();
    }

    // KeepAlive: _raw is used without the SafeHandle, so this object (and through it the
    // handle's finalizer) must stay reachable until the call is over.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Exit()
    {
        Volatile.Write(ref _inCall, 0);
        GC.KeepAlive(this);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowDisposed()
    {
        Volatile.Write(ref _inCall, 0);
        throw new ObjectDisposedException(GetType().FullName);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowConcurrent() =>
        throw new InvalidOperationException(
            $"flatlane: writer '{Name}' is single-producer: another thread is inside a call on it");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowNative(int rc) => throw FlatlaneException.FromNative(rc, Name);
}
