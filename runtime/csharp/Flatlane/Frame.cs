using System;

namespace Flatlane;

/// <summary>Bits of <see cref="Frame.Flags"/>.</summary>
[Flags]
public enum FrameFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>First frame of a message.</summary>
    First = 0x2,
    /// <summary>Last frame of a message.</summary>
    Last = 0x4,
    /// <summary>One chunk of a message larger than a frame (see <see cref="Frame.ChunkIndex"/>).</summary>
    Chunked = 0x8,
}

/// <summary>
/// A frame held by a <see cref="Reader"/>: a zero-copy view of the payload in shared memory. The
/// ring space stays reserved until <see cref="Dispose"/> (or <see cref="Release"/>); frames may be
/// released in any order. After release, <see cref="Data"/> must not be used: the writer reuses
/// the space. Copies of a Frame share one release; releasing twice, or after the reader was
/// disposed, does nothing.
/// </summary>
public readonly unsafe struct Frame : IDisposable
{
    private readonly Reader? _reader;
    private readonly byte* _data;
    private readonly int _length;
    private readonly ulong _token;   // slot-table token, or the ring position of a fast-path frame
    private readonly uint _extent;   // fast-path frames: ring bytes to release; 0: a native token

    /// <summary>The writer's frame sequence number (consecutive, from 1).</summary>
    public ulong Seq { get; }

    /// <summary>Frame flags.</summary>
    public FrameFlags Flags { get; }

    /// <summary>Chunk frames: index of this chunk within its message.</summary>
    public uint ChunkIndex { get; }

    /// <summary>Chunk frames: number of chunks in the message.</summary>
    public uint ChunkCount { get; }

    /// <summary>Chunk frames: size of the whole message.</summary>
    public ulong MessageSize { get; }

    internal Frame(Reader reader, in NativeFrame f)
    {
        _reader = reader;
        _data = (byte*)f.Data;
        _length = (int)f.Size;
        _token = f.Token;
        _extent = f.Reserved0;  // set by ReaderFastPath only
        Seq = f.Seq;
        Flags = (FrameFlags)f.Flags;
        ChunkIndex = f.ChunkIndex;
        ChunkCount = f.ChunkCount;
        MessageSize = f.MessageSize;
    }

    /// <summary>The payload, in place in the ring.</summary>
    public ReadOnlySpan<byte> Data => new(_data, _length);

    /// <summary>Payload length in bytes.</summary>
    public int Length => _length;

    /// <summary>False for <c>default(Frame)</c>.</summary>
    public bool IsValid => _reader is not null;

    /// <summary>True when this frame is one chunk of a larger message.</summary>
    public bool IsChunk => (Flags & FrameFlags.Chunked) != 0;

    /// <summary>Returns the frame's ring space to the writer.</summary>
    public void Release() => _reader?.ReleaseFrame(_token, _extent);

    /// <summary>Same as <see cref="Release"/>.</summary>
    public void Dispose() => _reader?.ReleaseFrame(_token, _extent);
}

/// <summary>
/// A whole message from <see cref="Reader.Receive"/>: in place in the ring when it fit one frame
/// (<see cref="ZeroCopy"/>), else reassembled in the reader's buffer. Valid until the next
/// Receive on the reader or <see cref="Dispose"/>, whichever comes first.
/// </summary>
public readonly unsafe struct Message : IDisposable
{
    private readonly Reader? _reader;
    private readonly byte* _data;
    private readonly int _length;
    private readonly ulong _token;

    /// <summary>Sequence number of the message's first frame.</summary>
    public ulong Seq { get; }

    /// <summary>True when <see cref="Data"/> points into the ring (a single-frame message).</summary>
    public bool ZeroCopy { get; }

    internal Message(Reader reader, in NativeMessage m)
    {
        _reader = reader;
        _data = (byte*)m.Data;
        _length = (int)m.Size;
        _token = m.Token;
        Seq = m.Seq;
        ZeroCopy = m.ZeroCopy != 0;
    }

    /// <summary>The message bytes.</summary>
    public ReadOnlySpan<byte> Data => new(_data, _length);

    /// <summary>Message length in bytes.</summary>
    public int Length => _length;

    /// <summary>False for <c>default(Message)</c>.</summary>
    public bool IsValid => _reader is not null;

    /// <summary>Copies the message out (allocates; for convenience off the hot path).</summary>
    public byte[] ToArray() => Data.ToArray();

    /// <summary>Releases the message early (its ring space, if zero-copy). A stale message is ignored.</summary>
    public void Dispose() => _reader?.ReleaseMessage(_token);
}
