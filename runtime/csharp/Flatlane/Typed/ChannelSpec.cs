using System;
using System.Numerics;

namespace Flatlane.Typed;

/// <summary>The kind of a schema channel (docs/SCHEMA.md).</summary>
public enum ChannelKind
{
    /// <summary>Publish/subscribe of one message type.</summary>
    Topic,
    /// <summary>Request/reply, optionally a stream of replies.</summary>
    Service,
    /// <summary>Push/pull work distribution of one message type.</summary>
    Pipeline,
    /// <summary>Request modified in place and handed back (in-place duplex).</summary>
    Duplex,
}

/// <summary>What a sender does when a receiver has no room (the schema's <c>flatlane_overflow</c>).</summary>
public enum Overflow
{
    /// <summary>The receiver drops its oldest message (counted).</summary>
    DropOldest,
    /// <summary>The sender waits for room.</summary>
    Block,
    /// <summary>The sender does not wait: the send fails with Timeout.</summary>
    Fail,
}

/// <summary>
/// A schema channel's settings, as flatlane-gen emits them for every language. The endpoints turn
/// them into runtime options: <see cref="TopicOptionsFor"/> and <see cref="ServiceOptionsFor"/>.
/// </summary>
/// <param name="Name">The channel's qualified name, used as the segment name by default.</param>
/// <param name="Kind">Topic, service, pipeline or duplex.</param>
/// <param name="RingCapacity">Bytes of each ring of the channel (topics and pipelines: each publisher's slot pool).</param>
/// <param name="MaxMessage">Largest message a receiver accepts.</param>
/// <param name="ChunkSize">Chunk frame size of one-to-one rings; 0 = runtime default (topics, work queues and services do not chunk).</param>
/// <param name="Overflow">Sender behaviour when the receiver is full.</param>
/// <param name="Wait">How the sides wait.</param>
/// <param name="Streaming">Services: a stream of replies per request.</param>
public sealed record ChannelSpec(string Name, ChannelKind Kind, long RingCapacity, long MaxMessage, long ChunkSize,
    Overflow Overflow, WaitStrategy Wait, bool Streaming = false)
{
    /// <summary>A topic slot never exceeds this (the runtime's slots are addressed with 32 bits).</summary>
    public const int MaxSlotSize = 1 << 30;
    /// <summary>Topic slot size when the schema sets no flatlane_max_message (as in C++ and Python).</summary>
    public const int DefaultTopicSlot = 64 * 1024;
    /// <summary>Bounds of the derived slots per publisher (as in C++ and Python).</summary>
    public const int MinTopicSlots = 8, MaxDerivedTopicSlots = 4096;
    /// <summary>Services without a flatlane_max_message carry at most this per message (as in C++).</summary>
    public const int DefaultServiceMaxMessage = 64 * 1024;

    /// <summary>
    /// Topic options for this channel and message type. Slots: the schema's max message when it
    /// sets one (topics and work queues do not chunk), else 64 KiB, rounded up to 64 bytes; slots
    /// per publisher: ring capacity / slot size, clamped to [8, 4096]; the same rule as the C++
    /// and Python generated endpoints (typed/topic_endpoints.hpp, typed.py), so whichever language
    /// creates the topic, the others' messages fit. Pipelines are work queues. Overflow
    /// <c>block</c> makes subscribers <see cref="SubscriberMode.BlockPublisher"/>, <c>drop_oldest</c>
    /// <see cref="SubscriberMode.DropOldest"/>, and <c>fail</c> block-publisher subscribers with a
    /// publisher that does not wait (BlockTimeout 0). <paramref name="overrides"/>' non-null
    /// values win (name, mode, history, ...).
    /// </summary>
    public TopicOptions TopicOptionsFor(string typeName, ulong typeHash, TopicOptions? overrides = null)
    {
        if (Kind is not (ChannelKind.Topic or ChannelKind.Pipeline))
            throw new InvalidOperationException($"flatlane: channel '{Name}' is a {Kind}, not a topic or pipeline");
        // A schema that sets flatlane_max_message gets slots of that size (topics do not chunk, so a
        // slot must hold the largest message); without one (4 GiB), 64 KiB slots, as in C++ and Python.
        long slot = MaxMessage < 1L << 32 ? Math.Clamp(MaxMessage, 64, MaxSlotSize) : DefaultTopicSlot;
        slot = (slot + 63) & ~63L;
        int count = (int)Math.Clamp(RingCapacity / slot, MinTopicSlots, MaxDerivedTopicSlots);
        var o = overrides ?? TopicOptions.Default;
        bool work = Kind == ChannelKind.Pipeline;
        return o with
        {
            SlotSize = o.SlotSize ?? (int)slot,
            SlotCount = o.SlotCount ?? count,
            Distribution = o.Distribution ?? (work ? Distribution.WorkQueue : Distribution.FanOut),
            Wait = o.Wait ?? Wait,
            SubscriberMode = o.SubscriberMode ?? (Overflow == Overflow.DropOldest && !work ? SubscriberMode.DropOldest : SubscriberMode.BlockPublisher),
            BlockTimeout = o.BlockTimeout ?? (Overflow == Overflow.Fail ? TimeSpan.Zero : null),
            TypeName = typeName,
            TypeHash = typeHash,
        };
    }

    /// <summary>
    /// Duplex options, as the C++ generated endpoints compute them (typed/duplex.hpp): the ring
    /// capacity, the wait strategy and the message's type identity; the frame limit is the
    /// runtime's (ring/2 - 64). <paramref name="overrides"/>' non-null values win.
    /// </summary>
    public ChannelOptions DuplexOptionsFor(string typeName, ulong typeHash, ChannelOptions? overrides = null)
    {
        if (Kind != ChannelKind.Duplex)
            throw new InvalidOperationException($"flatlane: channel '{Name}' is a {Kind}, not a duplex channel");
        var o = overrides ?? ChannelOptions.Default;
        return o with
        {
            RingCapacity = o.RingCapacity ?? RingCapacity,
            Wait = o.Wait ?? Wait,
            TypeName = typeName,
            TypeHash = typeHash,
        };
    }

    /// <summary>
    /// Service options, as the C++ generated endpoints compute them: max request (and reply) =
    /// the max message (64 KiB when the schema sets none; at most 1 GiB) rounded up to 16, reply
    /// ring = the ring capacity but at least twice a message, request and reply type identity.
    /// </summary>
    public ServiceOptions ServiceOptionsFor(string requestType, ulong requestHash, string replyType, ulong replyHash,
        ServiceOptions? overrides = null)
    {
        if (Kind != ChannelKind.Service)
            throw new InvalidOperationException($"flatlane: channel '{Name}' is a {Kind}, not a service");
        long max = MaxMessage >= 1L << 32 ? DefaultServiceMaxMessage : MaxMessage;
        max = Math.Min(max, 1 << 30);
        int maxRequest = (int)((max + 15) & ~15L);
        long ring = Math.Max(RingCapacity, (long)BitOperations.RoundUpToPowerOf2((ulong)(2 * (maxRequest + 64))));
        var o = overrides ?? ServiceOptions.Default;
        return o with
        {
            MaxRequest = o.MaxRequest ?? maxRequest,
            ReplyRing = o.ReplyRing ?? ring,
            Wait = o.Wait ?? Wait,
            RequestTypeName = requestType,
            RequestTypeHash = requestHash,
            ReplyTypeName = replyType,
            ReplyTypeHash = replyHash,
        };
    }
}
