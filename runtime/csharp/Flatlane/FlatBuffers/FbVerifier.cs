using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Flatlane.FlatBuffers;

/// <summary>
/// Checks a FlatBuffer before it is read, with the rules of flatc's C++ verifier (with alignment
/// checks on): every offset, vtable, string (length and terminating 0), vector and field inside
/// the buffer and aligned, required fields present, nesting depth and table count bounded. The
/// generated <c>Verify</c> methods drive it field by field. No allocation.
/// </summary>
public ref struct FbVerifier
{
    private readonly ReadOnlySpan<byte> _buf;
    private int _depth;
    private int _tables;

    /// <summary>Deepest nesting of tables accepted (flatc's default).</summary>
    public const int MaxDepth = 64;
    /// <summary>Most tables accepted in one buffer (flatc's default).</summary>
    public const int MaxTables = 1000000;

    /// <summary>A verifier over <paramref name="buf"/>.</summary>
    public FbVerifier(ReadOnlySpan<byte> buf)
    {
        _buf = buf;
        _depth = 0;
        _tables = 0;
    }

    // Reads after the caller's own bounds check (InBounds): no second check, no exception path,
    // which lets the small methods below inline into the generated Verify. Little-endian hosts,
    // like the rest of the runtime.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly T At<T>(long pos) where T : unmanaged =>
        Unsafe.ReadUnaligned<T>(ref Unsafe.Add(ref MemoryMarshal.GetReference(_buf), (nint)pos));

    /// <summary>The buffer being verified.</summary>
    public readonly ReadOnlySpan<byte> Buffer => _buf;

    /// <summary><paramref name="n"/> bytes at <paramref name="pos"/> lie inside the buffer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool InBounds(long pos, long n) => pos >= 0 && n >= 0 && pos + n <= _buf.Length;

    /// <summary><paramref name="pos"/> is aligned to <paramref name="align"/> relative to the buffer start.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Aligned(int pos, int align) => (pos & (align - 1)) == 0;

    /// <summary>
    /// The buffer starts with a valid root offset (and <paramref name="identifier"/> when not null);
    /// returns the root table's position in <paramref name="root"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool VerifyRoot(string? identifier, out int root)
    {
        root = 0;
        if (_buf.Length < 4 || _buf.Length > int.MaxValue - 8) return false;
        if (identifier is not null && !Fb.HasIdentifier(_buf, identifier)) return false;
        return VerifyOffsetAt(0, out root);
    }

    /// <summary>The uoffset stored at <paramref name="pos"/> is aligned, in bounds and points inside the buffer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool VerifyOffsetAt(int pos, out int target)
    {
        target = 0;
        if (!Aligned(pos, 4) || !InBounds(pos, 4)) return false;
        uint o = At<uint>(pos);
        if (o == 0 || o > int.MaxValue) return false;
        long t = (long)pos + o;
        if (!InBounds(t, 1)) return false;
        target = (int)t;
        return true;
    }

    /// <summary>
    /// Starts verifying the table at <paramref name="table"/>: its vtable is in bounds and aligned,
    /// and the depth and table limits hold. Pair with <see cref="EndTable"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool StartTable(int table)
    {
        if (++_depth > MaxDepth || ++_tables > MaxTables) return false;
        if (!Aligned(table, 4) || !InBounds(table, 4)) return false;
        long vt = (long)table - At<int>(table);
        if (!InBounds(vt, 4) || !Aligned((int)vt, 2)) return false;
        int vsize = At<ushort>(vt);
        return (vsize & 1) == 0 && vsize >= 4 && InBounds(vt, vsize);
    }

    // Where field `id` of the table at `table` is stored: 0 when absent, -1 when the table or its
    // vtable does not lie in the buffer (StartTable has normally checked both already; checked
    // again here with compares rather than Slice, so that nothing throws and this inlines).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly int FieldAt(int table, int id)
    {
        if (!InBounds(table, 4)) return -1;
        long vt = (long)table - At<int>(table);
        if (!InBounds(vt, 4)) return -1;
        int slot = 4 + 2 * id;
        if (slot >= At<ushort>(vt)) return 0;
        if (!InBounds(vt + slot, 2)) return -1;
        int off = At<ushort>(vt + slot);
        return off == 0 ? 0 : table + off;
    }

    /// <summary>Ends a table started by <see cref="StartTable"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool EndTable()
    {
        _depth--;
        return true;
    }

    /// <summary>A scalar or struct field of <paramref name="size"/> bytes is absent or in bounds and aligned; <paramref name="required"/>: must be present.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool Field(int table, int id, int size, int align, bool required = false)
    {
        int p = FieldAt(table, id);
        if (p < 0) return false;
        if (p == 0) return !required;
        return InBounds(p, size) && Aligned(p, align);
    }

    /// <summary>An offset field: absent (<paramref name="target"/> = 0; false if <paramref name="required"/>) or a valid offset.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool OffsetField(int table, int id, bool required, out int target)
    {
        target = 0;
        int p = FieldAt(table, id);
        if (p < 0) return false;
        if (p == 0) return !required;
        return VerifyOffsetAt(p, out target);
    }

    /// <summary>A string at <paramref name="pos"/>: length in bounds, 0-terminated.</summary>
    public readonly bool StringAt(int pos)
    {
        if (!VectorAt(pos, 1, out int n)) return false;
        long end = (long)pos + 4 + n;
        return InBounds(end, 1) && _buf[(int)end] == 0;
    }

    /// <summary>A vector at <paramref name="pos"/> of <paramref name="length"/> elements of <paramref name="elementSize"/> bytes, in bounds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool VectorAt(int pos, int elementSize, out int length)
    {
        length = 0;
        if (!Aligned(pos, 4) || !InBounds(pos, 4)) return false;
        uint n = At<uint>(pos);
        if (n >= int.MaxValue / (uint)Math.Max(elementSize, 1)) return false;
        if (!InBounds((long)pos + 4, (long)n * elementSize)) return false;
        length = (int)n;
        return true;
    }

    /// <summary>A string field.</summary>
    public readonly bool StringField(int table, int id, bool required)
        => OffsetField(table, id, required, out int s) && (s == 0 || StringAt(s));

    /// <summary>A vector field of scalars, enums or structs (<paramref name="align"/>: the element alignment).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool VectorField(int table, int id, int elementSize, int align, bool required)
    {
        if (!OffsetField(table, id, required, out int v)) return false;
        if (v == 0) return true;
        // Like flatc's verifier: the length prefix must be 4-aligned; elements are read unaligned-safe.
        _ = align;
        return VectorAt(v, elementSize, out _);
    }

    /// <summary>A vector field of strings.</summary>
    public readonly bool StringVectorField(int table, int id, bool required)
    {
        if (!OffsetField(table, id, required, out int v)) return false;
        if (v == 0) return true;
        if (!VectorAt(v, 4, out int n)) return false;
        for (int i = 0; i < n; i++)
        {
            if (!VerifyOffsetAt(v + 4 + 4 * i, out int s) || !StringAt(s)) return false;
        }
        return true;
    }

    /// <summary>
    /// A vector field of tables: its position and length, to verify each element with
    /// <see cref="VerifyOffsetAt"/> and the table's Verify (0, 0 when absent).
    /// </summary>
    public readonly bool TableVectorField(int table, int id, bool required, out int pos, out int length)
    {
        length = 0;
        if (!OffsetField(table, id, required, out pos)) return false;
        return pos == 0 || VectorAt(pos, 4, out length);
    }

    /// <summary>A struct at <paramref name="pos"/> (a union member stored on its own).</summary>
    public readonly bool StructAt(int pos, int size, int align) => InBounds(pos, size) && Aligned(pos, align);
}
