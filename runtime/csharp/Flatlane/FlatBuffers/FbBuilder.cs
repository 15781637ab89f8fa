using System;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Flatlane.FlatBuffers;

/// <summary>
/// A FlatBuffers builder that writes back to front straight into a target memory block: a frame
/// or slot reserved in shared memory (the generated endpoints do this), or its own pinned buffer.
/// The bytes are standard FlatBuffers (vtables, alignment, file identifier) that flatc's C++ and
/// Python code read. One builder is reused for every message of an endpoint: after the first
/// message nothing is allocated (the vtable scratch grows only for a table with more fields than
/// any before).
/// </summary>
/// <remarks>
/// The target must not move while the builder uses it: shared-memory frames never do; managed
/// memory must be pinned (<see cref="FbBuilder(int)"/> allocates a pinned array). A message that
/// does not fit throws <see cref="FlatlaneException"/> with <see cref="ErrorCode.MessageTooLarge"/>.
/// Little-endian hosts only (x64, arm64), like the rest of the runtime.
/// </remarks>
public sealed unsafe class FbBuilder
{
    /// <summary>
    /// Moves a message that outgrew its target: gets the bytes written so far and how many more
    /// are needed at least, and returns a larger target whose last <c>written.Length</c> bytes
    /// already hold them (it may reuse the old target's memory: copy <paramref name="written"/>
    /// out first). Throws to refuse (the builder's caller sees the exception).
    /// </summary>
    public delegate Span<byte> GrowTarget(ReadOnlySpan<byte> written, int needed);

    private byte* _buf;
    private GrowTarget? _grow;
    private int _cap;
    private int _space;          // index of the first written byte; the message is [_space, _cap)
    private int _minAlign = 1;
    private int[] _vtable = new int[16];
    private int _vtableUsed = -1; // -1: not inside a table
    private int _objectStart;
    private int _vectorCount = -1; // >= 0 inside StartVector
    private readonly byte[]? _owned;

    /// <summary>A builder with no target yet; call <see cref="Reset(Span{byte})"/>.</summary>
    public FbBuilder() { }

    /// <summary>A builder over its own pinned buffer of <paramref name="capacity"/> bytes.</summary>
    public FbBuilder(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _owned = GC.AllocateArray<byte>(capacity, pinned: true);
        Reset();
    }

    /// <summary>Starts a new message in the builder's own buffer (the <see cref="FbBuilder(int)"/> constructor).</summary>
    public void Reset()
    {
        if (_owned is null) throw new InvalidOperationException("this builder has no buffer of its own; call Reset(Span<byte>)");
        fixed (byte* p = _owned) Attach(p, _owned.Length);
        _grow = null;
    }

    /// <summary>
    /// Starts a new message that ends at the end of <paramref name="target"/> and grows towards its
    /// start. The memory must stay where it is until the message is committed (shared memory, or
    /// pinned). For FlatBuffers alignment the end of the target should be 16-byte aligned.
    /// </summary>
    public void Reset(Span<byte> target) => Reset(target, null);

    /// <summary>
    /// As <see cref="Reset(Span{byte})"/>; a message that outgrows the target is moved by
    /// <paramref name="grow"/> instead of failing (a duplex client moves it into a larger frame).
    /// </summary>
    public void Reset(Span<byte> target, GrowTarget? grow)
    {
        Attach((byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(target)), target.Length);
        _grow = grow;
    }

    private void Attach(byte* p, int n)
    {
        _buf = p;
        _cap = n;
        _space = n;
        _minAlign = 1;
        _vtableUsed = -1;
        _vectorCount = -1;
    }

    /// <summary>Bytes written so far (the message size once finished).</summary>
    public int Size => _cap - _space;

    /// <summary>Bytes the target holds.</summary>
    public int Capacity => _cap;

    /// <summary>The bytes written so far: the message after <see cref="Finish"/>.</summary>
    public ReadOnlySpan<byte> WrittenSpan => new(_buf + _space, _cap - _space);

    /// <summary>Largest alignment any element needed so far.</summary>
    public int MinAlign => _minAlign;

    // Called when `need` bytes do not fit below what is written: moves the message into a larger
    // target through the growth hook (offsets count from the end, so they stay valid), or fails.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void NoSpace(int need)
    {
        if (_grow is null)
            throw new FlatlaneException(ErrorCode.MessageTooLarge,
                $"flatlane: FlatBuffers builder: message does not fit its {_cap}-byte buffer (needs more than {Size + need} bytes)");
        int size = Size;
        Span<byte> target = _grow(WrittenSpan, need - _space);
        if (target.Length < size + need - _space)
            throw new InvalidOperationException($"flatlane: FlatBuffers builder: the growth hook returned {target.Length} bytes, fewer than {size + need - _space}");
        _buf = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(target));
        _cap = target.Length;
        _space = _cap - size;
    }

    /// <summary>Pads so that after <paramref name="additional"/> more bytes an element of <paramref name="size"/> bytes is aligned.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Prep(int size, int additional)
    {
        if (size > _minAlign) _minAlign = size;
        // Locals, not fields, across the padding loop: a store through _buf may alias any field
        // as far as the JIT knows, so field accesses there would each go through memory.
        int space = _space;
        int pad = (-(_cap - space + additional)) & (size - 1);
        int need = pad + additional + size;
        if (need > space)
        {
            NoSpace(need);
            space = _space;
        }
        if (pad == 0) return;
        byte* p = _buf;
        for (int i = 0; i < pad; i++) p[--space] = 0;
        _space = space;
    }

    /// <summary>Reserves <paramref name="n"/> bytes below what is written (already aligned by <see cref="Prep"/>) and returns them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Span<byte> Claim(int n)
    {
        if (n > _space) NoSpace(n);
        _space -= n;
        return new Span<byte>(_buf + _space, n);
    }

    /// <summary>Writes an unmanaged value (a scalar or a blittable struct) below, unaligned: call <see cref="Prep"/> first.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Put<T>(T value) where T : unmanaged
    {
        int space = _space - sizeof(T);
        if (space < 0)
        {
            NoSpace(sizeof(T));
            space = _space - sizeof(T);
        }
        _space = space;
        Unsafe.WriteUnaligned(_buf + space, value);
    }

    /// <summary>Aligns and writes a scalar.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Add<T>(T value) where T : unmanaged
    {
        Prep(sizeof(T), 0);
        Put(value);
    }

    /// <summary>Writes a uoffset pointing at <paramref name="offset"/> (an earlier object of this message).</summary>
    public void AddOffset(int offset)
    {
        Prep(4, 0);
        int size = Size;
        if (offset <= 0 || offset > size) ThrowNotAnObject(offset);
        Put((uint)(size - offset + 4));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowNotAnObject(int offset) =>
        throw new ArgumentException($"offset {offset} is not an object of this message (size {Size})", "offset");

    // ---- tables ----

    /// <summary>Starts a table with vtable slots for field ids 0..<paramref name="fieldCount"/>-1.</summary>
    public void StartTable(int fieldCount)
    {
        if (_vtableUsed >= 0 || _vectorCount >= 0) ThrowNested();
        if (_vtable.Length < fieldCount) _vtable = new int[Math.Max(fieldCount, _vtable.Length * 2)];
        _vtable.AsSpan(0, fieldCount).Clear();
        _vtableUsed = fieldCount;
        _objectStart = Size;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowNested() => throw new InvalidOperationException(_vtableUsed >= 0
        ? "FlatBuffers: a table is already being built (tables nest by offset: build the inner one first)"
        : "FlatBuffers: a vector is being built");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Slot(int id)
    {
        int[] vt = _vtable;
        if ((uint)id >= (uint)_vtableUsed || (uint)id >= (uint)vt.Length) ThrowBadField(id);
        vt[id] = Size;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowBadField(int id) =>
        throw new InvalidOperationException($"FlatBuffers: field id {id} outside the table being built");

    /// <summary>A scalar field: written unless it equals its default (as flatc's builders do).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void AddField<T>(int id, T value, T defaultValue) where T : unmanaged, IEquatable<T>
    {
        if (value.Equals(defaultValue)) return;
        AddFieldAlways(id, value);
    }

    /// <summary>A scalar field, written even when it equals the default (optional scalars).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void AddFieldAlways<T>(int id, T value) where T : unmanaged
    {
        Add(value);
        Slot(id);
    }

    /// <summary>A struct field, stored inline in the table.</summary>
    public void AddStructField<T>(int id, in T value, int align) where T : unmanaged
    {
        Prep(align, sizeof(T));
        Put(value);
        Slot(id);
    }

    /// <summary>A field referring to a string, vector or table of this message; 0 = absent.</summary>
    public void AddOffsetField(int id, int offset)
    {
        if (offset == 0) return;
        AddOffset(offset);
        Slot(id);
    }

    /// <summary>True when field <paramref name="id"/> of the table being built was written.</summary>
    public bool IsSet(int id) => (uint)id < (uint)_vtableUsed && _vtable[id] != 0;

    /// <summary>Writes the vtable and ends the table; returns its offset.</summary>
    public int EndTable()
    {
        if (_vtableUsed < 0) ThrowNoTable();
        Add(0); // the soffset to the vtable, patched below
        int objectOffset = Size;
        int[] vtable = _vtable;
        int n = Math.Min(_vtableUsed, vtable.Length);
        while (n > 0 && vtable[n - 1] == 0) n--;
        int vtableBytes = 4 + 2 * n;
        int tableBytes = objectOffset - _objectStart;
        if (tableBytes > ushort.MaxValue) ThrowTableTooLarge(tableBytes);
        // The vtable in one claim, written through a local pointer (see Prep). The soffset above
        // left the position 4-aligned, so the 2-aligned vtable needs no padding.
        if (vtableBytes > _space) NoSpace(vtableBytes);
        int space = _space - vtableBytes;
        _space = space;
        // (Unaligned writes: only the position relative to the target's end is known to be aligned.)
        byte* v = _buf + space;
        Unsafe.WriteUnaligned(v, (ushort)vtableBytes);
        Unsafe.WriteUnaligned(v + 2, (ushort)tableBytes);
        for (int i = 0; i < n; i++) Unsafe.WriteUnaligned(v + 4 + 2 * i, (ushort)(vtable[i] != 0 ? objectOffset - vtable[i] : 0));
        // soffset at the table start: table position - vtable position (the vtable lies before it).
        Unsafe.WriteUnaligned(_buf + (_cap - objectOffset), (_cap - space) - objectOffset);
        _vtableUsed = -1;
        return objectOffset;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowNoTable() => throw new InvalidOperationException("FlatBuffers: EndTable without StartTable");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowTableTooLarge(int bytes) =>
        throw new FlatlaneException(ErrorCode.InvalidArgument, $"flatlane: FlatBuffers table of {bytes} bytes (at most 65535 inline)");

    // ---- strings and vectors ----

    /// <summary>A UTF-8 string from UTF-16 text (encoded straight into the buffer).</summary>
    public StringOffset CreateString(ReadOnlySpan<char> text)
    {
        NotNested();
        int n = Encoding.UTF8.GetByteCount(text);
        Prep(4, n + 1);
        Put((byte)0);
        Encoding.UTF8.GetBytes(text, Claim(n));
        Put((uint)n);
        return new StringOffset(Size);
    }

    /// <summary>A string from UTF-8 bytes (not checked to be UTF-8, like flatc's builders).</summary>
    public StringOffset CreateString(ReadOnlySpan<byte> utf8)
    {
        NotNested();
        Prep(4, utf8.Length + 1);
        Put((byte)0);
        utf8.CopyTo(Claim(utf8.Length));
        Put((uint)utf8.Length);
        return new StringOffset(Size);
    }

    /// <summary>A vector of scalars, enums or structs (<paramref name="align"/>: the element's alignment).</summary>
    public VectorOffset CreateVector<T>(ReadOnlySpan<T> items, int align) where T : unmanaged
    {
        NotNested();
        int bytes = checked(items.Length * sizeof(T));
        Prep(4, bytes);
        Prep(Math.Max(align, 1), bytes);
        MemoryMarshal.AsBytes(items).CopyTo(Claim(bytes));
        Put((uint)items.Length);
        return new VectorOffset(Size);
    }

    /// <summary>
    /// A vector of <paramref name="count"/> scalars, enums or structs whose elements the caller
    /// writes afterwards through <paramref name="items"/>, in place in the target (an image or a
    /// sample block goes straight into shared memory, as flatc's <c>CreateUninitializedVector</c>).
    /// The bytes are not cleared. <paramref name="items"/> stays valid until the builder is reset
    /// or the message is published; fill it before that.
    /// </summary>
    public VectorOffset CreateUninitializedVector<T>(int count, int align, out Span<T> items) where T : unmanaged
    {
        NotNested();
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        int bytes = checked(count * sizeof(T));
        Prep(4, bytes);
        Prep(Math.Max(align, 1), bytes);
        items = MemoryMarshal.Cast<byte, T>(Claim(bytes));
        Put((uint)count);
        return new VectorOffset(Size);
    }

    /// <summary>A vector of scalars (aligned to the element size).</summary>
    public VectorOffset CreateVector<T>(ReadOnlySpan<T> items) where T : unmanaged => CreateVector(items, sizeof(T));

    /// <summary>A vector of tables.</summary>
    public VectorOffset CreateVector<T>(ReadOnlySpan<Offset<T>> items) where T : allows ref struct
        => CreateOffsetVector(MemoryMarshal.Cast<Offset<T>, int>(items));

    /// <summary>A vector of strings.</summary>
    public VectorOffset CreateVector(ReadOnlySpan<StringOffset> items)
        => CreateOffsetVector(MemoryMarshal.Cast<StringOffset, int>(items));

    /// <summary>A vector of offsets of objects of this message (the members of a vector of unions, which may differ in type).</summary>
    public VectorOffset CreateOffsetVector(ReadOnlySpan<int> offsets)
    {
        NotNested();
        Prep(4, 4 * offsets.Length);
        for (int i = offsets.Length - 1; i >= 0; i--) AddOffset(offsets[i]);
        Put((uint)offsets.Length);
        return new VectorOffset(Size);
    }

    /// <summary>
    /// Starts a vector of <paramref name="count"/> elements to be added back to front (last element
    /// first) with <see cref="Add{T}"/> / <see cref="AddOffset"/>; then <see cref="EndVector"/>.
    /// </summary>
    public void StartVector(int elementSize, int count, int align)
    {
        NotNested();
        Prep(4, checked(elementSize * count));
        Prep(Math.Max(align, 1), elementSize * count);
        _vectorCount = count;
    }

    /// <summary>Ends the vector started by <see cref="StartVector"/>.</summary>
    public VectorOffset EndVector()
    {
        if (_vectorCount < 0) throw new InvalidOperationException("FlatBuffers: EndVector without StartVector");
        Put((uint)_vectorCount);
        _vectorCount = -1;
        return new VectorOffset(Size);
    }

    /// <summary>A struct stored on its own (a union member that is a struct); returns its offset.</summary>
    public int CreateStruct<T>(in T value, int align) where T : unmanaged
    {
        NotNested();
        Prep(align, sizeof(T));
        Put(value);
        return Size;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void NotNested()
    {
        if (_vtableUsed >= 0) ThrowInsideTable();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowInsideTable() =>
        throw new InvalidOperationException("FlatBuffers: strings, vectors and tables must be built before the table that refers to them (StartTable was called)");

    /// <summary>
    /// Finishes the message: the root offset (and the file identifier, 4 ASCII characters, when
    /// given). The message is <see cref="WrittenSpan"/>, the last <see cref="Size"/> bytes of the target.
    /// </summary>
    public void Finish(int root, string? fileIdentifier = null)
    {
        NotNested();
        if (_vectorCount >= 0) ThrowVectorOpen();
        bool ident = !string.IsNullOrEmpty(fileIdentifier);
        if (ident && fileIdentifier!.Length != 4) ThrowBadIdentifier();
        Prep(_minAlign, ident ? 8 : 4);
        if (ident)
        {
            for (int i = 3; i >= 0; i--) Put((byte)fileIdentifier![i]);
        }
        AddOffset(root);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowVectorOpen() => throw new InvalidOperationException("FlatBuffers: a vector is still being built");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowBadIdentifier() => throw new ArgumentException("a file identifier has 4 characters", "fileIdentifier");
}
