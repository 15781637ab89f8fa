using System;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Flatlane.FlatBuffers;

/// <summary>
/// Reading FlatBuffers from a span: what the generated table views call. Every read goes through
/// a span slice, so a malformed buffer throws (<see cref="ArgumentOutOfRangeException"/>) instead of
/// reading outside it; the generated <c>Verify</c> methods check a whole message up front.
/// Positions are byte indexes into the buffer.
/// </summary>
public static class Fb
{
    /// <summary>The root table's position: the uoffset at the start of the buffer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Root(ReadOnlySpan<byte> buf) => Indirect(buf, 0);

    /// <summary>Position the uoffset at <paramref name="pos"/> points to.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Indirect(ReadOnlySpan<byte> buf, int pos)
    {
        uint off = BinaryPrimitives.ReadUInt32LittleEndian(buf.Slice(pos));
        return checked(pos + (int)off);
    }

    /// <summary>Position of field <paramref name="id"/> of the table at <paramref name="table"/>, 0 when absent.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Field(ReadOnlySpan<byte> buf, int table, int id)
    {
        if (table == 0) return 0; // an absent sub-table: every field reads as absent
        int vt = checked(table - BinaryPrimitives.ReadInt32LittleEndian(buf.Slice(table)));
        int vtSize = BinaryPrimitives.ReadUInt16LittleEndian(buf.Slice(vt));
        int slot = 4 + 2 * id;
        if (slot >= vtSize) return 0;
        int off = BinaryPrimitives.ReadUInt16LittleEndian(buf.Slice(vt + slot));
        return off == 0 ? 0 : table + off;
    }

    /// <summary>A scalar at <paramref name="pos"/> (little-endian, unaligned is fine).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Read<T>(ReadOnlySpan<byte> buf, int pos) where T : unmanaged => MemoryMarshal.Read<T>(buf.Slice(pos));

    /// <summary>Field <paramref name="id"/> as a scalar, or <paramref name="dflt"/> when absent.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Scalar<T>(ReadOnlySpan<byte> buf, int table, int id, T dflt) where T : unmanaged
    {
        int p = Field(buf, table, id);
        return p == 0 ? dflt : MemoryMarshal.Read<T>(buf.Slice(p));
    }

    /// <summary>Field <paramref name="id"/> as an optional scalar (null when absent).</summary>
    public static T? Optional<T>(ReadOnlySpan<byte> buf, int table, int id) where T : unmanaged
    {
        int p = Field(buf, table, id);
        return p == 0 ? null : MemoryMarshal.Read<T>(buf.Slice(p));
    }

    /// <summary>Field <paramref name="id"/> as a bool (any non-zero byte is true).</summary>
    public static bool Bool(ReadOnlySpan<byte> buf, int table, int id, bool dflt)
    {
        int p = Field(buf, table, id);
        return p == 0 ? dflt : buf[p] != 0;
    }

    /// <summary>Position of the table, string or vector field <paramref name="id"/> refers to, 0 when absent.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Ref(ReadOnlySpan<byte> buf, int table, int id)
    {
        int p = Field(buf, table, id);
        return p == 0 ? 0 : Indirect(buf, p);
    }

    /// <summary>The bytes of the string at <paramref name="pos"/> (its length prefix), without the terminating 0.</summary>
    public static ReadOnlySpan<byte> StringAt(ReadOnlySpan<byte> buf, int pos)
    {
        int n = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(buf.Slice(pos)));
        return buf.Slice(pos + 4, n);
    }

    /// <summary>The UTF-8 bytes of string field <paramref name="id"/> (empty when absent).</summary>
    public static ReadOnlySpan<byte> String(ReadOnlySpan<byte> buf, int table, int id)
    {
        int p = Ref(buf, table, id);
        return p == 0 ? default : StringAt(buf, p);
    }

    /// <summary>Elements of the vector at <paramref name="pos"/>.</summary>
    public static int VectorLength(ReadOnlySpan<byte> buf, int pos)
        => checked((int)BinaryPrimitives.ReadUInt32LittleEndian(buf.Slice(pos)));

    /// <summary>Vector field <paramref name="id"/> of scalars, enums or structs as a span over the buffer (empty when absent).</summary>
    public static ReadOnlySpan<T> Vector<T>(ReadOnlySpan<byte> buf, int table, int id) where T : unmanaged
    {
        int p = Ref(buf, table, id);
        if (p == 0) return default;
        int n = VectorLength(buf, p);
        return MemoryMarshal.Cast<byte, T>(buf.Slice(p + 4, checked(n * Unsafe.SizeOf<T>())));
    }

    /// <summary>Vector field <paramref name="id"/>'s position and length (0, 0 when absent).</summary>
    public static int VectorOf(ReadOnlySpan<byte> buf, int table, int id, out int length)
    {
        int p = Ref(buf, table, id);
        length = p == 0 ? 0 : VectorLength(buf, p);
        return p;
    }

    /// <summary>A struct stored inline at <paramref name="pos"/> (copied).</summary>
    public static T Struct<T>(ReadOnlySpan<byte> buf, int pos) where T : unmanaged
        => MemoryMarshal.Read<T>(buf.Slice(pos, Unsafe.SizeOf<T>()));

    // ---- in place: writing fields of a FlatBuffer that already exists (a duplex request in its
    // frame). Only what is present in the buffer can change; every write is bounds-checked.

    /// <summary>
    /// Overwrites scalar (or struct) field <paramref name="id"/> of the table at <paramref name="table"/>
    /// in place. False when the field is not in the buffer (a default is not stored, and FlatBuffers
    /// cannot grow a table in place); the buffer is unchanged then.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryMutate<T>(Span<byte> buf, int table, int id, T value) where T : unmanaged
    {
        int p = Field(buf, table, id);
        if (p == 0) return false;
        MemoryMarshal.Write(buf.Slice(p, Unsafe.SizeOf<T>()), in value);
        return true;
    }

    /// <summary>Vector field <paramref name="id"/> of scalars, enums or structs as a WRITABLE span over the buffer (empty when absent).</summary>
    public static Span<T> MutableVector<T>(Span<byte> buf, int table, int id) where T : unmanaged
    {
        int p = Ref(buf, table, id);
        if (p == 0) return default;
        int n = VectorLength(buf, p);
        return MemoryMarshal.Cast<byte, T>(buf.Slice(p + 4, checked(n * Unsafe.SizeOf<T>())));
    }

    /// <summary>The UTF-8 bytes of string field <paramref name="id"/>, writable in place (same length; empty when absent).</summary>
    public static Span<byte> MutableString(Span<byte> buf, int table, int id)
    {
        int p = Ref(buf, table, id);
        if (p == 0) return default;
        int n = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(buf.Slice(p)));
        return buf.Slice(p + 4, n);
    }

    /// <summary>Decodes UTF-8 (allocates a string: for convenience, not the hot path).</summary>
    public static string Decode(ReadOnlySpan<byte> utf8) => Encoding.UTF8.GetString(utf8);

    /// <summary>True when the buffer carries <paramref name="identifier"/> (4 ASCII characters) after the root offset.</summary>
    public static bool HasIdentifier(ReadOnlySpan<byte> buf, string identifier)
    {
        if (buf.Length < 8 || identifier.Length != 4) return false;
        for (int i = 0; i < 4; i++)
        {
            if (buf[4 + i] != (byte)identifier[i]) return false;
        }
        return true;
    }
}

/// <summary>A vector of strings in a FlatBuffer (zero-copy: each element is a span of UTF-8 bytes).</summary>
public readonly ref struct StringVector
{
    private readonly ReadOnlySpan<byte> _buf;
    private readonly int _pos;

    /// <summary>Elements.</summary>
    public int Length { get; }

    /// <summary>The vector at <paramref name="pos"/> (0: empty).</summary>
    public StringVector(ReadOnlySpan<byte> buf, int pos, int length)
    {
        _buf = buf;
        _pos = pos;
        Length = length;
    }

    /// <summary>Element <paramref name="i"/>'s UTF-8 bytes.</summary>
    public ReadOnlySpan<byte> this[int i]
    {
        get
        {
            if ((uint)i >= (uint)Length) throw new ArgumentOutOfRangeException(nameof(i), i, $"vector of {Length} strings");
            return Fb.StringAt(_buf, Fb.Indirect(_buf, _pos + 4 + 4 * i));
        }
    }

    /// <summary>Element <paramref name="i"/> decoded (allocates).</summary>
    public string GetString(int i) => Fb.Decode(this[i]);
}
