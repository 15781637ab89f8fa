using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Flatlane;

/// <summary>
/// The channel ring's wire layout (docs/PROTOCOL.md 5.2-5.4, Appendix A; C++:
/// runtime/cpp/include/flatlane/layout.hpp), for the managed fast paths. Little-endian only, as
/// the whole binding.
/// </summary>
internal static class RingLayout
{
    public const ulong HeaderSize = 16;   // FrameHeader
    public const ulong RingReserve = 16;  // the slot after the last record stays free
    public const uint FlagPadding = 0x1;
    public const uint FlagFirst = 0x2;
    public const uint FlagLast = 0x4;
    public const uint FlagChunked = 0x8;
    public const uint FlagReleased = 0x100;
    public const uint FlagMask = 0xFFFF;  // what a Frame shows; the epoch is above
    public const int EpochShift = 16;
    public const uint MaxLead = 0x7F * 16 + 15;

    /// <summary>Ring bytes taken by a record of <paramref name="payload"/> bytes (16-aligned).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Extent(ulong payload) => (HeaderSize + payload + 15) & ~15UL;

    // The lead (5.2): bits 4-7 hold lead % 16, bits 9-15 lead / 16 (bit 8 is RELEASED).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint EncodeLead(uint lead) => ((lead & 0xFu) << 4) | ((lead >> 4) << 9);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint DecodeLead(uint flags) => ((flags >> 4) & 0xFu) | (((flags >> 9) & 0x7Fu) << 4);
}

/// <summary>wire::FrameHeader: 16 bytes at a 16-aligned ring position.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct FrameHeader
{
    public uint Size;   // payload bytes after the header (padding: bytes to skip)
    public uint Flags;  // RingLayout.Flag* | lead | epoch << 16
    public ulong Seq;   // the commit word: 1-based frame sequence, 0 = nothing committed
}
