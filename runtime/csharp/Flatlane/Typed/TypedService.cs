using System;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;
using Flatlane.FlatBuffers;

namespace Flatlane.Typed;

/// <summary>A verified request, zero-copy in its slot until disposed.</summary>
public readonly struct TypedRequest<T> : IDisposable where T : IFlatlaneMessage<T>, allows ref struct
{
    /// <summary>The untyped request (id, client, bytes).</summary>
    public Request Raw { get; }

    internal TypedRequest(Request raw) => Raw = raw;

    /// <summary>The request message.</summary>
    public T Message => T.GetRoot(Raw.Data);

    /// <summary>The FlatBuffer's bytes.</summary>
    public ReadOnlySpan<byte> Data => Raw.Data;

    /// <summary>Releases the slot (idempotent); the request can no longer be answered.</summary>
    public void Dispose() => Raw.Dispose();
}

/// <summary>A verified reply, zero-copy in the client's reply ring until disposed.</summary>
public readonly struct TypedReply<T> : IDisposable where T : IFlatlaneMessage<T>, allows ref struct
{
    /// <summary>The untyped reply (id, more, bytes).</summary>
    public Reply Raw { get; }

    internal TypedReply(Reply raw) => Raw = raw;

    /// <summary>The reply message.</summary>
    public T Message => T.GetRoot(Raw.Data);

    /// <summary>Another reply to the same request follows (streaming methods).</summary>
    public bool More => Raw.More;

    /// <summary>The FlatBuffer's bytes.</summary>
    public ReadOnlySpan<byte> Data => Raw.Data;

    /// <summary>Releases the reply (idempotent).</summary>
    public void Dispose() => Raw.Dispose();
}

/// <summary>
/// The client side of a service channel: requests of type <typeparamref name="TReq"/> built in a
/// request slot, replies of type <typeparamref name="TResp"/> verified in the reply ring.
/// Generated <c>Method.Client</c> classes derive from this with the schema's settings.
/// </summary>
public class TypedClient<TReq, TResp> : IDisposable
    where TReq : IFlatlaneMessage<TReq>, allows ref struct
    where TResp : IFlatlaneMessage<TResp>, allows ref struct
{
    private readonly FbBuilder _builder = new();
    private bool _prepared;

    /// <summary>The untyped client.</summary>
    public ServiceClient Raw { get; }

    /// <summary>The schema channel.</summary>
    public ChannelSpec Spec { get; }

    /// <summary>Verify every reply (default true).</summary>
    public bool Verify { get; init; } = true;

    /// <summary>Attaches to (or creates) the service with the schema's settings and both type identities.</summary>
    protected TypedClient(ChannelSpec spec, string? name, ServiceOptions? options)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Spec = spec;
        Raw = new ServiceClient(name ?? spec.Name,
            spec.ServiceOptionsFor(TReq.TypeName, TReq.TypeHash, TResp.TypeName, TResp.TypeHash, options));
    }

    /// <summary>Largest request in bytes.</summary>
    public int MaxRequest => TypedCheck.Usable(Raw.MaxRequest);

    /// <summary>Takes a request slot and returns the builder writing into it; then <see cref="Send"/>.</summary>
    public FbBuilder Begin()
    {
        if (_prepared) Abort();
        Span<byte> slot = Raw.Prepare(MaxRequest);
        _prepared = true;
        _builder.Reset(slot);
        return _builder;
    }

    /// <summary>Finishes the request with <paramref name="root"/> and sends it; returns its id for <see cref="Receive"/>.</summary>
    public ulong Send(Offset<TReq> root)
    {
        if (!_prepared) throw new InvalidOperationException($"flatlane: client '{Raw.Name}': Send without Begin");
        try
        {
            _builder.Finish(root.Value, TReq.FileIdentifier);
        }
        catch
        {
            Abort();
            throw;
        }
        _prepared = false;
        return Raw.SendPreparedTail(_builder.Size);
    }

    /// <summary>Gives the prepared slot back unsent.</summary>
    public void Abort()
    {
        _prepared = false;
        Raw.AbortPrepared();
    }

    /// <summary>The next reply to <paramref name="id"/> (streaming: call again while <see cref="TypedReply{T}.More"/>).</summary>
    /// <exception cref="FlatlaneTimeoutException">No reply in time.</exception>
    /// <exception cref="FlatlaneException">Corrupt (failed verification); PeerDead/PeerClosed.</exception>
    public TypedReply<TResp> Receive(ulong id, TimeSpan? timeout = null) => Checked(Raw.Receive(id, timeout));

    /// <summary>The next reply to <paramref name="id"/>, asynchronously (see
    /// <see cref="ServiceClient.ReceiveAsync"/>; cancellation consumes nothing); verified as <see cref="Receive"/>.</summary>
    public ValueTask<TypedReply<TResp>> ReceiveAsync(ulong id, CancellationToken cancellationToken = default)
    {
        ValueTask<Reply> t = Raw.ReceiveAsync(id, cancellationToken);
        return t.IsCompletedSuccessfully ? new ValueTask<TypedReply<TResp>>(Checked(t.Result)) : Await(t);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<TypedReply<TResp>> Await(ValueTask<Reply> t) => Checked(await t.ConfigureAwait(false));

    private TypedReply<TResp> Checked(Reply r)
    {
        if (Verify && !TResp.Verify(r.Data))
        {
            int n = r.Length;
            r.Dispose();
            throw TypedCheck.Corrupt("client", Raw.Name, TResp.TypeName, n);
        }
        return new TypedReply<TResp>(r);
    }

    /// <summary>Detaches.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Detaches.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (disposing) Raw.Dispose();
    }
}

/// <summary>
/// The server side of a service channel: verified requests, replies built in the client's reply
/// ring (several per request on streaming methods). Generated <c>Method.Server</c> classes derive from this.
/// </summary>
public class TypedServer<TReq, TResp> : IDisposable
    where TReq : IFlatlaneMessage<TReq>, allows ref struct
    where TResp : IFlatlaneMessage<TResp>, allows ref struct
{
    private readonly FbBuilder _builder = new();
    private readonly int _maxReply;
    private bool _prepared;

    /// <summary>The untyped server.</summary>
    public ServiceServer Raw { get; }

    /// <summary>The schema channel.</summary>
    public ChannelSpec Spec { get; }

    /// <summary>Verify every request (default true).</summary>
    public bool Verify { get; init; } = true;

    /// <summary>Creates (or attaches to) the service with the schema's settings and both type identities.</summary>
    protected TypedServer(ChannelSpec spec, string? name, ServiceOptions? options)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Spec = spec;
        ServiceOptions o = spec.ServiceOptionsFor(TReq.TypeName, TReq.TypeHash, TResp.TypeName, TResp.TypeHash, options);
        _maxReply = TypedCheck.Usable(o.MaxRequest ?? ChannelSpec.DefaultServiceMaxMessage);
        Raw = new ServiceServer(name ?? spec.Name, o);
    }

    /// <summary>Largest reply in bytes.</summary>
    public int MaxReply => _maxReply;

    /// <summary>The next request; one that fails verification is released and reported as Corrupt.</summary>
    public TypedRequest<TReq> Receive(TimeSpan? timeout = null) => Checked(Raw.Receive(timeout));

    /// <summary>The next request, asynchronously (see <see cref="ServiceServer.ReceiveAsync"/>;
    /// cancellation consumes nothing); verified as <see cref="Receive"/>.</summary>
    public ValueTask<TypedRequest<TReq>> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        ValueTask<Request> t = Raw.ReceiveAsync(cancellationToken);
        return t.IsCompletedSuccessfully ? new ValueTask<TypedRequest<TReq>>(Checked(t.Result)) : Await(t);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<TypedRequest<TReq>> Await(ValueTask<Request> t) => Checked(await t.ConfigureAwait(false));

    private TypedRequest<TReq> Checked(Request r)
    {
        if (Verify && !TReq.Verify(r.Data))
        {
            int n = r.Length;
            r.Dispose();
            throw TypedCheck.Corrupt("server", Raw.Name, TReq.TypeName, n);
        }
        return new TypedRequest<TReq>(r);
    }

    /// <summary>Starts a reply to <paramref name="request"/> in its client's reply ring; then <see cref="Reply"/>.</summary>
    public FbBuilder BeginReply(in TypedRequest<TReq> request)
    {
        if (_prepared) AbortReply();
        Span<byte> span = Raw.PrepareReply(request.Raw, _maxReply);
        _prepared = true;
        _builder.Reset(span);
        return _builder;
    }

    /// <summary>
    /// Finishes and sends the reply; <paramref name="more"/>: another reply to the same request
    /// follows (streaming methods only).
    /// </summary>
    public void Reply(Offset<TResp> root, bool more = false)
    {
        if (!_prepared) throw new InvalidOperationException($"flatlane: server '{Raw.Name}': Reply without BeginReply");
        if (more && !Spec.Streaming)
        {
            AbortReply();
            throw new InvalidOperationException($"flatlane: server '{Raw.Name}': {Spec.Name} is not a streaming method (more: true)");
        }
        try
        {
            _builder.Finish(root.Value, TResp.FileIdentifier);
        }
        catch
        {
            AbortReply();
            throw;
        }
        _prepared = false;
        Raw.CommitReplyTail(_builder.Size, more);
    }

    /// <summary>Drops the reply being built.</summary>
    public void AbortReply()
    {
        _prepared = false;
        Raw.AbortReply();
    }

    /// <summary>Detaches.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Detaches.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (disposing) Raw.Dispose();
    }
}
