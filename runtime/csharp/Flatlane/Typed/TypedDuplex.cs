using System;
using System.Buffers;
using System.Threading;
using System.Threading.Tasks;
using Flatlane.FlatBuffers;

namespace Flatlane.Typed;

/// <summary>
/// A reply held by a typed duplex client: the request's frame as the server left it, verified.
/// Zero-copy until disposed.
/// </summary>
public readonly struct InPlaceReply<T> : IDisposable where T : IFlatlaneMessage<T>, allows ref struct
{
    /// <summary>The untyped response (seq, rejected, bytes).</summary>
    public DuplexResponse Raw { get; }

    internal InPlaceReply(DuplexResponse raw) => Raw = raw;

    /// <summary>The server rejected the request (or died holding it): there is no message.</summary>
    public bool Rejected => Raw.Rejected;

    /// <summary>The seq Send returned for the request.</summary>
    public ulong Seq => Raw.Seq;

    /// <summary>The reply message (the request as the server modified it).</summary>
    /// <exception cref="InvalidOperationException">The request was rejected.</exception>
    public T Message => Raw.Rejected
        ? throw new InvalidOperationException($"flatlane: duplex request {Raw.Seq} was rejected: no message")
        : T.GetRoot(Raw.Data);

    /// <summary>The FlatBuffer's bytes in the frame (writable while held).</summary>
    public Span<byte> Data => Raw.Data;

    /// <summary>Releases the frame (idempotent).</summary>
    public void Dispose() => Raw.Dispose();
}

/// <summary>
/// A request held by a typed duplex server: the verified message in the client's frame, writable
/// in place. Read it with <see cref="Message"/>, modify it through <see cref="Data"/> (or the
/// generated <c>T.Mutable</c> view, e.g. <c>Blob.Mutable.GetRoot(call.Data)</c>: writable vector
/// spans and <c>Mutate&lt;Field&gt;</c> for scalars present in the buffer), then
/// <see cref="Respond"/>: the same bytes go back. Disposing it unanswered rejects it.
/// </summary>
public readonly struct InPlaceCall<T> : IDisposable where T : IFlatlaneMessage<T>, allows ref struct
{
    /// <summary>The untyped request.</summary>
    public DuplexRequest Raw { get; }

    internal InPlaceCall(DuplexRequest raw) => Raw = raw;

    /// <summary>The request message, in place.</summary>
    public T Message => T.GetRoot(Raw.Data);

    /// <summary>The FlatBuffer's bytes, writable in place.</summary>
    public Span<byte> Data => Raw.Data;

    /// <summary>The client's seq for this request.</summary>
    public ulong Seq => Raw.Seq;

    /// <summary>Hands the (modified) message back to the client.</summary>
    public void Respond() => Raw.Respond();

    /// <summary>Answers rejected.</summary>
    public void Reject() => Raw.Reject();

    /// <summary>Rejects the request if it is still unanswered.</summary>
    public void Dispose() => Raw.Dispose();
}

/// <summary>
/// The client side of a duplex channel: each request of type <typeparamref name="T"/> is built with
/// <see cref="Begin"/>'s builder straight into a reserved frame of the ring and sent with
/// <see cref="Send"/> (the built tail is committed; a large unused front goes back to the ring);
/// the server modifies it in place and <see cref="Receive"/> returns the same frame, verified.
/// Generated <c>Channel.Client</c> classes derive from this with the schema's settings.
/// </summary>
public class TypedDuplexClient<T> : IDisposable where T : IFlatlaneMessage<T>, allows ref struct
{
    private readonly FbBuilder _builder = new();
    private readonly FbBuilder.GrowTarget _grow;
    private bool _reserved;
    private bool _grew;
    private int _hint = InitialHint;
    private TimeSpan? _timeout;

    // The first reservation; then each message's size plus a margin (as the C++ InPlaceClient).
    private const int InitialHint = 256;
    private const int Margin = 64;

    /// <summary>The untyped client.</summary>
    public DuplexClient Raw { get; }

    /// <summary>The schema channel.</summary>
    public ChannelSpec Spec { get; }

    /// <summary>Verify every reply (default true).</summary>
    public bool Verify { get; init; } = true;

    /// <summary>Attaches (creating the channel if needed) with the schema's settings and the type identity of <typeparamref name="T"/>.</summary>
    protected TypedDuplexClient(ChannelSpec spec, string? name, ChannelOptions? options)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Spec = spec;
        Raw = new DuplexClient(name ?? spec.Name, spec.DuplexOptionsFor(T.TypeName, T.TypeHash, options));
        MaxMessage = (int)Math.Min(Math.Min(spec.MaxMessage, Raw.MaxFramePayload), int.MaxValue) & ~31;
        _grow = Grow;
    }

    /// <summary>Requests that outgrew their first reservation and were moved once into a larger frame.</summary>
    public ulong Regrown { get; private set; }

    /// <summary>Largest message (and default reservation): the schema's max message, at most the frame limit, a multiple of 32.</summary>
    public int MaxMessage { get; }

    /// <summary>
    /// Reserves a frame of <paramref name="capacity"/> bytes (default: the last request's size plus
    /// 64, 256 at first; rounded up to 32, at most <see cref="MaxMessage"/>) and returns the builder
    /// writing into it; then <see cref="Send"/>. A request that outgrows the frame moves once into
    /// a frame twice as large (up to <see cref="MaxMessage"/>; counted in <see cref="Regrown"/>),
    /// so the ring only holds what requests need. A ring full of this client's outstanding
    /// requests or held replies fails at once (Timeout).
    /// </summary>
    /// <exception cref="FlatlaneException">MessageTooLarge (beyond <see cref="MaxMessage"/>), Timeout, Closed.</exception>
    public FbBuilder Begin(int capacity = 0, TimeSpan? timeout = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        if (_reserved) Abort();
        int n = Math.Min(capacity == 0 ? _hint : checked((capacity + 31) & ~31), MaxMessage);
        Span<byte> frame = Raw.Reserve(n, timeout);
        _reserved = true;
        _grew = false;
        _timeout = timeout;
        _builder.Reset(frame, _grow);
        return _builder;
    }

    // The builder ran out of frame: copy what is built out (the larger frame may start where this
    // one did), give the frame back, reserve one twice as large and put the bytes at its end.
    private Span<byte> Grow(ReadOnlySpan<byte> written, int needed)
    {
        long want = (long)written.Length + needed;
        if (want > MaxMessage)
            throw new FlatlaneException(ErrorCode.MessageTooLarge,
                $"flatlane: duplex client '{Raw.Name}': request of more than {want} bytes; at most {MaxMessage} (the frame limit)");
        // Twice the frame, but not far beyond what is needed: every byte reserved must be free in
        // the ring now, beside this client's other requests in flight.
        long n0 = Math.Min(Math.Max((long)_builder.Capacity * 2, want + Margin), want + want / 4 + Margin);
        int n = (int)Math.Min((n0 + 31) & ~31L, MaxMessage);
        int used = written.Length;
        byte[] tail = ArrayPool<byte>.Shared.Rent(Math.Max(used, 1));
        try
        {
            written.CopyTo(tail);
            _reserved = false;
            Raw.Abort();
            Span<byte> frame = Raw.Reserve(n, _timeout);
            _reserved = true;
            tail.AsSpan(0, used).CopyTo(frame[(n - used)..]);
            _grew = true;
            return frame;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(tail);
        }
    }

    /// <summary>Finishes the request with <paramref name="root"/> and sends it; returns its seq (replies come back in seq order).</summary>
    public ulong Send(Offset<T> root)
    {
        if (!_reserved) throw new InvalidOperationException($"flatlane: duplex client '{Raw.Name}': Send without Begin");
        try
        {
            _builder.Finish(root.Value, T.FileIdentifier);
        }
        catch
        {
            Abort();
            throw;
        }
        _reserved = false;
        int size = _builder.Size;
        if (_grew) Regrown++;
        _hint = Math.Min((size + Margin + 31) & ~31, MaxMessage);  // the next request is likely the same size
        return Raw.CommitTail(size);
    }

    /// <summary>Drops the reserved frame unsent.</summary>
    public void Abort()
    {
        _reserved = false;
        Raw.Abort();
    }

    /// <summary>The reply to the oldest outstanding request, verified (a rejected one carries no message).</summary>
    /// <exception cref="FlatlaneTimeoutException">No reply in time.</exception>
    /// <exception cref="FlatlaneException">Corrupt (failed verification: released), PeerDead/PeerClosed, InvalidArgument (nothing outstanding).</exception>
    public InPlaceReply<T> Receive(TimeSpan? timeout = null) => Checked(Raw.Receive(timeout));

    /// <summary>Like <see cref="Receive"/>, but false on timeout.</summary>
    public bool TryReceive(TimeSpan timeout, out InPlaceReply<T> reply)
    {
        if (!Raw.TryReceive(timeout, out DuplexResponse r))
        {
            reply = default;
            return false;
        }
        reply = Checked(r);
        return true;
    }

    /// <summary>The next reply, asynchronously (see <see cref="DuplexClient.ReceiveAsync"/>).</summary>
    public async ValueTask<InPlaceReply<T>> ReceiveAsync(CancellationToken cancellationToken = default)
        => Checked(await Raw.ReceiveAsync(cancellationToken).ConfigureAwait(false));

    private InPlaceReply<T> Checked(DuplexResponse r)
    {
        if (Verify && !r.Rejected && !T.Verify(r.Data))
        {
            int n = r.Length;
            r.Dispose();
            throw TypedCheck.Corrupt("duplex client", Raw.Name, T.TypeName, n);
        }
        return new InPlaceReply<T>(r);
    }

    /// <summary>Requests sent whose reply was not received yet.</summary>
    public long Outstanding => Raw.Outstanding;

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
/// The server side of a duplex channel: verified requests of type <typeparamref name="T"/> as
/// writable views of the client's frames (<see cref="InPlaceCall{T}"/>), answered in place.
/// Generated <c>Channel.Server</c> classes derive from this.
/// </summary>
public class TypedDuplexServer<T> : IDisposable where T : IFlatlaneMessage<T>, allows ref struct
{
    /// <summary>The untyped server.</summary>
    public DuplexServer Raw { get; }

    /// <summary>The schema channel.</summary>
    public ChannelSpec Spec { get; }

    /// <summary>Verify every request (default true).</summary>
    public bool Verify { get; init; } = true;

    /// <summary>Creates (or attaches to) the channel with the schema's settings and the type identity of <typeparamref name="T"/>.</summary>
    protected TypedDuplexServer(ChannelSpec spec, string? name, ChannelOptions? options)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Spec = spec;
        Raw = new DuplexServer(name ?? spec.Name, spec.DuplexOptionsFor(T.TypeName, T.TypeHash, options));
    }

    /// <summary>The next request; one that fails verification is rejected and reported as Corrupt.</summary>
    /// <exception cref="FlatlaneTimeoutException">No request in time.</exception>
    /// <exception cref="FlatlanePeerGoneException">The client went away and everything it sent was received.</exception>
    public InPlaceCall<T> Receive(TimeSpan? timeout = null) => Checked(Raw.Receive(timeout));

    /// <summary>Like <see cref="Receive"/>, but false on timeout.</summary>
    public bool TryReceive(TimeSpan timeout, out InPlaceCall<T> call)
    {
        if (!Raw.TryReceive(timeout, out DuplexRequest r))
        {
            call = default;
            return false;
        }
        call = Checked(r);
        return true;
    }

    /// <summary>The next request, asynchronously (see <see cref="DuplexServer.ReceiveAsync"/>).</summary>
    public async ValueTask<InPlaceCall<T>> ReceiveAsync(CancellationToken cancellationToken = default)
        => Checked(await Raw.ReceiveAsync(cancellationToken).ConfigureAwait(false));

    private InPlaceCall<T> Checked(DuplexRequest r)
    {
        if (Verify && !T.Verify(r.Data))
        {
            int n = r.Length;
            r.Reject();
            throw TypedCheck.Corrupt("duplex server", Raw.Name, T.TypeName, n);
        }
        return new InPlaceCall<T>(r);
    }

    /// <summary>Hands the call's (modified) message back.</summary>
    public void Respond(in InPlaceCall<T> call) => Raw.Respond(call.Raw);

    /// <summary>Answers the call rejected.</summary>
    public void Reject(in InPlaceCall<T> call) => Raw.Reject(call.Raw);

    /// <summary>Detaches (unanswered requests still held are answered rejected when they are disposed or the server is).</summary>
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
