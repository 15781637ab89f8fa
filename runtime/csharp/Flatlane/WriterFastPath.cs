using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;

namespace Flatlane;

// flatlane_writer_cursor (flatlane_c.h): the native writer's own cursor, advanced in place.
[StructLayout(LayoutKind.Sequential)]
internal struct NativeWriterCursor
{
    public ulong WritePos;
    public ulong CachedReadPos;
    public ulong Seq;
    public ulong Messages;
    public ulong Bytes;
    public ulong FramePos;
    public ulong ReservedN;
    public uint Reserved;
    public uint DemandRaised;
}

// flatlane_writer_fast_path (flatlane_c.h).
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct NativeWriterFastPath
{
    public byte* Ring;
    public ulong Capacity;
    public uint MaxFramePayload;
    public uint EpochFlags;
    public NativeWriterCursor* Cursor;
    public ulong* Pos;
    public ulong* Count;
    public ulong* Messages;
    public ulong* Bytes;
    public ulong* ReaderPos;
    public uint* DataWaiters;
    public uint* SpaceDemand;
    public byte* Closed;
}

/// <summary>
/// The producer's side of the ring (docs/PROTOCOL.md 5 and 6.2) for the frames that need no
/// waiting: reserve when the space is there, commit, commit_tail with a lead. It works on the
/// native writer's own cursor (flatlane_writer_get_fast_path), so a case it leaves to the native
/// writer — no space yet, a closed writer, an oversize or misused call, a commit_tail that needs
/// a gap record, chunked Send — continues from exactly the same state. A frame then costs no
/// P/Invoke unless a reader sleeps (the wake-up is a futex syscall either way).
/// </summary>
/// <remarks>
/// Every rule here is the C++ writer's (runtime/cpp/src/channel.cpp, Writer::reserve_impl and
/// commit_frame); the two must change together with PROTOCOL.md. The shared words are stored with
/// Volatile.Write (release) and the notify check follows a full fence, as 8.1 requires. Not
/// thread-safe: used under the Writer's single-producer guard.
/// </remarks>
internal readonly unsafe struct WriterFastPath
{
    private const ulong HeaderSize = RingLayout.HeaderSize;
    private const ulong RingReserve = RingLayout.RingReserve;
    private const uint FlagFirstLast = RingLayout.FlagFirst | RingLayout.FlagLast;

    private readonly IntPtr _writer;  // the native writer, for the wake-up
    private readonly byte* _ring;
    private readonly ulong _cap;
    private readonly ulong _mask;
    private readonly uint _maxFrame;
    private readonly uint _epochFlags;
    private readonly NativeWriterCursor* _c;
    private readonly ulong* _pos;
    private readonly ulong* _count;
    private readonly ulong* _messages;
    private readonly ulong* _bytes;
    private readonly ulong* _readerPos;
    private readonly uint* _dataWaiters;
    private readonly uint* _spaceDemand;
    private readonly byte* _closed;

    public WriterFastPath(IntPtr writer, in NativeWriterFastPath f)
    {
        _writer = writer;
        _ring = f.Ring;
        _cap = f.Capacity;
        _mask = f.Capacity - 1;
        _maxFrame = f.MaxFramePayload;
        _epochFlags = f.EpochFlags;
        _c = f.Cursor;
        _pos = f.Pos;
        _count = f.Count;
        _messages = f.Messages;
        _bytes = f.Bytes;
        _readerPos = f.ReaderPos;
        _dataWaiters = f.DataWaiters;
        _spaceDemand = f.SpaceDemand;
        _closed = f.Closed;
    }

    /// <summary>True while a reservation is open (made here or by the native writer).</summary>
    public bool Reserved => _c->Reserved != 0;

    public ulong ReservedSize => _c->ReservedN;

    /// <summary>
    /// Reserves n bytes if that needs no wait (6.2 steps 1-4), else returns false and leaves
    /// everything as it was for the native reserve (which also reports Closed, MessageTooLarge
    /// and Corrupt). Like the native try_reserve, it never raises `demand`.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryReserve(int n, out byte* payload)
    {
        NativeWriterCursor* c = _c;
        payload = null;
        if (Volatile.Read(ref *_closed) != 0 || (uint)n > _maxFrame) return false;
        ulong total = RingLayout.Extent((ulong)n);
        ulong wp = c->WritePos;
        ulong tail = _cap - (wp & _mask);
        ulong needed = total <= tail ? total : tail + total;
        if (wp + needed - c->CachedReadPos > _cap - RingReserve)
        {
            ulong rp = Volatile.Read(ref *_readerPos);  // acquire: the space it frees is ours
            if (rp > wp || wp - rp > _cap) return false;  // corrupt: the native reserve says so
            c->CachedReadPos = rp;
            if (wp + needed - rp > _cap - RingReserve) return false;  // full: the native reserve waits
        }
        if (c->DemandRaised != 0)
        {
            // We have what we asked for: let the reader batch its releases again (8.5).
            c->DemandRaised = 0;
            Volatile.Write(ref *_spaceDemand, 0u);
        }
        if (total > tail)
        {
            // Wrap (5.4): one padding record covers the tail; its commit word stays 0 until the
            // commit, so an aborted reservation leaves nothing visible.
            FrameHeader* pad = At(wp);
            pad->Size = (uint)(tail - HeaderSize);
            pad->Flags = RingLayout.FlagPadding | _epochFlags;
            c->FramePos = wp + tail;
        }
        else
        {
            c->FramePos = wp;
        }
        c->Reserved = 1;
        c->ReservedN = (ulong)n;
        payload = (byte*)At(c->FramePos) + HeaderSize;
        return true;
    }

    /// <summary>Publishes the reservation's first <paramref name="used"/> bytes (used &lt;= reserved size).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Commit(ulong used) => CommitFrame(used, FlagFirstLast, used);

    /// <summary>
    /// Publishes its last <paramref name="used"/> bytes with a lead (5.2); false when the unused
    /// front exceeds the largest lead, which needs a gap record: the native commit_tail does that.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryCommitTail(ulong used)
    {
        ulong front = _c->ReservedN - used;
        if (front > RingLayout.MaxLead) return false;
        CommitFrame(front + used, FlagFirstLast | RingLayout.EncodeLead((uint)front), used);
        return true;
    }

    public void Abort() => _c->Reserved = 0;

    // Writer::commit_frame for a frame whose header is at the reservation's frame position.
    private void CommitFrame(ulong size, uint flags, ulong payload)
    {
        NativeWriterCursor* c = _c;
        ulong seq = ++c->Seq;
        // Recorded before the frame is visible: a writer taking over after our death continues
        // above every sequence number a reader may have seen.
        Volatile.Write(ref *_count, seq);
        ulong hdrPos = c->FramePos;
        ulong end = hdrPos + RingLayout.Extent(size);
        // The slot after the frame reads "nothing committed" before the frame becomes visible.
        FrameHeader* next = At(end);
        Volatile.Write(ref next->Seq, 0UL);
        next->Size = 0;
        next->Flags = 0;
        FrameHeader* h = At(hdrPos);
        h->Size = (uint)size;
        h->Flags = flags | _epochFlags;
        Volatile.Write(ref h->Seq, seq);  // the commit word (release)
        if (hdrPos != c->WritePos) Volatile.Write(ref At(c->WritePos)->Seq, seq);  // wrap padding, after the frame
        c->WritePos = end;
        c->Reserved = 0;
        Volatile.Write(ref *_pos, end);
        // Notify (8.1): the fence pairs with the sleeper's; a syscall only if someone sleeps.
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref *_dataWaiters) != 0) WakeReader();
        // Counters after publication, so the reader is not kept waiting for them.
        c->Bytes += payload;
        c->Messages++;
        Volatile.Write(ref *_bytes, c->Bytes);
        Volatile.Write(ref *_messages, c->Messages);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WakeReader() => Native.writer_wake_reader(_writer);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private FrameHeader* At(ulong pos) => (FrameHeader*)(_ring + (pos & _mask));

}
