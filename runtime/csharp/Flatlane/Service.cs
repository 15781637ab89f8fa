using System;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;

namespace Flatlane;

/// <summary>
/// A request as the server holds it: a zero-copy view of the payload (after the envelope), held
/// until <see cref="Dispose"/>. Reply to it with <see cref="ServiceServer.Reply"/> or
/// PrepareReply/CommitReply while it is held. Copies share one release.
/// </summary>
public readonly unsafe struct Request : IDisposable
{
    private readonly ServiceServer? _server;
    private readonly byte* _data;
    private readonly int _length;
    internal readonly ulong Token;

    /// <summary>The client's request id.</summary>
    public ulong Id { get; }

    /// <summary>The client's index.</summary>
    public uint Client { get; }

    internal Request(ServiceServer server, in NativeRequest r)
    {
        _server = server;
        _data = (byte*)r.Data;
        _length = (int)r.Size;
        Token = r.Token;
        Id = r.Id;
        Client = r.Client;
    }

    /// <summary>The request payload, in place.</summary>
    public ReadOnlySpan<byte> Data => new(_data, _length);

    /// <summary>Payload length.</summary>
    public int Length => _length;

    /// <summary>False for <c>default(Request)</c>.</summary>
    public bool IsValid => _server is not null;

    /// <summary>Gives the request slot back (from any thread).</summary>
    public void Dispose() => _server?.Release(Token);
}

/// <summary>A reply as the client holds it: zero-copy in the client's reply ring, held until <see cref="Dispose"/>.</summary>
public readonly unsafe struct Reply : IDisposable
{
    private readonly ServiceClient? _client;
    private readonly byte* _data;
    private readonly int _length;
    private readonly ulong _token;

    /// <summary>The request id this answers.</summary>
    public ulong Id { get; }

    /// <summary>Another reply to the same request follows (streaming).</summary>
    public bool More { get; }

    internal Reply(ServiceClient client, in NativeReply r)
    {
        _client = client;
        _data = (byte*)r.Data;
        _length = (int)r.Size;
        _token = r.Token;
        Id = r.Id;
        More = r.More != 0;
    }

    /// <summary>The reply payload, in place.</summary>
    public ReadOnlySpan<byte> Data => new(_data, _length);

    /// <summary>Payload length.</summary>
    public int Length => _length;

    /// <summary>False for <c>default(Reply)</c>.</summary>
    public bool IsValid => _client is not null;

    /// <summary>Gives the ring space back (from any thread).</summary>
    public void Dispose() => _client?.Release(_token);
}

/// <summary>
/// The server of a request/reply service: receives requests from many clients and answers each
/// on that client's reply ring, zero or more times (<c>more</c> = a stream). A server never waits
/// for a client: a reply that does not fit at once is dropped and counted.
/// </summary>
public sealed unsafe class ServiceServer : GatedEndpoint
{
    /// <summary>Opens (or creates) the service as its server.</summary>
    /// <exception cref="FlatlaneException">Busy (a live server exists), TypeMismatch, ...</exception>
    public ServiceServer(string name, ServiceOptions? options = null)
        : base(name, Open(name, options ?? ServiceOptions.Default), &Native.flatlane_server_destroy)
    {
    }

    private static IntPtr Open(string name, ServiceOptions o)
    {
        ArgumentNullException.ThrowIfNull(name);
        NativeLoader.EnsureCompatible();
        byte[] rq = TopicOptions.NulTerminated(o.RequestTypeName), rp = TopicOptions.NulTerminated(o.ReplyTypeName);
        NativeServiceOptions n;
        int rc;
        IntPtr h;
        fixed (byte* a = rq)
        fixed (byte* b = rp)
        {
            o.ToNative(&n, rq.Length == 0 ? null : a, rp.Length == 0 ? null : b);
            rc = Native.flatlane_server_open(name, &n, out h);
        }
        if (rc != 0) ThrowOnOpen(rc, name);
        return h;
    }

    /// <summary>The next request, waiting up to <paramref name="timeout"/> (null: forever).</summary>
    /// <exception cref="FlatlaneTimeoutException">No request in time.</exception>
    /// <exception cref="FlatlaneException">Busy (too many requests held), Closed.</exception>
    public Request Receive(TimeSpan? timeout = null)
    {
        if (!TryReceiveCore(0, Native.ToNanoseconds(timeout), out Request r, out int rc)) ThrowNative(rc);
        return r;
    }

    /// <summary>
    /// The next request, asynchronously: completes synchronously without allocating when one is
    /// queued; otherwise a background thread of this server waits in native code in slices and
    /// checks <paramref name="cancellationToken"/> between them (a cancellation consumes nothing).
    /// One ReceiveAsync may be pending at a time.
    /// </summary>
    public ValueTask<Request> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        return Waiter.ReceiveAsync(0, cancellationToken, "server");
    }

    private AsyncWaiter<Request>? _waiter;

    private AsyncWaiter<Request> Waiter =>
        _waiter ?? Interlocked.CompareExchange(ref _waiter, new AsyncWaiter<Request>(Name, TryReceiveCore), null) ?? _waiter;

    private protected override void OnDisposed() => _waiter?.Stop();

    private bool TryReceiveCore(ulong unused, long timeoutNs, out Request request, out int rc)
    {
        NativeRequest r;
        // Usually answered by a poll: no GC transition, no clock read.
        Enter();
        rc = Native.server_receive_poll(Raw, 0, &r);
        Exit();
        if (rc == 0)
        {
            request = new Request(this, r);
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
            rc = Native.flatlane_server_receive(Raw, slice, &r);
            Exit();
            if (rc == 0)
            {
                request = new Request(this, r);
                return true;
            }
            if (rc != (int)ErrorCode.Timeout || last)
            {
                request = default;
                return false;
            }
        }
    }

    /// <summary>
    /// Zero-copy reply: <paramref name="n"/> writable bytes in the client's reply ring; then
    /// <see cref="CommitReply"/>, <see cref="CommitReplyTail"/> or <see cref="AbortReply"/>.
    /// </summary>
    /// <exception cref="FlatlaneException">InvalidArgument (request released), MessageTooLarge,
    /// PeerClosed/PeerDead (client gone), Timeout (its ring is full: dropped and counted).</exception>
    public Span<byte> PrepareReply(in Request request, int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        byte* p;
        Enter();
        int rc = Native.flatlane_server_prepare_reply(Raw, request.Token, (ulong)n, &p);
        Exit();
        if (rc != 0) ThrowNative(rc);
        return new Span<byte>(p, n);
    }

    /// <summary>Sends the first <paramref name="used"/> prepared bytes; <paramref name="more"/>: another reply follows.</summary>
    public void CommitReply(int used, bool more = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(used);
        Enter();
        int rc = Native.flatlane_server_commit_reply(Raw, (ulong)used, more ? 1 : 0);
        Exit();
        if (rc != 0) ThrowNative(rc);
    }

    /// <summary>Sends the LAST <paramref name="used"/> prepared bytes (a FlatBuffer built back to front).</summary>
    public void CommitReplyTail(int used, bool more = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(used);
        Enter();
        int rc = Native.flatlane_server_commit_reply_tail(Raw, (ulong)used, more ? 1 : 0);
        Exit();
        if (rc != 0) ThrowNative(rc);
    }

    /// <summary>Drops the prepared reply.</summary>
    public void AbortReply()
    {
        Enter();
        Native.flatlane_server_abort_reply(Raw);
        Exit();
    }

    /// <summary>Copies a reply to a held request; <paramref name="more"/>: another reply follows.</summary>
    public void Reply(in Request request, ReadOnlySpan<byte> data, bool more = false)
    {
        int rc;
        Enter();
        fixed (byte* p = data)
        {
            rc = Native.flatlane_server_reply(Raw, request.Token, p, (ulong)data.Length, more ? 1 : 0);
        }
        Exit();
        if (rc != 0) ThrowNative(rc);
    }

    /// <summary>This server's counters.</summary>
    public ServerStats Stats
    {
        get
        {
            NativeServerCounters c;
            Enter();
            Native.flatlane_server_stats(Raw, &c);
            Exit();
            return new ServerStats(c.Requests, c.Replies, c.DroppedReplies, c.Clients);
        }
    }

    private protected override void ReleaseNative(ulong token) => Native.flatlane_server_release(Raw, token);

    private protected override void CloseNative() => Native.flatlane_server_close(Raw);
}

/// <summary>
/// A client of a request/reply service. <see cref="Call"/> = send + receive; or send now and
/// collect replies (several with <see cref="Flatlane.Reply.More"/>) with <see cref="Receive"/>.
/// </summary>
public sealed unsafe class ServiceClient : GatedEndpoint
{
    /// <summary>Largest request payload.</summary>
    public int MaxRequest { get; }

    /// <summary>Opens (or creates) the service as a client.</summary>
    /// <exception cref="FlatlaneException">Busy (MaxClients attached), TypeMismatch, NotFound, ...</exception>
    public ServiceClient(string name, ServiceOptions? options = null)
        : base(name, Open(name, options ?? ServiceOptions.Default), &Native.flatlane_client_destroy)
    {
        MaxRequest = (int)Native.flatlane_client_max_request(Raw);
    }

    private static IntPtr Open(string name, ServiceOptions o)
    {
        ArgumentNullException.ThrowIfNull(name);
        NativeLoader.EnsureCompatible();
        byte[] rq = TopicOptions.NulTerminated(o.RequestTypeName), rp = TopicOptions.NulTerminated(o.ReplyTypeName);
        NativeServiceOptions n;
        int rc;
        IntPtr h;
        fixed (byte* a = rq)
        fixed (byte* b = rp)
        {
            o.ToNative(&n, rq.Length == 0 ? null : a, rp.Length == 0 ? null : b);
            rc = Native.flatlane_client_open(name, &n, out h);
        }
        if (rc != 0) ThrowOnOpen(rc, name);
        return h;
    }

    /// <summary>Zero-copy request: <paramref name="n"/> writable bytes of a request slot; then <see cref="SendPrepared"/>.</summary>
    public Span<byte> Prepare(int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        byte* p;
        Enter();
        int rc = Native.flatlane_client_prepare(Raw, (ulong)n, &p);
        Exit();
        if (rc != 0) ThrowNative(rc);
        return new Span<byte>(p, n);
    }

    /// <summary>Sends the first <paramref name="used"/> prepared bytes; returns the request id.</summary>
    public ulong SendPrepared(int used)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(used);
        ulong id;
        Enter();
        int rc = Native.flatlane_client_send_prepared(Raw, (ulong)used, &id);
        Exit();
        if (rc != 0) ThrowNative(rc);
        return id;
    }

    /// <summary>Sends the LAST <paramref name="used"/> prepared bytes; returns the request id.</summary>
    public ulong SendPreparedTail(int used)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(used);
        ulong id;
        Enter();
        int rc = Native.flatlane_client_send_prepared_tail(Raw, (ulong)used, &id);
        Exit();
        if (rc != 0) ThrowNative(rc);
        return id;
    }

    /// <summary>Gives the prepared slot back unsent.</summary>
    public void AbortPrepared()
    {
        Enter();
        Native.flatlane_client_abort_prepared(Raw);
        Exit();
    }

    /// <summary>Copies a request in and sends it; returns its id.</summary>
    public ulong Send(ReadOnlySpan<byte> data)
    {
        ulong id;
        int rc;
        Enter();
        fixed (byte* p = data)
        {
            rc = Native.flatlane_client_send(Raw, p, (ulong)data.Length, &id);
        }
        Exit();
        if (rc != 0) ThrowNative(rc);
        return id;
    }

    /// <summary>
    /// The next reply to request <paramref name="id"/> (replies to other ids are skipped), waiting
    /// up to <paramref name="timeout"/> (null: forever).
    /// </summary>
    /// <exception cref="FlatlaneTimeoutException">No reply in time.</exception>
    /// <exception cref="FlatlanePeerGoneException">The server died (PeerDead) or left (PeerClosed).</exception>
    public Reply Receive(ulong id, TimeSpan? timeout = null)
    {
        if (!TryReceiveCore(id, Native.ToNanoseconds(timeout), out Reply r, out int rc)) ThrowNative(rc);
        return r;
    }

    /// <summary>
    /// The next reply to request <paramref name="id"/>, asynchronously (as
    /// <see cref="ServiceServer.ReceiveAsync"/>: a cancellation consumes nothing, one pending at a time).
    /// </summary>
    public ValueTask<Reply> ReceiveAsync(ulong id, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        return Waiter.ReceiveAsync(id, cancellationToken, "client");
    }

    /// <summary>Send + ReceiveAsync.</summary>
    public ValueTask<Reply> CallAsync(ReadOnlySpan<byte> data, CancellationToken cancellationToken = default) =>
        ReceiveAsync(Send(data), cancellationToken);

    private AsyncWaiter<Reply>? _waiter;

    private AsyncWaiter<Reply> Waiter =>
        _waiter ?? Interlocked.CompareExchange(ref _waiter, new AsyncWaiter<Reply>(Name, TryReceiveCore), null) ?? _waiter;

    private protected override void OnDisposed() => _waiter?.Stop();

    private bool TryReceiveCore(ulong id, long timeoutNs, out Reply reply, out int rc)
    {
        NativeReply r;
        // Usually answered by a poll: no GC transition, no clock read.
        Enter();
        rc = Native.client_receive_poll(Raw, id, 0, &r);
        Exit();
        if (rc == 0)
        {
            reply = new Reply(this, r);
            return true;
        }
        if (rc != (int)ErrorCode.Timeout || timeoutNs == 0)
        {
            reply = default;
            return false;
        }
        long start = timeoutNs < 0 ? 0 : Stopwatch.GetTimestamp();  // no deadline: no clock read
        for (;;)
        {
            long slice = NextSlice(timeoutNs, start, out bool last);
            Enter();
            rc = Native.flatlane_client_receive(Raw, id, slice, &r);
            Exit();
            if (rc == 0)
            {
                reply = new Reply(this, r);
                return true;
            }
            if (rc != (int)ErrorCode.Timeout || last)
            {
                reply = default;
                return false;
            }
        }
    }

    /// <summary>Send + Receive.</summary>
    public Reply Call(ReadOnlySpan<byte> data, TimeSpan? timeout = null) => Receive(Send(data), timeout);

    private protected override void ReleaseNative(ulong token) => Native.flatlane_client_release(Raw, token);

    private protected override void CloseNative() => Native.flatlane_client_close(Raw);
}
