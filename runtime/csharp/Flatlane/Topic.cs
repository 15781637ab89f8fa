using System;
using System.Diagnostics;
using System.Threading;
using System.Threading.Tasks;

namespace Flatlane;

/// <summary>
/// A message received from a topic: a zero-copy view of the publisher's slot, held until
/// <see cref="Dispose"/>. Copies share one release; releasing twice or after the subscriber was
/// disposed does nothing. <see cref="Data"/> must not be used after release (the slot is reused).
/// </summary>
public readonly unsafe struct Sample : IDisposable
{
    private readonly TopicSubscriber? _sub;
    private readonly byte* _data;
    private readonly int _length;
    private readonly ulong _token;

    /// <summary>The publisher's sequence number (from 1, per publisher attach).</summary>
    public ulong Seq { get; }

    /// <summary>Publisher block index: messages of one publisher arrive in order.</summary>
    public uint Publisher { get; }

    /// <summary>That publisher's attach epoch.</summary>
    public uint PublisherEpoch { get; }

    internal Sample(TopicSubscriber sub, in NativeSample s)
    {
        _sub = sub;
        _data = (byte*)s.Data;
        _length = (int)s.Size;
        _token = s.Token;
        Seq = s.Seq;
        Publisher = s.Publisher;
        PublisherEpoch = s.PublisherEpoch;
    }

    /// <summary>The message, in place in shared memory.</summary>
    public ReadOnlySpan<byte> Data => new(_data, _length);

    /// <summary>Message length in bytes.</summary>
    public int Length => _length;

    /// <summary>False for <c>default(Sample)</c>.</summary>
    public bool IsValid => _sub is not null;

    /// <summary>Gives the slot back to its publisher (from any thread).</summary>
    public void Dispose() => _sub?.Release(_token);
}

/// <summary>
/// A publisher of a topic (publish/subscribe, or push/pull with <see cref="Distribution.WorkQueue"/>).
/// Messages are built in place: <see cref="Loan"/>, write, <see cref="Publish"/>. Meant for one
/// thread; calls from several threads are serialised, never corrupting.
/// </summary>
public sealed unsafe class TopicPublisher : GatedEndpoint
{
    /// <summary>Largest message (the slot size).</summary>
    public int MaxMessage { get; }

    /// <summary>Joins the topic as a publisher, creating it if the mode allows.</summary>
    /// <exception cref="FlatlaneException">Busy (all publisher blocks taken), TypeMismatch, NotFound, ...</exception>
    public TopicPublisher(string name, TopicOptions? options = null)
        : base(name, Open(name, options ?? TopicOptions.Default), &Native.flatlane_publisher_destroy)
    {
        NativePublisherCounters c;
        Native.flatlane_publisher_stats(Raw, &c);
        MaxMessage = (int)c.MaxMessage;
    }

    private static IntPtr Open(string name, TopicOptions o)
    {
        ArgumentNullException.ThrowIfNull(name);
        NativeLoader.EnsureCompatible();
        byte[] tn = o.TypeNameBytes();
        NativeTopicOptions n;
        int rc;
        IntPtr h;
        fixed (byte* p = tn)
        {
            o.ToNative(&n, tn.Length == 0 ? null : p);
            rc = Native.flatlane_publisher_open(name, &n, out h);
        }
        if (rc != 0) ThrowOnOpen(rc, name);
        return h;
    }

    /// <summary>
    /// A free slot of <paramref name="n"/> bytes (at most <see cref="MaxMessage"/>), waiting for
    /// one up to <paramref name="timeout"/> (null: forever). Write, then Publish, PublishTail or
    /// Discard; a new Loan or Send discards an unpublished loan.
    /// </summary>
    /// <exception cref="FlatlaneException">MessageTooLarge, Timeout, Closed.</exception>
    public Span<byte> Loan(int n, TimeSpan? timeout = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        long timeoutNs = Native.ToNanoseconds(timeout);
        byte* p;
        ulong cap;
        // Usually a slot is free: take it without the GC transition and without reading the
        // clock; only a real wait pays for those.
        Enter();
        int rc = Native.publisher_loan_poll(Raw, (ulong)n, 0, &p, &cap);
        Exit();
        if (rc == 0) return new Span<byte>(p, n);
        if (rc != (int)ErrorCode.Timeout || timeoutNs == 0) ThrowNative(rc);
        long start = timeoutNs < 0 ? 0 : Stopwatch.GetTimestamp();  // no deadline: no clock read
        for (;;)
        {
            // Sliced, so a Close from another thread interrupts a wait for a free slot.
            long slice = NextSlice(timeoutNs, start, out bool last);
            Enter();
            rc = Native.flatlane_publisher_loan(Raw, (ulong)n, slice, &p, &cap);
            Exit();
            if (rc == 0) return new Span<byte>(p, n);
            if (rc != (int)ErrorCode.Timeout || last) ThrowNative(rc);
        }
    }

    /// <summary>
    /// Hands the first <paramref name="used"/> bytes of the loan to every attached subscriber (or,
    /// on a work queue, to exactly one). Timeout: a BlockPublisher subscriber had no queue space
    /// within the block timeout (the others got the message).
    /// </summary>
    public void Publish(int used)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(used);
        Enter();
        int rc = Native.flatlane_publisher_publish(Raw, (ulong)used);
        Exit();
        if (rc != 0) ThrowNative(rc);
    }

    /// <summary>Publishes the LAST <paramref name="used"/> bytes of the loan (a FlatBuffer built back to front).</summary>
    public void PublishTail(int used)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(used);
        Enter();
        int rc = Native.flatlane_publisher_publish_tail(Raw, (ulong)used);
        Exit();
        if (rc != 0) ThrowNative(rc);
    }

    /// <summary>Gives the loaned slot back unpublished.</summary>
    public void Discard()
    {
        Enter();
        Native.flatlane_publisher_discard(Raw);
        Exit();
    }

    /// <summary>Loan + copy + publish. The timeout bounds the wait for a free slot.</summary>
    public void Send(ReadOnlySpan<byte> data, TimeSpan? timeout = null)
    {
        int rc;
        Enter();
        fixed (byte* p = data)
        {
            rc = Native.flatlane_publisher_send(Raw, p, (ulong)data.Length, Native.ToNanoseconds(timeout));
        }
        Exit();
        if (rc != 0) ThrowNative(rc);
    }

    /// <summary>Subscribers attached now.</summary>
    public int SubscriberCount
    {
        get
        {
            Enter();
            uint n = Native.flatlane_publisher_subscriber_count(Raw);
            Exit();
            return (int)n;
        }
    }

    /// <summary>This publisher's counters.</summary>
    public PublisherStats Stats
    {
        get
        {
            NativePublisherCounters c;
            Enter();
            Native.flatlane_publisher_stats(Raw, &c);
            Exit();
            return new PublisherStats(c.Messages, c.Bytes, c.NoReceiver, c.Timeouts, c.Subscribers, c.FreeSlots, c.SlotCount, c.Lost);
        }
    }

    private protected override void ReleaseNative(ulong token) { }  // publishers hold nothing

    private protected override void CloseNative() => Native.flatlane_publisher_close(Raw);
}

/// <summary>
/// A subscriber of a topic. Receives what is published after it attached (plus, with
/// <see cref="TopicOptions.HistoryRequest"/>, retained messages first). Samples are released from
/// any thread; receives are serialised.
/// </summary>
public sealed unsafe class TopicSubscriber : GatedEndpoint
{
    private AsyncWaiter<Sample>? _waiter;

    /// <summary>Joins the topic as a subscriber.</summary>
    /// <exception cref="FlatlaneException">Busy (all subscriber blocks taken), TypeMismatch, NotFound, ...</exception>
    public TopicSubscriber(string name, TopicOptions? options = null)
        : base(name, Open(name, options ?? TopicOptions.Default), &Native.flatlane_subscriber_destroy)
    {
    }

    private static IntPtr Open(string name, TopicOptions o)
    {
        ArgumentNullException.ThrowIfNull(name);
        NativeLoader.EnsureCompatible();
        byte[] tn = o.TypeNameBytes();
        NativeTopicOptions n;
        int rc;
        IntPtr h;
        fixed (byte* p = tn)
        {
            o.ToNative(&n, tn.Length == 0 ? null : p);
            rc = Native.flatlane_subscriber_open(name, &n, out h);
        }
        if (rc != 0) ThrowOnOpen(rc, name);
        return h;
    }

    /// <summary>
    /// The next message from any publisher, waiting up to <paramref name="timeout"/> (null: forever).
    /// </summary>
    /// <exception cref="FlatlaneTimeoutException">Nothing arrived in time.</exception>
    /// <exception cref="FlatlanePeerGoneException">Every publisher that attached died (PeerDead) or left (PeerClosed), and nothing is queued.</exception>
    /// <exception cref="FlatlaneException">Busy (MaxHeld samples held), Closed, Corrupt.</exception>
    public Sample Receive(TimeSpan? timeout = null)
    {
        if (!TryReceiveCore(0, Native.ToNanoseconds(timeout), out Sample s, out int rc)) ThrowNative(rc);
        return s;
    }

    /// <summary>Like <see cref="Receive"/>, but false on timeout (zero: poll once) instead of throwing.</summary>
    public bool TryReceive(TimeSpan timeout, out Sample sample)
    {
        if (TryReceiveCore(0, Native.ToNanoseconds(timeout), out sample, out int rc)) return true;
        if (rc != (int)ErrorCode.Timeout) ThrowNative(rc);
        return false;
    }

    /// <summary>
    /// The next message, asynchronously: completes synchronously without allocating when one is
    /// queued; otherwise a per-subscriber background thread waits in native code in 10 ms slices,
    /// checking <paramref name="cancellationToken"/> between them (no thread-pool thread blocks,
    /// and a cancellation consumes nothing). One ReceiveAsync may be pending at a time.
    /// </summary>
    public ValueTask<Sample> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        return Waiter.ReceiveAsync(0, cancellationToken, "subscriber");
    }

    private AsyncWaiter<Sample> Waiter =>
        _waiter ?? Interlocked.CompareExchange(ref _waiter, new AsyncWaiter<Sample>(Name, TryReceiveCore), null) ?? _waiter;

    private bool TryReceiveCore(ulong unused, long timeoutNs, out Sample sample, out int rc)
    {
        NativeSample ns;
        // Usually a message is queued (or the caller polls): no GC transition, no clock read.
        Enter();
        rc = Native.subscriber_receive_poll(Raw, 0, &ns);
        Exit();
        if (rc == 0)
        {
            sample = new Sample(this, ns);
            return true;
        }
        if (rc != (int)ErrorCode.Timeout || timeoutNs == 0)
        {
            sample = default;
            return false;
        }
        long start = timeoutNs < 0 ? 0 : Stopwatch.GetTimestamp();  // no deadline: no clock read
        for (;;)
        {
            // Sliced: releases and a Close queued by other threads are applied between slices.
            long slice = NextSlice(timeoutNs, start, out bool last);
            Enter();
            rc = Native.flatlane_subscriber_receive(Raw, slice, &ns);
            Exit();
            if (rc == 0)
            {
                sample = new Sample(this, ns);
                return true;
            }
            if (rc != (int)ErrorCode.Timeout || last)
            {
                sample = default;
                return false;
            }
        }
    }

    /// <summary>This subscriber's counters.</summary>
    public SubscriberStats Stats
    {
        get
        {
            NativeSubscriberCounters c;
            Enter();
            Native.flatlane_subscriber_stats(Raw, &c);
            Exit();
            return new SubscriberStats(c.Received, c.Bytes, c.Dropped, c.Held, c.Queued);
        }
    }

    private protected override void ReleaseNative(ulong token) => Native.flatlane_subscriber_release(Raw, token);

    private protected override void CloseNative() => Native.flatlane_subscriber_close(Raw);

    private protected override void OnDisposed() => _waiter?.Stop();
}
