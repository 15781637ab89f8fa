using System;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;
using Flatlane.FlatBuffers;

namespace Flatlane.Typed;

/// <summary>A received message of type <typeparamref name="T"/>, verified, zero-copy in its slot until disposed.</summary>
public readonly struct TypedSample<T> : IDisposable where T : IFlatlaneMessage<T>, allows ref struct
{
    /// <summary>The untyped sample (publisher, sequence number, bytes).</summary>
    public Sample Raw { get; }

    internal TypedSample(Sample raw) => Raw = raw;

    /// <summary>The message: a view of the root table over shared memory.</summary>
    public T Message => T.GetRoot(Raw.Data);

    /// <summary>The FlatBuffer's bytes.</summary>
    public ReadOnlySpan<byte> Data => Raw.Data;

    /// <summary>Releases the slot (idempotent).</summary>
    public void Dispose() => Raw.Dispose();
}

internal static class TypedCheck
{
    public static FlatlaneException Corrupt(string what, string channel, string typeName, int size) => new(ErrorCode.Corrupt,
        $"flatlane: {what} '{channel}': a {size}-byte message failed FlatBuffers verification as {typeName}; dropped", channel);

    // A FlatBuffer built back to front ends at the end of the span: keep the end 16-aligned.
    public static int Usable(int n) => n & ~15;
}

/// <summary>
/// Sends messages of type <typeparamref name="T"/> on a topic (publish/subscribe) or pipeline (push/pull)
/// channel: each message is built with <see cref="Begin"/>'s builder straight into a loaned slot of
/// shared memory, then <see cref="Publish"/>ed. Generated classes (<c>Channel.Publisher</c>,
/// <c>Channel.Pusher</c>) derive from this with the schema's settings.
/// </summary>
public class TypedPublisher<T> : IDisposable where T : IFlatlaneMessage<T>, allows ref struct
{
    private readonly FbBuilder _builder = new();
    private bool _loaned;

    /// <summary>The untyped publisher.</summary>
    public TopicPublisher Raw { get; }

    /// <summary>The schema channel.</summary>
    public ChannelSpec Spec { get; }

    /// <summary>Attaches (creating the topic if needed) with the schema's settings and the type identity of <typeparamref name="T"/>.</summary>
    /// <param name="spec">The channel.</param>
    /// <param name="name">Segment name; null = the channel's qualified name.</param>
    /// <param name="options">Overrides (non-null values win).</param>
    protected TypedPublisher(ChannelSpec spec, string? name, TopicOptions? options)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Spec = spec;
        Raw = new TopicPublisher(name ?? spec.Name, spec.TopicOptionsFor(T.TypeName, T.TypeHash, options));
    }

    /// <summary>Largest message in bytes (the slot size).</summary>
    public int MaxMessage => TypedCheck.Usable(Raw.MaxMessage);

    /// <summary>
    /// Loans a slot (waiting up to <paramref name="timeout"/> for a free one; null = forever, or
    /// no wait at all on a channel whose overflow is <c>fail</c>) and returns the builder writing
    /// into it. Build the message's
    /// strings, vectors and tables, then call <see cref="Publish"/>. A Begin without Publish
    /// discards the earlier loan.
    /// </summary>
    public FbBuilder Begin(TimeSpan? timeout = null)
    {
        if (_loaned) Discard();
        Span<byte> slot = Raw.Loan(MaxMessage, timeout ?? (Spec.Overflow == Overflow.Fail ? TimeSpan.Zero : null));
        _loaned = true;
        _builder.Reset(slot);
        return _builder;
    }

    /// <summary>Finishes the message with <paramref name="root"/> (and the file identifier) and publishes it.</summary>
    public void Publish(Offset<T> root)
    {
        if (!_loaned) throw new InvalidOperationException($"flatlane: publisher '{Raw.Name}': Publish without Begin");
        try
        {
            _builder.Finish(root.Value, T.FileIdentifier);
        }
        catch
        {
            Discard();
            throw;
        }
        _loaned = false;
        Raw.PublishTail(_builder.Size);
    }

    /// <summary>Gives the loaned slot back unpublished.</summary>
    public void Discard()
    {
        _loaned = false;
        Raw.Discard();
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
/// Receives messages of type <typeparamref name="T"/> from a topic or pipeline channel, each one
/// verified before it is handed out (a message that fails is released and reported as Corrupt).
/// Generated classes (<c>Channel.Subscriber</c>, <c>Channel.Puller</c>) derive from this.
/// </summary>
public class TypedSubscriber<T> : IDisposable where T : IFlatlaneMessage<T>, allows ref struct
{
    /// <summary>The untyped subscriber.</summary>
    public TopicSubscriber Raw { get; }

    /// <summary>The schema channel.</summary>
    public ChannelSpec Spec { get; }

    /// <summary>Verify every message (default true). Off: only the root offset is checked by the accessors' bounds checks.</summary>
    public bool Verify { get; init; } = true;

    /// <summary>Attaches (creating the topic if needed) with the schema's settings and the type identity of <typeparamref name="T"/>.</summary>
    protected TypedSubscriber(ChannelSpec spec, string? name, TopicOptions? options)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Spec = spec;
        Raw = new TopicSubscriber(name ?? spec.Name, spec.TopicOptionsFor(T.TypeName, T.TypeHash, options));
    }

    private TypedSample<T> Checked(Sample s)
    {
        if (Verify && !T.Verify(s.Data))
        {
            int n = s.Length;
            s.Dispose();
            throw TypedCheck.Corrupt("subscriber", Raw.Name, T.TypeName, n);
        }
        return new TypedSample<T>(s);
    }

    /// <summary>The next message, waiting up to <paramref name="timeout"/> (null: forever).</summary>
    /// <exception cref="FlatlaneTimeoutException">Nothing arrived in time.</exception>
    /// <exception cref="FlatlaneException">Corrupt (failed verification), Busy, Closed; PeerDead/PeerClosed.</exception>
    public TypedSample<T> Receive(TimeSpan? timeout = null) => Checked(Raw.Receive(timeout));

    /// <summary>Like <see cref="Receive"/>, false on timeout.</summary>
    public bool TryReceive(TimeSpan timeout, out TypedSample<T> sample)
    {
        if (!Raw.TryReceive(timeout, out Sample s))
        {
            sample = default;
            return false;
        }
        sample = Checked(s);
        return true;
    }

    /// <summary>The next message, asynchronously (see <see cref="TopicSubscriber.ReceiveAsync"/>; cancellation consumes nothing).</summary>
    public ValueTask<TypedSample<T>> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        ValueTask<Sample> t = Raw.ReceiveAsync(cancellationToken);
        return t.IsCompletedSuccessfully ? new ValueTask<TypedSample<T>>(Checked(t.Result)) : Await(t);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<TypedSample<T>> Await(ValueTask<Sample> t) => Checked(await t.ConfigureAwait(false));

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
