using System;

namespace Flatlane.FlatBuffers;

/// <summary>
/// Where a table of type <typeparamref name="T"/> was written by an <see cref="FbBuilder"/>: bytes
/// from the end of the buffer (what FlatBuffers calls an offset while building). 0 = none.
/// </summary>
public readonly struct Offset<T> : IEquatable<Offset<T>> where T : allows ref struct
{
    /// <summary>Bytes from the end of the buffer; 0 = not written.</summary>
    public readonly int Value;

    /// <summary>Wraps a raw builder offset.</summary>
    public Offset(int value) => Value = value;

    /// <summary>True when nothing was written.</summary>
    public bool IsNull => Value == 0;

    /// <inheritdoc/>
    public bool Equals(Offset<T> other) => Value == other.Value;
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Offset<T> o && Equals(o);
    /// <inheritdoc/>
    public override int GetHashCode() => Value;
    /// <summary>Equality.</summary>
    public static bool operator ==(Offset<T> a, Offset<T> b) => a.Value == b.Value;
    /// <summary>Inequality.</summary>
    public static bool operator !=(Offset<T> a, Offset<T> b) => a.Value != b.Value;
}

/// <summary>Where a string was written (bytes from the end of the buffer); 0 = none.</summary>
public readonly struct StringOffset : IEquatable<StringOffset>
{
    /// <summary>Bytes from the end of the buffer; 0 = not written.</summary>
    public readonly int Value;

    /// <summary>Wraps a raw builder offset.</summary>
    public StringOffset(int value) => Value = value;

    /// <summary>True when nothing was written.</summary>
    public bool IsNull => Value == 0;

    /// <inheritdoc/>
    public bool Equals(StringOffset other) => Value == other.Value;
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is StringOffset o && Equals(o);
    /// <inheritdoc/>
    public override int GetHashCode() => Value;
    /// <summary>Equality.</summary>
    public static bool operator ==(StringOffset a, StringOffset b) => a.Value == b.Value;
    /// <summary>Inequality.</summary>
    public static bool operator !=(StringOffset a, StringOffset b) => a.Value != b.Value;
}

/// <summary>Where a vector was written (bytes from the end of the buffer); 0 = none.</summary>
public readonly struct VectorOffset : IEquatable<VectorOffset>
{
    /// <summary>Bytes from the end of the buffer; 0 = not written.</summary>
    public readonly int Value;

    /// <summary>Wraps a raw builder offset.</summary>
    public VectorOffset(int value) => Value = value;

    /// <summary>True when nothing was written.</summary>
    public bool IsNull => Value == 0;

    /// <inheritdoc/>
    public bool Equals(VectorOffset other) => Value == other.Value;
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is VectorOffset o && Equals(o);
    /// <inheritdoc/>
    public override int GetHashCode() => Value;
    /// <summary>Equality.</summary>
    public static bool operator ==(VectorOffset a, VectorOffset b) => a.Value == b.Value;
    /// <summary>Inequality.</summary>
    public static bool operator !=(VectorOffset a, VectorOffset b) => a.Value != b.Value;
}
