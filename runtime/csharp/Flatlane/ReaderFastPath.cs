using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;

namespace Flatlane;

// flatlane_reader_cursor (flatlane_c.h): the native reader's own state, advanced in place.
[StructLayout(LayoutKind.Sequential)]
internal struct NativeReaderCursor
{
    public ulong Cursor;
    public ulong ReleasePos;
    public ulong PublishedRelease;
    public ulong PublishBatch;
    public ulong CachedWritePos;
    public ulong PosFloor;
    public ulong FastCommitStart;
    public ulong FastPrevEnd;
    public ulong ExpectedSeq;
    public ulong Held;
    public ulong ReleasedFrames;
    public uint WriterEpoch;
    public byte EpochKnown;
    public byte FastPrevPadding;
    public byte Corrupt;
    public byte Reserved0;
}

// flatlane_reader_fast_path (flatlane_c.h).
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct NativeReaderFastPath
{
    public byte* Ring;
    public ulong Capacity;
    public uint MaxFramePayload;
    public uint Reserved0;
    public NativeReaderCursor* Cursor;
    public ulong* Pos;
    public ulong* Count;
    public uint* SpaceWaiters;
    public uint* SpaceDemand;
    public byte* Closed;
}

/// <summary>
/// The consumer's side of the ring (docs/PROTOCOL.md 6.4 and 6.5) for plain frames: a committed,
/// unchunked frame of the writer epoch already known, in sequence, is validated and delivered
/// here, and released here (in order or out of order, with the sweep and the batched publication
/// of 5.6). Anything else — nothing visible yet, padding, a chunk, a new epoch or the first frame,
/// a frame that fails validation (the native read then reports Corrupt), a closed reader — is
/// declined before any state changes, and the native read takes it from the same cursor
/// (flatlane_reader_get_fast_path): one reader state, not two copies.
/// </summary>
/// <remarks>
/// Every rule is the C++ reader's (runtime/cpp/src/channel.cpp: frame_visible, read, release,
/// sweep, caught_up, publish_release); the two change together with PROTOCOL.md. A frame
/// delivered here is identified by its ring position and extent instead of a slot-table token;
/// a second release of it is recognised (it lies before the release position, or carries the
/// RELEASED flag) and ignored. That flag lives in shared memory: a writer that clears it (which no
/// conforming writer does) can make a stale copy count again, which miscounts held frames and may
/// leave the ring stuck; it frees no space a held frame still occupies and reaches nothing
/// outside the ring. Not thread-safe: used under the Reader's gate.
/// </remarks>
internal readonly unsafe struct ReaderFastPath
{
    private const ulong HeaderSize = RingLayout.HeaderSize;
    private const ulong RingReserve = RingLayout.RingReserve;
    private const uint FlagPadding = RingLayout.FlagPadding;
    private const uint FlagChunked = RingLayout.FlagChunked;
    private const uint FlagReleased = RingLayout.FlagReleased;

    private readonly IntPtr _reader;  // the native reader, for the wake-up
    private readonly byte* _ring;
    private readonly ulong _cap;
    private readonly ulong _mask;
    private readonly uint _maxFrame;
    private readonly NativeReaderCursor* _c;
    private readonly ulong* _pos;
    private readonly ulong* _count;
    private readonly uint* _spaceWaiters;
    private readonly uint* _spaceDemand;
    private readonly byte* _closed;

    public ReaderFastPath(IntPtr reader, in NativeReaderFastPath f)
    {
        _reader = reader;
        _ring = f.Ring;
        _cap = f.Capacity;
        _mask = f.Capacity - 1;
        _maxFrame = f.MaxFramePayload;
        _c = f.Cursor;
        _pos = f.Pos;
        _count = f.Count;
        _spaceWaiters = f.SpaceWaiters;
        _spaceDemand = f.SpaceDemand;
        _closed = f.Closed;
    }

    /// <summary>
    /// Delivers the next frame if it is a plain one that is already visible; false leaves every
    /// field as it was, for the native read. The frame's token is its ring position and its
    /// Reserved0 its extent (never 0; the native read always leaves Reserved0 0).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryRead(out NativeFrame frame)
    {
        NativeReaderCursor* c = _c;
        Unsafe.SkipInit(out frame);
        if (Volatile.Read(ref *_closed) != 0 || c->Corrupt != 0) return false;
        ulong cur = c->Cursor;
        FrameHeader* h = At(cur);
        bool viaCommitWord = cur >= c->CachedWritePos;
        if (viaCommitWord)
        {
            // frame_visible: past the writer's known position, the commit word at the cursor
            // tells (acquire: the frame's bytes are visible once it reads the expected number).
            if (c->ExpectedSeq == 0 || Volatile.Read(ref h->Seq) != c->ExpectedSeq) return false;
        }
        // read(): each field once, validated before use.
        ulong off = cur & _mask;
        uint size = h->Size;
        uint flags = h->Flags;
        ulong seq = h->Seq;
        ulong ext = RingLayout.Extent(size);
        ulong writePos = c->CachedWritePos;
        if (viaCommitWord)
        {
            if (ext > _cap - off || cur + ext - c->ReleasePos > _cap - RingReserve) return false;  // corrupt
            writePos = cur + ext;
        }
        ulong avail = writePos - cur;
        if (avail > _cap || avail < HeaderSize || (writePos & 15) != 0 || ext > avail || ext > _cap - off) return false;  // corrupt
        if ((flags & (FlagPadding | FlagChunked | FlagReleased)) != 0) return false;  // skipped or chunked: native
        uint lead = RingLayout.DecodeLead(flags);
        if (size > _maxFrame || lead > size) return false;  // corrupt
        // Frames beyond a Span (or an extent beyond the 32 bits a Frame keeps) are the native
        // read's: only a segment created with a giant max frame payload has them.
        if (size > int.MaxValue) return false;
        if (c->EpochKnown == 0 || (flags >> RingLayout.EpochShift) != c->WriterEpoch) return false;  // new writer: native resynchronises
        if (c->ExpectedSeq == 0 || seq != c->ExpectedSeq) return false;  // resynchronise, or corrupt
        if (viaCommitWord)
        {
            // Padding and the frame behind it are one commit; the writer's position may still
            // be at the start of that commit, and may never fall below it.
            if (!(c->FastPrevPadding != 0 && c->FastPrevEnd == cur)) c->FastCommitStart = cur;
            if (c->PosFloor < c->FastCommitStart) c->PosFloor = c->FastCommitStart;
            c->FastPrevEnd = cur + ext;
            c->FastPrevPadding = 0;
            c->CachedWritePos = cur + ext;
        }
        c->ExpectedSeq = seq + 1;
        c->Cursor = cur + ext;
        c->Held++;
        frame.Data = (IntPtr)(_ring + off + HeaderSize + lead);
        frame.Size = size - lead;
        frame.Seq = seq;
        frame.Token = cur;
        frame.Flags = flags & RingLayout.FlagMask;
        frame.Reserved0 = (uint)ext;
        frame.ChunkIndex = 0;
        frame.ChunkCount = 0;
        frame.MessageSize = 0;
        return true;
    }

    /// <summary>
    /// True while nothing is committed at the cursor as far as its commit word tells (frame_visible
    /// with the writer's position left unread): a reader may spin on this. False as soon as there
    /// is something to look at (a frame, padding, a stranger's sequence number) or the reader is
    /// closed or corrupt, or when only the writer's position could tell (no sequence expected yet):
    /// the native read takes over then.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool NothingCommitted()
    {
        NativeReaderCursor* c = _c;
        return Volatile.Read(ref *_closed) == 0 && c->Corrupt == 0 && c->Cursor >= c->CachedWritePos &&
               c->ExpectedSeq != 0 && Volatile.Read(ref At(c->Cursor)->Seq) == 0;
    }

    /// <summary>publish_release(true): what a read that finds nothing to deliver does first.</summary>
    public void PublishNow()
    {
        NativeReaderCursor* c = _c;
        if (c->ReleasePos == c->PublishedRelease) return;
        PublishCore();
    }

    /// <summary>
    /// Releases a frame delivered by <see cref="TryRead"/> (position <paramref name="pos"/>,
    /// <paramref name="extent"/> bytes); a stale one (already released) is ignored.
    /// </summary>
    public void Release(ulong pos, uint extent)
    {
        NativeReaderCursor* c = _c;
        if (pos < c->ReleasePos || pos >= c->Cursor || c->Held == 0) return;  // released before
        FrameHeader* h = At(pos);
        if ((h->Flags & FlagReleased) != 0) return;  // released out of order before
        c->Held--;
        c->ReleasedFrames++;
        if (pos == c->ReleasePos)
        {
            c->ReleasePos += extent;  // in order: no ring memory touched
            Sweep();
        }
        else
        {
            h->Flags |= FlagReleased;  // the sweep passes over it once all before are released
        }
    }

    // Over records already released (or padding) in front of the release position, then publish.
    private void Sweep()
    {
        NativeReaderCursor* c = _c;
        while (c->ReleasePos < c->Cursor)
        {
            FrameHeader* h = At(c->ReleasePos);
            uint flags = h->Flags;
            if ((flags & (FlagReleased | FlagPadding)) == 0) break;
            ulong ext = RingLayout.Extent(h->Size);
            if (ext > c->Cursor - c->ReleasePos)
            {
                c->Corrupt = 1;  // the header changed under us after validation
                break;
            }
            c->ReleasePos += ext;
        }
        Publish();
    }

    // publish_release(false): batched, except when the writer waits or asks, or we caught up.
    private void Publish()
    {
        NativeReaderCursor* c = _c;
        if (c->ReleasePos == c->PublishedRelease) return;
        if (c->ReleasePos - c->PublishedRelease < c->PublishBatch && Volatile.Read(ref *_spaceWaiters) == 0 &&
            Volatile.Read(ref *_spaceDemand) == 0 && !CaughtUp())
            return;
        PublishCore();
    }

    private void PublishCore()
    {
        NativeReaderCursor* c = _c;
        c->PublishedRelease = c->ReleasePos;
        Volatile.Write(ref *_count, c->ReleasedFrames);
        Volatile.Write(ref *_pos, c->ReleasePos);
        Interlocked.MemoryBarrier();  // notify (8.1)
        if (Volatile.Read(ref *_spaceWaiters) != 0) WakeWriter();
    }

    // Nothing held and nothing more committed: such a reader may go and block elsewhere, so it
    // must not keep freed space to itself.
    private bool CaughtUp()
    {
        NativeReaderCursor* c = _c;
        if (c->Held != 0 || c->Cursor < c->CachedWritePos) return false;
        return c->ExpectedSeq == 0 || Volatile.Read(ref At(c->Cursor)->Seq) != c->ExpectedSeq;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WakeWriter() => Native.reader_wake_writer(_reader);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private FrameHeader* At(ulong pos) => (FrameHeader*)(_ring + (pos & _mask));
}
