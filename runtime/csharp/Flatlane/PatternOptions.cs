using System;
using System.Text;

namespace Flatlane;

/// <summary>How a topic distributes messages among its subscribers.</summary>
public enum Distribution
{
    /// <summary>Publish/subscribe: every attached subscriber gets every message.</summary>
    FanOut = 0,
    /// <summary>Push/pull: each message goes to exactly one subscriber, and waits while none is attached.</summary>
    WorkQueue = 1,
}

/// <summary>What a subscriber does to publishers when its queue is full.</summary>
public enum SubscriberMode
{
    /// <summary>Never slows publishers: the oldest queued message is dropped (and counted).</summary>
    DropOldest = 0,
    /// <summary>Publishers wait for queue space, up to their <see cref="TopicOptions.BlockTimeout"/>.</summary>
    BlockPublisher = 1,
}

/// <summary>
/// Topic options (C++ <c>flatlane::TopicOptions</c>). Null keeps the runtime's default, filled in
/// by the native library. Geometry (slot size and count, member limits, queue depth, max held,
/// history, distribution, file mode) only matters to the member that creates the topic.
/// </summary>
public sealed record TopicOptions
{
    /// <summary>Default <see cref="OpenMode.CreateOrOpen"/>.</summary>
    public OpenMode? Mode { get; init; }
    /// <summary>Largest message in bytes (rounded up to 64). Default 4096.</summary>
    public int? SlotSize { get; init; }
    /// <summary>Slots per publisher. Default 64.</summary>
    public int? SlotCount { get; init; }
    /// <summary>Default 4.</summary>
    public int? MaxPublishers { get; init; }
    /// <summary>Default 32.</summary>
    public int? MaxSubscribers { get; init; }
    /// <summary>Messages waiting per subscriber and publisher (a power of two). Default 32.</summary>
    public int? QueueDepth { get; init; }
    /// <summary>Samples a subscriber may hold at once. Default 16.</summary>
    public int? MaxHeld { get; init; }
    /// <summary>Messages each publisher retains for late joiners (fan-out only). Default 0.</summary>
    public int? History { get; init; }
    /// <summary>Default <see cref="Flatlane.Distribution.FanOut"/>.</summary>
    public Distribution? Distribution { get; init; }
    /// <summary>Permission bits of the segment. Default 0600.</summary>
    public int? FileMode { get; init; }
    /// <summary>Default <see cref="WaitStrategy.SpinThenSleep"/>.</summary>
    public WaitStrategy? Wait { get; init; }
    /// <summary>Spin time before sleeping. Default 50 us.</summary>
    public TimeSpan? SpinBudget { get; init; }
    /// <summary>Longest sleep between liveness checks. Default 50 ms.</summary>
    public TimeSpan? LivenessInterval { get; init; }
    /// <summary>Message type name; null or empty = untyped.</summary>
    public string? TypeName { get; init; }
    /// <summary>Type hash, checked with <see cref="TypeName"/>.</summary>
    public ulong TypeHash { get; init; }
    /// <summary>The last member to leave removes the name. Default true.</summary>
    public bool? UnlinkOnClose { get; init; }
    /// <summary>Subscribers: default <see cref="Flatlane.SubscriberMode.DropOldest"/>.</summary>
    public SubscriberMode? SubscriberMode { get; init; }
    /// <summary>Subscribers: retained messages to receive first, per publisher. Default 0.</summary>
    public int? HistoryRequest { get; init; }
    /// <summary>Publishers: wait for a block_publisher subscriber's queue space, and for a free slot in Loan. Default 1 s.</summary>
    public TimeSpan? BlockTimeout { get; init; }

    /// <summary>The runtime defaults.</summary>
    public static TopicOptions Default { get; } = new();

    internal byte[] TypeNameBytes() => NulTerminated(TypeName);

    internal static byte[] NulTerminated(string? s)
    {
        if (string.IsNullOrEmpty(s)) return Array.Empty<byte>();
        var b = new byte[Encoding.UTF8.GetByteCount(s) + 1];
        Encoding.UTF8.GetBytes(s, b);
        return b;
    }

    internal static uint U(int? v, uint dflt, string name)
    {
        if (v is not int x) return dflt;
        ArgumentOutOfRangeException.ThrowIfNegative(x, name);
        return (uint)x;
    }

    // typeName: the pinned bytes of TypeNameBytes() (null when untyped).
    internal unsafe void ToNative(NativeTopicOptions* o, byte* typeName)
    {
        Native.flatlane_topic_options_init(o);
        if (Mode is OpenMode m) o->OpenMode = (int)m;
        o->SlotSize = U(SlotSize, o->SlotSize, nameof(SlotSize));
        o->SlotCount = U(SlotCount, o->SlotCount, nameof(SlotCount));
        o->MaxPublishers = U(MaxPublishers, o->MaxPublishers, nameof(MaxPublishers));
        o->MaxSubscribers = U(MaxSubscribers, o->MaxSubscribers, nameof(MaxSubscribers));
        o->QueueDepth = U(QueueDepth, o->QueueDepth, nameof(QueueDepth));
        o->MaxHeld = U(MaxHeld, o->MaxHeld, nameof(MaxHeld));
        o->History = U(History, o->History, nameof(History));
        o->HistoryRequest = U(HistoryRequest, o->HistoryRequest, nameof(HistoryRequest));
        if (Distribution is Distribution d) o->Distribution = (int)d;
        if (FileMode is int fm) o->FileMode = (uint)fm;
        if (Wait is WaitStrategy w) o->WaitStrategy = (int)w;
        if (SpinBudget is TimeSpan sb) o->SpinBudgetNs = sb.Ticks * 100;
        if (LivenessInterval is TimeSpan li) o->LivenessIntervalNs = li.Ticks * 100;
        if (BlockTimeout is TimeSpan bt) o->BlockTimeoutNs = bt.Ticks * 100;
        o->TypeName = (IntPtr)typeName;
        o->TypeHash = TypeHash;
        if (UnlinkOnClose is bool u) o->UnlinkOnClose = u ? 1 : 0;
        if (SubscriberMode is SubscriberMode sm) o->SubscriberMode = (int)sm;
    }
}

/// <summary>
/// Service options (C++ <c>flatlane::ServiceOptions</c>); null keeps the runtime's default. The
/// geometry is set by whoever creates the service, server or client.
/// </summary>
public sealed record ServiceOptions
{
    /// <summary>Default <see cref="OpenMode.CreateOrOpen"/>.</summary>
    public OpenMode? Mode { get; init; }
    /// <summary>Clients attached at once (at most 64). Default 32.</summary>
    public int? MaxClients { get; init; }
    /// <summary>Bytes of request payload. Default 4096.</summary>
    public int? MaxRequest { get; init; }
    /// <summary>Request slots per client. Default 64.</summary>
    public int? RequestSlots { get; init; }
    /// <summary>Requests waiting per client before the client waits. Default 32.</summary>
    public int? QueueDepth { get; init; }
    /// <summary>Bytes of each client's reply ring. Default 64 KiB.</summary>
    public long? ReplyRing { get; init; }
    /// <summary>Request type name (empty: untyped).</summary>
    public string? RequestTypeName { get; init; }
    /// <summary>Request type hash.</summary>
    public ulong RequestTypeHash { get; init; }
    /// <summary>Reply type name (empty: untyped).</summary>
    public string? ReplyTypeName { get; init; }
    /// <summary>Reply type hash.</summary>
    public ulong ReplyTypeHash { get; init; }
    /// <summary>Default <see cref="WaitStrategy.SpinThenSleep"/>.</summary>
    public WaitStrategy? Wait { get; init; }
    /// <summary>Default 50 us.</summary>
    public TimeSpan? SpinBudget { get; init; }
    /// <summary>Bounds dead-server detection. Default 50 ms.</summary>
    public TimeSpan? LivenessInterval { get; init; }
    /// <summary>Client: how long a request waits for a free slot or server queue space. Default 1 s.</summary>
    public TimeSpan? SendTimeout { get; init; }

    /// <summary>The runtime defaults.</summary>
    public static ServiceOptions Default { get; } = new();

    internal unsafe void ToNative(NativeServiceOptions* o, byte* requestType, byte* replyType)
    {
        Native.flatlane_service_options_init(o);
        if (Mode is OpenMode m) o->OpenMode = (int)m;
        o->MaxClients = TopicOptions.U(MaxClients, o->MaxClients, nameof(MaxClients));
        o->MaxRequest = TopicOptions.U(MaxRequest, o->MaxRequest, nameof(MaxRequest));
        o->RequestSlots = TopicOptions.U(RequestSlots, o->RequestSlots, nameof(RequestSlots));
        o->QueueDepth = TopicOptions.U(QueueDepth, o->QueueDepth, nameof(QueueDepth));
        if (ReplyRing is long rr)
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rr, nameof(ReplyRing));
            o->ReplyRing = (ulong)rr;
        }
        o->RequestTypeName = (IntPtr)requestType;
        o->RequestTypeHash = RequestTypeHash;
        o->ReplyTypeName = (IntPtr)replyType;
        o->ReplyTypeHash = ReplyTypeHash;
        if (Wait is WaitStrategy w) o->WaitStrategy = (int)w;
        if (SpinBudget is TimeSpan sb) o->SpinBudgetNs = sb.Ticks * 100;
        if (LivenessInterval is TimeSpan li) o->LivenessIntervalNs = li.Ticks * 100;
        if (SendTimeout is TimeSpan st) o->SendTimeoutNs = st.Ticks * 100;
    }
}

/// <summary>Counters of a topic publisher.</summary>
/// <param name="Messages">Published.</param>
/// <param name="Bytes">Payload bytes published.</param>
/// <param name="NoReceiver">Published while no subscriber was attached.</param>
/// <param name="Timeouts">Deliveries abandoned after the block timeout.</param>
/// <param name="Subscribers">Attached now.</param>
/// <param name="FreeSlots">Free slots in this publisher's pool.</param>
/// <param name="SlotCount">Slots in the pool.</param>
/// <param name="Lost">Work queue: messages held by subscribers that died.</param>
public readonly record struct PublisherStats(ulong Messages, ulong Bytes, ulong NoReceiver, ulong Timeouts,
    uint Subscribers, uint FreeSlots, uint SlotCount, ulong Lost);

/// <summary>Counters of a topic subscriber.</summary>
/// <param name="Received">Messages received.</param>
/// <param name="Bytes">Payload bytes received.</param>
/// <param name="Dropped">Lost: oldest dropped on a full queue, or a publisher timed out.</param>
/// <param name="Held">Samples held now.</param>
/// <param name="Queued">Messages waiting now.</param>
public readonly record struct SubscriberStats(ulong Received, ulong Bytes, ulong Dropped, uint Held, uint Queued);

/// <summary>Counters of a service server.</summary>
/// <param name="Requests">Requests received.</param>
/// <param name="Replies">Replies sent.</param>
/// <param name="DroppedReplies">Client gone, or its reply ring full.</param>
/// <param name="Clients">Reply channels open now.</param>
public readonly record struct ServerStats(ulong Requests, ulong Replies, ulong DroppedReplies, uint Clients);
