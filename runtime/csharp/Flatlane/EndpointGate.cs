using System;
using System.Runtime.CompilerServices;
using System.Threading;

namespace Flatlane;

/// <summary>
/// Mutual exclusion for the native calls of one endpoint, biased towards the thread that uses it.
/// <para>
/// Why: an uncontended interlocked CompareExchange + Exchange pair costs 18-20 ns on the 2-core dev
/// VM, and a message crosses four gated calls (loan, publish, receive, release): that was most of
/// what C# spent per message beyond C++. Yet nearly every endpoint is used by one thread.
/// </para>
/// <para>
/// How: the first thread to enter becomes the bias owner. It enters and leaves with plain stores
/// to <c>_busy</c> (no interlocked instruction, no fence). The first time any other thread needs
/// the gate, it revokes the bias, once for the endpoint's life: it marks the gate Revoking, runs a
/// process-wide memory barrier (every thread of the process executes a full fence; membarrier on
/// Linux), then reads <c>_busy</c>. The barrier is what lets the owner's store-then-load
/// (<c>_busy = 1</c>, then read the bias) go without a fence of its own: either the owner's store
/// is visible to the revoker, or the owner's load sees Revoking and it backs out. If the owner is
/// inside, the revoker does not wait for it (the owner may be blocked in a long receive): the
/// owner completes the revocation as it leaves, with an interlocked instruction, after which its
/// caller looks at the deferred work that other threads queued meanwhile. From then on every
/// thread, the owner included, takes the interlocked lock word. Endpoints used by several threads
/// (async receives completed on a waiter thread, frames released by workers) thus pay one
/// barrier (microseconds) once, and the old cost per call after it.
/// </para>
/// <para>
/// Who is the owner: the thread whose stack holds the address of a local variable of the caller,
/// while the owner's "alive" word is nonzero. Stacks of live threads never overlap, and the word
/// is zeroed as the owner exits, before its stack memory can go to other threads (two new threads
/// could otherwise both fall inside a dead owner's range): so the check is exact, and it costs a
/// subtraction, a compare and one load where <c>Environment.CurrentManagedThreadId</c> costs a
/// thread-local lookup (a call into the runtime and <c>__tls_get_addr</c>, ~4 ns, twice per
/// message on a reader). Both come from <c>flatlane_thread_identity</c> (pthread) once, when the
/// first entrant takes the bias; a thread without them never becomes the owner (the gate then
/// stays unbiased). After the owner's exit every thread takes the slow path and the first one
/// revokes the bias.
/// </para>
/// <para>
/// A mutable struct: keep it in a non-readonly field and call it in place.
/// </para>
/// </summary>
internal unsafe struct EndpointGate
{
    private const int Free = 0, Held = 1, Disposed = 2;                       // _lock
    private const int Unbiased = 0, Biased = 1, Revoking = 2, Revoked = 3;   // _bias

    private int _lock;
    private int _bias;
    private ulong _ownerLo;   // the bias owner's stack: [lo, lo + size); written once, before _bias = Biased
    private ulong _ownerSize;
    private uint* _ownerAlive; // nonzero while the owner thread lives (native, never freed)
    private int _busy;        // 1 while the owner is inside through the bias (plain stores by the owner)
    private bool _inBiased;   // how the current holder entered; written by the owner only
    private ulong _grantLo;   // a first entrant's stack, to become the owner as it leaves (under the lock)
    private ulong _grantSize; // 0: nobody to grant to
    private uint* _grantAlive;

    /// <summary>True once <see cref="EnterDisposed"/> has run.</summary>
    public bool IsDisposed => Volatile.Read(ref _lock) == Disposed;

    /// <summary>True while the owner thread enters without interlocked instructions.</summary>
    public bool IsBiased => Volatile.Read(ref _bias) == Biased;

    /// <summary>Enters, waiting while another thread is inside. False: the endpoint is disposed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Enter() => TryEnterBiased() || EnterSlow(wait: true);

    /// <summary>
    /// Enters if nobody is inside, without waiting. False: another thread is inside (or the owner
    /// is, while its bias is being revoked), or the endpoint is disposed (<see cref="IsDisposed"/>).
    /// A caller that gets false queues its work for the holder, which looks at the queue as it
    /// leaves (<see cref="Exit"/> ends with a full fence whenever another thread can have queued).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryEnter() => TryEnterBiased() || EnterSlow(wait: false);

    /// <summary>
    /// Enters only the bias owner's way (plain stores, no call); false in every other case, which
    /// then takes <see cref="Enter"/> or <see cref="TryEnter"/>. For a fast path placed in front
    /// of the usual one.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryEnterAsOwner() => TryEnterBiased();

    /// <summary>Leaves. The caller then checks for work other threads queued.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Exit()
    {
        if (_inBiased)
        {
            LeaveBiased();
            return;
        }
        if (_grantSize != 0) Grant();
        Interlocked.Exchange(ref _lock, Free);  // a full fence: see TryEnter
    }

    // The first entrant becomes the owner as it leaves, not as it enters: so no fast path exists
    // while it is inside through the lock (a nested entry cannot slip past it), and a Dispose that
    // came meanwhile (bias Unbiased -> Revoked) wins: the CAS then fails and no bias is ever given.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Grant()
    {
        _ownerLo = _grantLo;
        _ownerSize = _grantSize;
        _ownerAlive = _grantAlive;
        _grantSize = 0;
        Interlocked.CompareExchange(ref _bias, Biased, Unbiased);  // after the owner's bounds: a full fence
    }

    // True on the bias owner's thread while it lives (see the class doc). Before a grant the
    // size is 0: false, and the alive word is not looked at.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly bool IsOwner()
    {
        byte probe;
        return (ulong)&probe - _ownerLo < _ownerSize && Volatile.Read(ref *_ownerAlive) != 0;
    }

    /// <summary>
    /// Revokes the bias, waits for the holder to leave and closes the gate for good. False: it
    /// was already closed.
    /// </summary>
    public bool EnterDisposed()
    {
        Interlocked.CompareExchange(ref _bias, Revoked, Unbiased);  // nobody may take the bias from now on
        Revoke(wait: true);
        var spin = new SpinWait();
        for (;;)
        {
            int prev = Interlocked.CompareExchange(ref _lock, Disposed, Free);
            if (prev == Free) return true;
            if (prev == Disposed) return false;
            spin.SpinOnce();
        }
    }

    // The owner's way in: plain stores, and the revoker's process-wide barrier stands in for the
    // fence between `_busy = 1` and the read of the bias. That covers the CPU's store-load
    // reordering, not the compiler's: the .NET memory model would allow a JIT to move the acquire
    // load above the release store, and no compiler-only fence exists. RyuJIT keeps volatile
    // accesses in program order (x64: `mov [busy], 1` then `cmp [bias], 1`); this code, like the
    // runtime's own uses of FlushProcessWriteBuffers, relies on that. Same in LeaveBiased.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryEnterBiased()
    {
        if (Volatile.Read(ref _bias) != Biased || !IsOwner() || _inBiased) return false;
        Volatile.Write(ref _busy, 1);
        if (Volatile.Read(ref _bias) == Biased)
        {
            _inBiased = true;
            return true;
        }
        LeaveBiased();
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void LeaveBiased()
    {
        _inBiased = false;
        Volatile.Write(ref _busy, 0);
        // A revoker that found us inside left the rest to us. The interlocked instruction is also
        // the fence that orders this against the queue the caller reads next.
        if (Volatile.Read(ref _bias) == Revoking) Interlocked.CompareExchange(ref _bias, Revoked, Revoking);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool EnterSlow(bool wait)
    {
        // Orders the caller's earlier stores (a queued release, a close request) before the reads
        // below, so that a holder leaving at the same time and this thread see each other.
        Interlocked.MemoryBarrier();
        var spin = new SpinWait();
        for (;;)
        {
            int bias = Volatile.Read(ref _bias);
            if (bias == Biased && IsOwner())
            {
                if (_inBiased)
                {
                    // Already inside on this thread: a nested entry must not pass (its Exit would
                    // open the gate under the outer call).
                    if (!wait) return false;
                    throw new InvalidOperationException("flatlane: nested call on one endpoint from the thread already inside it");
                }
                // Our own bias: the fast path failed only because a revocation began, which sends
                // us below on the next turn.
                if (TryEnterBiased()) return true;
                continue;
            }
            if (bias == Biased || bias == Revoking)
            {
                if (!Revoke(wait)) return false;  // the owner is inside and will finish the revocation
                continue;
            }
            int prev = Interlocked.CompareExchange(ref _lock, Held, Free);
            if (prev == Free)
            {
                bias = Volatile.Read(ref _bias);
                if (bias == Unbiased)
                {
                    // First entry: this thread takes the bias as it leaves (see Grant), if its
                    // stack bounds can be had.
                    if (CurrentThread(out ulong lo, out ulong size, out uint* alive))
                    {
                        _grantLo = lo;
                        _grantSize = size;
                        _grantAlive = alive;
                    }
                    return true;
                }
                if (bias == Revoked) return true;
                // Another thread took the bias between our read and our lock: give the lock back
                // and revoke first (the owner may enter at any moment without the lock).
                Interlocked.Exchange(ref _lock, Free);
                continue;
            }
            if (prev == Disposed || !wait) return false;
            spin.SpinOnce();
        }
    }

    // Out of line: the P/Invoke's frame would otherwise be built on every EnterSlow (Native.cs).
    // Never throws (we hold the lock here): a failure only means no bias.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static bool CurrentThread(out ulong lo, out ulong size, out uint* alive)
    {
        ulong l = 0, n = 0;
        uint* a = null;
        bool ok;
        try
        {
            ok = Native.flatlane_thread_identity(&l, &n, &a) == 0 && n != 0 && a != null;
        }
        catch (Exception)
        {
            ok = false;
        }
        lo = l;
        size = ok ? n : 0;
        alive = ok ? a : null;
        return ok;
    }

    // Moves the bias to Revoked. With wait == false, returns false if the owner is inside (it
    // completes the revocation as it leaves); with wait == true, waits for that.
    private bool Revoke(bool wait)
    {
        if (Interlocked.CompareExchange(ref _bias, Revoking, Biased) == Biased)
        {
            Interlocked.MemoryBarrierProcessWide();
            if (Volatile.Read(ref _busy) == 0) Interlocked.CompareExchange(ref _bias, Revoked, Revoking);
        }
        if (Volatile.Read(ref _bias) != Revoking) return true;
        if (!wait) return false;
        var spin = new SpinWait();
        while (Volatile.Read(ref _bias) == Revoking) spin.SpinOnce();
        return true;
    }
}
