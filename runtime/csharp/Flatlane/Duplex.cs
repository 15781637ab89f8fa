using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;

namespace Flatlane;

// Mirrors of the duplex structs of runtime/c/include/flatlane/flatlane_c.h, field for field.

[StructLayout(LayoutKind.Sequential)]
internal struct NativeDuplexStats
{
    public ulong Requests;
    public ulong Responses;
    public ulong Rejected;
    public ulong Bytes;
    public ulong Outstanding;
    public ulong OccupancyBytes;
    public ulong CapacityBytes;
    public uint MaxFramePayload;
    public uint Reserved0;
}

[StructLayout(LayoutKind.Sequential)]
internal struct NativeDuplexResponse
{
    public IntPtr Data;
    public ulong Size;
    public ulong Seq;
    public ulong Token;
    public int Rejected;
    public int Reserved0;
}

[StructLayout(LayoutKind.Sequential)]
internal struct NativeDuplexRequest
{
    public IntPtr Payload;
    public ulong Capacity;
    public ulong RequestOffset;
    public ulong RequestSize;
    public ulong Seq;
    public ulong Token;
}

internal static unsafe partial class Native
{
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int flatlane_duplex_client_open(string name, NativeOptions* opts, out IntPtr handle);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial uint flatlane_duplex_client_max_frame_payload(IntPtr c);

    [LibraryImport(Library, EntryPoint = "flatlane_duplex_client_reserve")]
    private static partial int flatlane_duplex_client_reserve_transition(IntPtr c, ulong n, long timeoutNs, byte** outPtr);

    // Out of line, so that its P/Invoke frame is not built by every caller (see Native.cs).
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int flatlane_duplex_client_reserve(IntPtr c, ulong n, long timeoutNs, byte** outPtr) => flatlane_duplex_client_reserve_transition(c, n, timeoutNs, outPtr);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial int flatlane_duplex_client_commit(IntPtr c, ulong used, ulong* outSeq);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial int flatlane_duplex_client_commit_tail(IntPtr c, ulong used, ulong* outSeq);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial void flatlane_duplex_client_abort(IntPtr c);

    [LibraryImport(Library, EntryPoint = "flatlane_duplex_client_receive")]
    private static partial int flatlane_duplex_client_receive_transition(IntPtr c, long timeoutNs, NativeDuplexResponse* response);

    // Out of line, so that its P/Invoke frame is not built by every caller (see Native.cs).
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int flatlane_duplex_client_receive(IntPtr c, long timeoutNs, NativeDuplexResponse* response) => flatlane_duplex_client_receive_transition(c, timeoutNs, response);

    // Zero-timeout receives cannot wait: tried first without the GC transition.
    [LibraryImport(Library, EntryPoint = "flatlane_duplex_client_receive")]
    [SuppressGCTransition]
    public static partial int duplex_client_receive_poll(IntPtr c, long zeroTimeout, NativeDuplexResponse* response);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial int flatlane_duplex_client_release(IntPtr c, ulong token);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial ulong flatlane_duplex_client_outstanding(IntPtr c);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial uint flatlane_duplex_client_held(IntPtr c);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial void flatlane_duplex_client_stats(IntPtr c, NativeDuplexStats* stats);

    [LibraryImport(Library)]
    public static partial int flatlane_duplex_client_peer_attached(IntPtr c);

    [LibraryImport(Library)]
    public static partial void flatlane_duplex_client_close(IntPtr c);

    [LibraryImport(Library)]
    public static partial void flatlane_duplex_client_destroy(IntPtr c);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int flatlane_duplex_server_open(string name, NativeOptions* opts, out IntPtr handle);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial uint flatlane_duplex_server_max_frame_payload(IntPtr s);

    [LibraryImport(Library, EntryPoint = "flatlane_duplex_server_receive")]
    private static partial int flatlane_duplex_server_receive_transition(IntPtr s, long timeoutNs, NativeDuplexRequest* request);

    // Out of line, so that its P/Invoke frame is not built by every caller (see Native.cs).
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int flatlane_duplex_server_receive(IntPtr s, long timeoutNs, NativeDuplexRequest* request) => flatlane_duplex_server_receive_transition(s, timeoutNs, request);

    [LibraryImport(Library, EntryPoint = "flatlane_duplex_server_receive")]
    [SuppressGCTransition]
    public static partial int duplex_server_receive_poll(IntPtr s, long zeroTimeout, NativeDuplexRequest* request);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial int flatlane_duplex_server_respond(IntPtr s, ulong token, ulong offset, ulong size);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial int flatlane_duplex_server_reject(IntPtr s, ulong token);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial ulong flatlane_duplex_server_outstanding(IntPtr s);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial void flatlane_duplex_server_stats(IntPtr s, NativeDuplexStats* stats);

    [LibraryImport(Library)]
    public static partial int flatlane_duplex_server_peer_attached(IntPtr s);

    [LibraryImport(Library)]
    public static partial void flatlane_duplex_server_close(IntPtr s);

    [LibraryImport(Library)]
    public static partial void flatlane_duplex_server_destroy(IntPtr s);
}

/// <summary>Counters of a duplex endpoint.</summary>
/// <param name="Requests">Client: requests sent; server: requests received.</param>
/// <param name="Responses">Client: responses received; server: responses sent (rejections included).</param>
/// <param name="Rejected">Client: responses that came back rejected; server: requests it rejected.</param>
/// <param name="Bytes">Client: request bytes sent; server: response bytes sent.</param>
/// <param name="Outstanding">Client: sent, response not received yet; server: received, not answered.</param>
/// <param name="OccupancyBytes">Ring bytes in use.</param>
/// <param name="CapacityBytes">Ring capacity.</param>
/// <param name="MaxFramePayload">Largest reservation.</param>
public readonly record struct DuplexStats(
    ulong Requests, ulong Responses, ulong Rejected, ulong Bytes, ulong Outstanding, ulong OccupancyBytes,
    ulong CapacityBytes, int MaxFramePayload)
{
    internal static DuplexStats From(in NativeDuplexStats s) => new(s.Requests, s.Responses, s.Rejected, s.Bytes,
        s.Outstanding, s.OccupancyBytes, s.CapacityBytes, (int)s.MaxFramePayload);
}

/// <summary>
/// A response held by a <see cref="DuplexClient"/>: the request's own frame, as the server left it
/// (zero-copy, writable). Held until <see cref="Dispose"/> (from any thread), which gives the
/// frame's space back to the ring. Copies share one release; a second release is harmless.
/// </summary>
public readonly unsafe struct DuplexResponse : IDisposable
{
    private readonly DuplexClient? _client;
    private readonly byte* _data;
    private readonly int _length;
    private readonly ulong _token;

    /// <summary>The seq that Commit returned for the request.</summary>
    public ulong Seq { get; }

    /// <summary>The server rejected the request (or died holding it); <see cref="Data"/> is empty.</summary>
    public bool Rejected { get; }

    internal DuplexResponse(DuplexClient client, in NativeDuplexResponse r)
    {
        _client = client;
        _data = (byte*)r.Data;
        _length = (int)r.Size;
        _token = r.Token;
        Seq = r.Seq;
        Rejected = r.Rejected != 0;
    }

    /// <summary>The answer bytes in the frame. Writable while held (e.g. to reuse them).</summary>
    public Span<byte> Data => new(_data, _length);

    /// <summary>Answer length.</summary>
    public int Length => _length;

    /// <summary>False for <c>default(DuplexResponse)</c>.</summary>
    public bool IsValid => _client is not null;

    /// <summary>Releases the frame (from any thread).</summary>
    public void Dispose() => _client?.Release(_token);
}

/// <summary>
/// A request held by a <see cref="DuplexServer"/>: a writable view of the client's frame. Modify
/// <see cref="Data"/> in place and <see cref="Respond()"/> (the same bytes go back), answer with
/// another range of <see cref="Frame"/>, or <see cref="Reject"/>. <see cref="Dispose"/> rejects a
/// request that was not answered (a client never waits for a dropped request) and is a no-op
/// after an answer. Must not be used after it was answered: the frame is the client's again.
/// </summary>
public readonly unsafe struct DuplexRequest : IDisposable
{
    private readonly DuplexServer? _server;
    private readonly byte* _payload;
    private readonly int _capacity;
    private readonly int _offset;
    private readonly int _size;
    internal readonly ulong Token;

    /// <summary>The client's sequence number for this request.</summary>
    public ulong Seq { get; }

    internal DuplexRequest(DuplexServer server, in NativeDuplexRequest r)
    {
        _server = server;
        _payload = (byte*)r.Payload;
        _capacity = (int)r.Capacity;
        _offset = (int)r.RequestOffset;
        _size = (int)r.RequestSize;
        Token = r.Token;
        Seq = r.Seq;
    }

    /// <summary>The request bytes, writable in place.</summary>
    public Span<byte> Data => new(_payload + _offset, _size);

    /// <summary>The whole frame payload (the client's reservation): an answer may use all of it.</summary>
    public Span<byte> Frame => new(_payload, _capacity);

    /// <summary>Request length.</summary>
    public int Length => _size;

    /// <summary>Where the request starts within <see cref="Frame"/>.</summary>
    public int RequestOffset => _offset;

    /// <summary>Frame payload size.</summary>
    public int Capacity => _capacity;

    /// <summary>False for <c>default(DuplexRequest)</c>.</summary>
    public bool IsValid => _server is not null;

    /// <summary>Answers with the bytes now at the request's place.</summary>
    public void Respond() => Server.Respond(this);

    /// <summary>Answers with <paramref name="size"/> bytes at <paramref name="offset"/> within <see cref="Frame"/>.</summary>
    public void Respond(int offset, int size) => Server.Respond(this, offset, size);

    /// <summary>Answers rejected.</summary>
    public void Reject() => Server.Reject(this);

    /// <summary>Rejects the request if it is still unanswered (from any thread).</summary>
    public void Dispose() => _server?.Release(Token);

    private DuplexServer Server => _server ?? throw new InvalidOperationException("flatlane: default(DuplexRequest)");
}

/// <summary>
/// The client of an in-place duplex channel (kind 3, docs/PROTOCOL.md section 16): reserves a
/// frame, writes a request into it and commits; the server modifies the request where it lies
/// and the client receives the same frame back. Several requests may be outstanding; responses
/// come in request order (<see cref="DuplexResponse.Seq"/> correlates them) and may be held and
/// released in any order. A frame's space returns to the ring only when its response is released,
/// so a ring full of outstanding requests or held responses makes <see cref="Reserve"/> fail at
/// once with a timeout: receive and release first.
/// <para>Options: <see cref="ChannelOptions"/> (ring capacity, max frame payload, mode, wait,
/// type, unlink); ChunkSize and MaxMessageSize do not apply.</para>
/// </summary>
public sealed unsafe class DuplexClient : GatedEndpoint
{
    private AsyncWaiter<DuplexResponse>? _waiter;

    /// <summary>Largest reservation: the frame a request and its response share.</summary>
    public int MaxFramePayload { get; }

    /// <summary>Ring capacity in bytes.</summary>
    public long RingCapacity { get; }

    /// <summary>Opens or creates the channel and claims its client role.</summary>
    /// <exception cref="FlatlaneException">Busy (a live client exists), NotFound, TypeMismatch, InvalidArgument (not a duplex channel), ...</exception>
    public DuplexClient(string name, ChannelOptions? options = null)
        : base(name, Open(name, options ?? ChannelOptions.Default), &Native.flatlane_duplex_client_destroy)
    {
        MaxFramePayload = (int)Native.flatlane_duplex_client_max_frame_payload(Raw);
        NativeDuplexStats s;
        Native.flatlane_duplex_client_stats(Raw, &s);
        RingCapacity = (long)s.CapacityBytes;
    }

    private static IntPtr Open(string name, ChannelOptions o)
    {
        ArgumentNullException.ThrowIfNull(name);
        NativeLoader.EnsureCompatible();
        byte[] tn = new byte[o.TypeNameBufferSize()];
        NativeOptions n;
        int rc;
        IntPtr h;
        fixed (byte* p = tn)
        {
            o.ToNative(&n, tn, p);
            rc = Native.flatlane_duplex_client_open(name, &n, out h);
        }
        if (rc != 0) ThrowOnOpen(rc, name);
        return h;
    }

    /// <summary>
    /// A writable frame of <paramref name="n"/> bytes (32-byte aligned) for the next request. A
    /// ring full of this client's own frames fails at once (receive and release responses first);
    /// only frames left by a previous client are waited for, up to <paramref name="timeout"/>
    /// (null: forever). A new Reserve drops an uncommitted one.
    /// </summary>
    /// <exception cref="FlatlaneTimeoutException">No room.</exception>
    /// <exception cref="FlatlaneException">MessageTooLarge (n &gt; <see cref="MaxFramePayload"/>), Closed.</exception>
    public Span<byte> Reserve(int n, TimeSpan? timeout = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        byte* p;
        Enter();
        int rc = Native.flatlane_duplex_client_reserve(Raw, (ulong)n, Native.ToNanoseconds(timeout), &p);
        Exit();
        if (rc != 0) ThrowNative(rc);
        return new Span<byte>(p, n);
    }

    /// <summary>Like <see cref="Reserve"/>, but false on timeout instead of throwing.</summary>
    public bool TryReserve(int n, TimeSpan timeout, out Span<byte> frame)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        byte* p;
        Enter();
        int rc = Native.flatlane_duplex_client_reserve(Raw, (ulong)n, Native.ToNanoseconds(timeout), &p);
        Exit();
        if (rc == 0)
        {
            frame = new Span<byte>(p, n);
            return true;
        }
        frame = default;
        if (rc != (int)ErrorCode.Timeout) ThrowNative(rc);
        return false;
    }

    /// <summary>
    /// Publishes the first <paramref name="used"/> bytes of the reservation as the request and
    /// returns its seq. The whole reservation stays the frame's: the server may answer with all of it.
    /// </summary>
    /// <exception cref="FlatlaneException">InvalidArgument: no reservation, or used larger than it.</exception>
    public ulong Commit(int used)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(used);
        ulong seq;
        Enter();
        int rc = Native.flatlane_duplex_client_commit(Raw, (ulong)used, &seq);
        Exit();
        if (rc != 0) ThrowNative(rc);
        return seq;
    }

    /// <summary>
    /// Publishes the LAST <paramref name="used"/> bytes of the reservation (a FlatBuffer built back
    /// to front) and returns its seq. A large unused front goes back to the ring, so the server
    /// can answer with at most the request's size plus under 4 KiB.
    /// </summary>
    public ulong CommitTail(int used)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(used);
        ulong seq;
        Enter();
        int rc = Native.flatlane_duplex_client_commit_tail(Raw, (ulong)used, &seq);
        Exit();
        if (rc != 0) ThrowNative(rc);
        return seq;
    }

    /// <summary>Drops the reservation; nothing is sent.</summary>
    public void Abort()
    {
        Enter();
        Native.flatlane_duplex_client_abort(Raw);
        Exit();
    }

    /// <summary>Copies <paramref name="request"/> into a frame of max(length, <paramref name="capacity"/>) bytes and sends it; returns its seq.</summary>
    public ulong Send(ReadOnlySpan<byte> request, int capacity = 0, TimeSpan? timeout = null)
    {
        Span<byte> f = Reserve(Math.Max(request.Length, capacity), timeout);
        request.CopyTo(f);
        return Commit(request.Length);
    }

    /// <summary>
    /// The response to the oldest request whose response was not received yet, waiting up to
    /// <paramref name="timeout"/> (null: forever).
    /// </summary>
    /// <exception cref="FlatlaneTimeoutException">No response in time.</exception>
    /// <exception cref="FlatlanePeerGoneException">The server died (PeerDead) or left (PeerClosed); the request stays for the next server.</exception>
    /// <exception cref="FlatlaneException">InvalidArgument (nothing outstanding), Closed, Corrupt.</exception>
    public DuplexResponse Receive(TimeSpan? timeout = null)
    {
        if (!TryReceiveCore(0, Native.ToNanoseconds(timeout), out DuplexResponse r, out int rc)) ThrowNative(rc);
        return r;
    }

    /// <summary>Like <see cref="Receive"/>, but false on timeout (zero: poll once).</summary>
    public bool TryReceive(TimeSpan timeout, out DuplexResponse response)
    {
        if (TryReceiveCore(0, Native.ToNanoseconds(timeout), out response, out int rc)) return true;
        if (rc != (int)ErrorCode.Timeout) ThrowNative(rc);
        return false;
    }

    /// <summary>
    /// The next response, asynchronously: completes synchronously without allocating when it is
    /// there; otherwise a per-client background thread waits in native code in 10 ms slices,
    /// checking <paramref name="cancellationToken"/> between them (a cancellation consumes
    /// nothing). One ReceiveAsync may be pending at a time.
    /// </summary>
    public ValueTask<DuplexResponse> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        return Waiter.ReceiveAsync(0, cancellationToken, "duplex client");
    }

    private AsyncWaiter<DuplexResponse> Waiter =>
        _waiter ?? Interlocked.CompareExchange(ref _waiter, new AsyncWaiter<DuplexResponse>(Name, TryReceiveCore), null) ?? _waiter;

    private bool TryReceiveCore(ulong unused, long timeoutNs, out DuplexResponse response, out int rc)
    {
        NativeDuplexResponse nr;
        // Usually answered by a poll: no GC transition, no clock read.
        Enter();
        rc = Native.duplex_client_receive_poll(Raw, 0, &nr);
        Exit();
        if (rc == 0)
        {
            response = new DuplexResponse(this, nr);
            return true;
        }
        if (rc != (int)ErrorCode.Timeout || timeoutNs == 0)
        {
            response = default;
            return false;
        }
        long start = timeoutNs < 0 ? 0 : Stopwatch.GetTimestamp();  // no deadline: no clock read
        for (;;)
        {
            long slice = NextSlice(timeoutNs, start, out bool last);
            Enter();
            rc = Native.flatlane_duplex_client_receive(Raw, slice, &nr);
            Exit();
            if (rc == 0)
            {
                response = new DuplexResponse(this, nr);
                return true;
            }
            if (rc != (int)ErrorCode.Timeout || last)
            {
                response = default;
                return false;
            }
        }
    }

    /// <summary>Requests sent whose response was not received yet.</summary>
    public long Outstanding
    {
        get
        {
            Enter();
            ulong n = Native.flatlane_duplex_client_outstanding(Raw);
            Exit();
            return (long)n;
        }
    }

    /// <summary>Responses received and not released yet.</summary>
    public int HeldResponses
    {
        get
        {
            Enter();
            uint n = Native.flatlane_duplex_client_held(Raw);
            Exit();
            return (int)n;
        }
    }

    /// <summary>True while a live server is attached.</summary>
    public bool PeerAttached
    {
        get
        {
            Enter();
            int a = Native.flatlane_duplex_client_peer_attached(Raw);
            Exit();
            return a != 0;
        }
    }

    /// <summary>This client's counters.</summary>
    public DuplexStats Stats
    {
        get
        {
            NativeDuplexStats s;
            Enter();
            Native.flatlane_duplex_client_stats(Raw, &s);
            Exit();
            return DuplexStats.From(s);
        }
    }

    private protected override void ReleaseNative(ulong token) => Native.flatlane_duplex_client_release(Raw, token);

    private protected override void CloseNative() => Native.flatlane_duplex_client_close(Raw);

    private protected override void OnDisposed() => _waiter?.Stop();
}

/// <summary>
/// The server of an in-place duplex channel: receives each request as a writable view of the
/// client's frame, modifies it in place and answers (<see cref="Respond(in DuplexRequest)"/>), in
/// any order. A server never waits for the client. Requests it drops unanswered (Dispose, or
/// Dispose of the server) are answered rejected.
/// </summary>
public sealed unsafe class DuplexServer : GatedEndpoint
{
    private AsyncWaiter<DuplexRequest>? _waiter;

    /// <summary>Largest frame a client may reserve.</summary>
    public int MaxFramePayload { get; }

    /// <summary>Opens or creates the channel and claims its server role.</summary>
    /// <exception cref="FlatlaneException">Busy (a live server exists), NotFound, TypeMismatch, ...</exception>
    public DuplexServer(string name, ChannelOptions? options = null)
        : base(name, Open(name, options ?? ChannelOptions.Default), &Native.flatlane_duplex_server_destroy)
    {
        MaxFramePayload = (int)Native.flatlane_duplex_server_max_frame_payload(Raw);
    }

    private static IntPtr Open(string name, ChannelOptions o)
    {
        ArgumentNullException.ThrowIfNull(name);
        NativeLoader.EnsureCompatible();
        byte[] tn = new byte[o.TypeNameBufferSize()];
        NativeOptions n;
        int rc;
        IntPtr h;
        fixed (byte* p = tn)
        {
            o.ToNative(&n, tn, p);
            rc = Native.flatlane_duplex_server_open(name, &n, out h);
        }
        if (rc != 0) ThrowOnOpen(rc, name);
        return h;
    }

    /// <summary>The next request, waiting up to <paramref name="timeout"/> (null: forever).</summary>
    /// <exception cref="FlatlaneTimeoutException">No request in time.</exception>
    /// <exception cref="FlatlanePeerGoneException">The client went away and every request it sent was received.</exception>
    /// <exception cref="FlatlaneException">Closed, Corrupt.</exception>
    public DuplexRequest Receive(TimeSpan? timeout = null)
    {
        if (!TryReceiveCore(0, Native.ToNanoseconds(timeout), out DuplexRequest r, out int rc)) ThrowNative(rc);
        return r;
    }

    /// <summary>Like <see cref="Receive"/>, but false on timeout (zero: poll once).</summary>
    public bool TryReceive(TimeSpan timeout, out DuplexRequest request)
    {
        if (TryReceiveCore(0, Native.ToNanoseconds(timeout), out request, out int rc)) return true;
        if (rc != (int)ErrorCode.Timeout) ThrowNative(rc);
        return false;
    }

    /// <summary>The next request, asynchronously (as <see cref="DuplexClient.ReceiveAsync"/>).</summary>
    public ValueTask<DuplexRequest> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        return Waiter.ReceiveAsync(0, cancellationToken, "duplex server");
    }

    private AsyncWaiter<DuplexRequest> Waiter =>
        _waiter ?? Interlocked.CompareExchange(ref _waiter, new AsyncWaiter<DuplexRequest>(Name, TryReceiveCore), null) ?? _waiter;

    private bool TryReceiveCore(ulong unused, long timeoutNs, out DuplexRequest request, out int rc)
    {
        NativeDuplexRequest nr;
        // Usually answered by a poll: no GC transition, no clock read.
        Enter();
        rc = Native.duplex_server_receive_poll(Raw, 0, &nr);
        Exit();
        if (rc == 0)
        {
            request = new DuplexRequest(this, nr);
            return true;
        }
        if (rc != (int)ErrorCode.Timeout || timeoutNs == 0)
        {
            request = default;
            return false;
        }
        long start = timeoutNs < 0 ? 0 : Stopwatch.GetTimestamp();  // no deadline: no clock read
        for (;;)
        {
            long slice = NextSlice(timeoutNs, start, out bool last);
            Enter();
            rc = Native.flatlane_duplex_server_receive(Raw, slice, &nr);
            Exit();
            if (rc == 0)
            {
                request = new DuplexRequest(this, nr);
                return true;
            }
            if (rc != (int)ErrorCode.Timeout || last)
            {
                request = default;
                return false;
            }
        }
    }

    /// <summary>Answers with the bytes now at the request's place (same offset and size).</summary>
    /// <exception cref="FlatlaneException">InvalidArgument: the request was already answered (or is not this server's).</exception>
    public void Respond(in DuplexRequest request) => Respond(request, request.RequestOffset, request.Length);

    /// <summary>Answers with <paramref name="size"/> bytes at <paramref name="offset"/> within the frame payload.</summary>
    /// <exception cref="FlatlaneException">InvalidArgument (already answered), MessageTooLarge (the range leaves the frame; the request stays held).</exception>
    public void Respond(in DuplexRequest request, int offset, int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        Enter();
        int rc = Native.flatlane_duplex_server_respond(Raw, request.Token, (ulong)offset, (ulong)size);
        Exit();
        if (rc != 0) ThrowNative(rc);
    }

    /// <summary>Answers the request rejected (the client sees <see cref="DuplexResponse.Rejected"/>).</summary>
    /// <exception cref="FlatlaneException">InvalidArgument: already answered.</exception>
    public void Reject(in DuplexRequest request)
    {
        Enter();
        int rc = Native.flatlane_duplex_server_reject(Raw, request.Token);
        Exit();
        if (rc != 0) ThrowNative(rc);
    }

    /// <summary>Requests received and not answered yet.</summary>
    public long Outstanding
    {
        get
        {
            Enter();
            ulong n = Native.flatlane_duplex_server_outstanding(Raw);
            Exit();
            return (long)n;
        }
    }

    /// <summary>True while a live client is attached.</summary>
    public bool PeerAttached
    {
        get
        {
            Enter();
            int a = Native.flatlane_duplex_server_peer_attached(Raw);
            Exit();
            return a != 0;
        }
    }

    /// <summary>This server's counters.</summary>
    public DuplexStats Stats
    {
        get
        {
            NativeDuplexStats s;
            Enter();
            Native.flatlane_duplex_server_stats(Raw, &s);
            Exit();
            return DuplexStats.From(s);
        }
    }

    // A request disposed unanswered (from any thread) is rejected; after an answer its token is
    // stale and the native table refuses it, which makes the Dispose harmless.
    private protected override void ReleaseNative(ulong token) => Native.flatlane_duplex_server_reject(Raw, token);

    private protected override void CloseNative() => Native.flatlane_duplex_server_close(Raw);

    private protected override void OnDisposed() => _waiter?.Stop();
}
