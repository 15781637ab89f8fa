using System;
using System.Runtime.InteropServices;
using System.Text;

namespace Flatlane;

/// <summary>How an endpoint gets its segment.</summary>
public enum OpenMode
{
    /// <summary>Create the segment (reclaiming a stale one); fail with AlreadyExists if a live one exists.</summary>
    Create = 0,
    /// <summary>Attach to an existing segment; NotFound if there is none.</summary>
    Open = 1,
    /// <summary>Open if it exists, else create.</summary>
    CreateOrOpen = 2,
}

/// <summary>How a blocked call waits for its peer.</summary>
public enum WaitStrategy
{
    /// <summary>Never sleeps: lowest latency, burns a core while waiting.</summary>
    BusySpin = 0,
    /// <summary>Spins for <see cref="ChannelOptions.SpinBudget"/>, then sleeps on a futex (default).</summary>
    SpinThenSleep = 1,
    /// <summary>Sleeps on a futex at once.</summary>
    Blocking = 2,
}

/// <summary>
/// Channel options. Every property left null keeps the C++ runtime's default (the native
/// library fills them in, so the two languages cannot drift apart). Segment geometry
/// (<see cref="RingCapacity"/>, <see cref="MaxFramePayload"/>, <see cref="ChunkSize"/>,
/// <see cref="FileMode"/>) only matters to the endpoint that creates the segment.
/// </summary>
public sealed record ChannelOptions
{
    /// <summary>Default: <see cref="OpenMode.CreateOrOpen"/>.</summary>
    public OpenMode? Mode { get; init; }
    /// <summary>Ring bytes, rounded up to a power of two &gt;= 4096. Default 1 MiB.</summary>
    public long? RingCapacity { get; init; }
    /// <summary>Largest frame payload (Reserve size). Default capacity/2 - 32.</summary>
    public int? MaxFramePayload { get; init; }
    /// <summary>Frame size large messages are split into. Default min(MaxFramePayload, 1 MiB).</summary>
    public int? ChunkSize { get; init; }
    /// <summary>Permission bits of /dev/shm/flatlane.&lt;name&gt;. Default 0600.</summary>
    public int? FileMode { get; init; }
    /// <summary>Default <see cref="WaitStrategy.SpinThenSleep"/>.</summary>
    public WaitStrategy? Wait { get; init; }
    /// <summary>Spin time before sleeping (SpinThenSleep). Default 50 us.</summary>
    public TimeSpan? SpinBudget { get; init; }
    /// <summary>Longest sleep between peer liveness checks: bounds dead-peer detection. Default 50 ms.</summary>
    public TimeSpan? LivenessInterval { get; init; }
    /// <summary>Reader: larger reassembled messages fail with MessageTooLarge. Default 4 GiB.</summary>
    public long? MaxMessageSize { get; init; }
    /// <summary>Message type name (max 127 UTF-8 bytes); null or empty = untyped.</summary>
    public string? TypeName { get; init; }
    /// <summary>Type hash, checked together with <see cref="TypeName"/>.</summary>
    public ulong TypeHash { get; init; }
    /// <summary>The last endpoint to close removes the name. Default true.</summary>
    public bool? UnlinkOnClose { get; init; }

    /// <summary>The runtime defaults.</summary>
    public static ChannelOptions Default { get; } = new();

    // Fills `o` for a native open. The type name is copied into `nameBuffer` (caller-owned,
    // pinned for the duration of the call), so nothing here outlives the open.
    internal unsafe void ToNative(NativeOptions* o, Span<byte> nameBuffer, byte* namePtr)
    {
        Native.flatlane_options_init(o);
        if (Mode is OpenMode m) o->OpenMode = (int)m;
        if (RingCapacity is long cap)
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cap, nameof(RingCapacity));
            o->RingCapacity = (ulong)cap;
        }
        if (MaxFramePayload is int mf)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(mf, nameof(MaxFramePayload));
            o->MaxFramePayload = (uint)mf;
        }
        if (ChunkSize is int cs)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(cs, nameof(ChunkSize));
            o->ChunkSize = (uint)cs;
        }
        if (FileMode is int fm) o->FileMode = (uint)fm;
        if (Wait is WaitStrategy w) o->WaitStrategy = (int)w;
        if (SpinBudget is TimeSpan sb) o->SpinBudgetNs = sb.Ticks * 100;
        if (LivenessInterval is TimeSpan li) o->LivenessIntervalNs = li.Ticks * 100;
        if (MaxMessageSize is long mm)
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(mm, nameof(MaxMessageSize));
            o->MaxMessageSize = (ulong)mm;
        }
        if (!string.IsNullOrEmpty(TypeName))
        {
            int n = Encoding.UTF8.GetBytes(TypeName, nameBuffer[..^1]);
            nameBuffer[n] = 0;
            o->TypeName = (IntPtr)namePtr;
        }
        o->TypeHash = TypeHash;
        if (UnlinkOnClose is bool u) o->UnlinkOnClose = u ? 1 : 0;
    }

    internal int TypeNameBufferSize()
    {
        return string.IsNullOrEmpty(TypeName) ? 1 : Encoding.UTF8.GetByteCount(TypeName) + 1;
    }
}

/// <summary>Counters of one endpoint.</summary>
/// <param name="Frames">Frames committed (writer) or delivered (reader).</param>
/// <param name="Messages">Whole messages.</param>
/// <param name="Bytes">Payload bytes.</param>
/// <param name="OccupancyBytes">Committed but not yet released.</param>
/// <param name="CapacityBytes">Ring capacity.</param>
/// <param name="HeldFrames">Reader: frames delivered and not yet released (0 for a writer).</param>
/// <param name="DroppedPartialMessages">Reader: chunked messages abandoned half-way (0 for a writer).</param>
/// <param name="MaxFramePayload">Largest Reserve size.</param>
/// <param name="ChunkSize">Frame size that Send splits large messages into.</param>
[StructLayout(LayoutKind.Auto)]
public readonly record struct EndpointStats(
    ulong Frames, ulong Messages, ulong Bytes, ulong OccupancyBytes, ulong CapacityBytes,
    ulong HeldFrames, ulong DroppedPartialMessages, long MaxFramePayload, long ChunkSize)
{
    internal static EndpointStats From(in NativeStats s) => new(
        s.Frames, s.Messages, s.Bytes, s.OccupancyBytes, s.CapacityBytes, s.HeldFrames,
        s.DroppedPartialMessages, s.MaxFramePayload, s.ChunkSize);
}
