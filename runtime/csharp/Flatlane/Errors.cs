using System;

namespace Flatlane;

/// <summary>
/// Error kinds shared by every Flatlane API. The numeric values are those of the C++ runtime's
/// <c>flatlane::Errc</c> and of the C ABI's <c>flatlane_errc</c>, one for one.
/// </summary>
public enum ErrorCode
{
    /// <summary>No error.</summary>
    Ok = 0,
    /// <summary>No segment with that name.</summary>
    NotFound = 1,
    /// <summary>The object exists but is not a Flatlane segment (bad magic).</summary>
    NotFlatlane = 2,
    /// <summary>Protocol version differs.</summary>
    IncompatibleVersion = 3,
    /// <summary>Same version, different layout hash (different build/ABI).</summary>
    LayoutMismatch = 4,
    /// <summary>Message type identity (name, hash) differs.</summary>
    TypeMismatch = 5,
    /// <summary>Segment smaller than its header says.</summary>
    Truncated = 6,
    /// <summary>Open/create refused by the OS.</summary>
    PermissionDenied = 7,
    /// <summary>Create: a live segment of that name exists.</summary>
    AlreadyExists = 8,
    /// <summary>The role (writer/reader) is held by a live process.</summary>
    Busy = 9,
    /// <summary>/dev/shm cannot hold the segment.</summary>
    NoSpace = 10,
    /// <summary>Bad name, size, option or call sequence.</summary>
    InvalidArgument = 11,
    /// <summary>Bigger than the frame or message limit.</summary>
    MessageTooLarge = 12,
    /// <summary>The wait ran out.</summary>
    Timeout = 13,
    /// <summary>The peer process died.</summary>
    PeerDead = 14,
    /// <summary>The peer detached cleanly.</summary>
    PeerClosed = 15,
    /// <summary>This endpoint was closed.</summary>
    Closed = 16,
    /// <summary>Shared memory holds values that violate the protocol.</summary>
    Corrupt = 17,
    /// <summary>Other OS error (errno in the message).</summary>
    System = 18,
}

/// <summary>
/// A Flatlane call failed. <see cref="ErrorCode"/> says what kind of failure; the message names
/// the operation, the channel and the sizes involved.
/// </summary>
public class FlatlaneException : Exception
{
    /// <summary>The error kind.</summary>
    public ErrorCode ErrorCode { get; }

    /// <summary>The channel the failing endpoint belongs to, when known.</summary>
    public string? Channel { get; }

    /// <summary>Creates an exception of the given kind.</summary>
    public FlatlaneException(ErrorCode code, string message, string? channel = null)
        : base(message)
    {
        ErrorCode = code;
        Channel = channel;
    }

    /// <summary>Creates an exception of kind <see cref="ErrorCode.System"/>.</summary>
    public FlatlaneException() : this(ErrorCode.System, "flatlane: error") { }

    /// <summary>Creates an exception of kind <see cref="ErrorCode.System"/>.</summary>
    public FlatlaneException(string message) : this(ErrorCode.System, message) { }

    /// <summary>Creates an exception of kind <see cref="ErrorCode.System"/>.</summary>
    public FlatlaneException(string message, Exception inner) : base(message, inner) { ErrorCode = ErrorCode.System; }

    // Builds the exception for a native failure from the calling thread's last-error text, which
    // the C ABI formats with operation, channel and sizes. Only error paths come here.
    internal static FlatlaneException FromNative(int code, string? channel)
    {
        var kind = (ErrorCode)code;
        string text = Native.LastErrorMessage();
        if (string.IsNullOrEmpty(text) || Native.flatlane_last_error_code() != code)
            text = $"flatlane: {Native.ErrcName(code)}" + (channel is null ? "" : $" (channel '{channel}')");
        return kind switch
        {
            ErrorCode.Timeout => new FlatlaneTimeoutException(text, channel),
            ErrorCode.PeerDead or ErrorCode.PeerClosed => new FlatlanePeerGoneException(kind, text, channel),
            _ => new FlatlaneException(kind, text, channel),
        };
    }
}

/// <summary>A wait ran out (<see cref="ErrorCode.Timeout"/>): nothing was consumed or published.</summary>
public sealed class FlatlaneTimeoutException : FlatlaneException
{
    /// <summary>Creates a timeout exception.</summary>
    public FlatlaneTimeoutException(string message, string? channel = null) : base(ErrorCode.Timeout, message, channel) { }
}

/// <summary>
/// The peer is gone: it died (<see cref="ErrorCode.PeerDead"/>, detected within the liveness
/// interval) or detached cleanly (<see cref="ErrorCode.PeerClosed"/>). A reader only sees this
/// after it has read everything the writer committed.
/// </summary>
public sealed class FlatlanePeerGoneException : FlatlaneException
{
    /// <summary>Creates a peer-gone exception.</summary>
    public FlatlanePeerGoneException(ErrorCode code, string message, string? channel = null) : base(code, message, channel) { }
}
