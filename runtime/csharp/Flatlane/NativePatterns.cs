using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Flatlane;

// Mirrors of the topic and service structs of runtime/c/include/flatlane/flatlane_c.h, field for
// field (the header lays them out without implicit padding). The option structs carry their size,
// which the native side checks.

[StructLayout(LayoutKind.Sequential)]
internal struct NativeTopicOptions
{
    public uint StructSize;
    public int OpenMode;
    public uint SlotSize;
    public uint SlotCount;
    public uint MaxPublishers;
    public uint MaxSubscribers;
    public uint QueueDepth;
    public uint MaxHeld;
    public uint History;
    public int Distribution;
    public uint FileMode;
    public int WaitStrategy;
    public long SpinBudgetNs;
    public long LivenessIntervalNs;
    public IntPtr TypeName;
    public ulong TypeHash;
    public int UnlinkOnClose;
    public int SubscriberMode;
    public uint HistoryRequest;
    public uint Reserved0;
    public long BlockTimeoutNs;
}

[StructLayout(LayoutKind.Sequential)]
internal struct NativePublisherCounters
{
    public ulong Messages;
    public ulong Bytes;
    public ulong NoReceiver;
    public ulong Timeouts;
    public uint Subscribers;
    public uint FreeSlots;
    public uint SlotCount;
    public uint MaxMessage;
    public ulong Lost;
}

[StructLayout(LayoutKind.Sequential)]
internal struct NativeSubscriberCounters
{
    public ulong Received;
    public ulong Bytes;
    public ulong Dropped;
    public uint Held;
    public uint Queued;
}

[StructLayout(LayoutKind.Sequential)]
internal struct NativeSample
{
    public IntPtr Data;
    public ulong Size;
    public ulong Seq;
    public ulong Token;
    public uint Publisher;
    public uint PublisherEpoch;
}

[StructLayout(LayoutKind.Sequential)]
internal struct NativeServiceOptions
{
    public uint StructSize;
    public int OpenMode;
    public uint MaxClients;
    public uint MaxRequest;
    public uint RequestSlots;
    public uint QueueDepth;
    public ulong ReplyRing;
    public IntPtr RequestTypeName;
    public ulong RequestTypeHash;
    public IntPtr ReplyTypeName;
    public ulong ReplyTypeHash;
    public int WaitStrategy;
    public int Reserved0;
    public long SpinBudgetNs;
    public long LivenessIntervalNs;
    public long SendTimeoutNs;
}

[StructLayout(LayoutKind.Sequential)]
internal struct NativeServerCounters
{
    public ulong Requests;
    public ulong Replies;
    public ulong DroppedReplies;
    public uint Clients;
    public uint Reserved0;
}

[StructLayout(LayoutKind.Sequential)]
internal struct NativeRequest
{
    public IntPtr Data;
    public ulong Size;
    public ulong Id;
    public ulong Token;
    public uint Client;
    public uint Reserved0;
}

[StructLayout(LayoutKind.Sequential)]
internal struct NativeReply
{
    public IntPtr Data;
    public ulong Size;
    public ulong Id;
    public ulong Token;
    public int More;
    public int Reserved0;
}

// Owns one native topic/service endpoint; the destroy function depends on the kind.
internal sealed class PatternHandle : SafeHandle
{
    private readonly unsafe delegate*<IntPtr, void> _destroy;

    public unsafe PatternHandle(IntPtr h, delegate*<IntPtr, void> destroy) : base(IntPtr.Zero, ownsHandle: true)
    {
        _destroy = destroy;
        SetHandle(h);
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override unsafe bool ReleaseHandle()
    {
        _destroy(handle);
        return true;
    }
}

// Calls on raw handles, guarded by the endpoint's gate (GatedEndpoint). [SuppressGCTransition]
// only where the native call cannot wait: releases, stats, discard/abort, zero-timeout loans and
// receives (the *_poll entry points, tried before the blocking call), and a commit of a reply
// (a server never waits for a client's ring). Receives, loans, publishes (a block_publisher
// subscriber can make them wait) and sends keep the GC transition.
internal static unsafe partial class Native
{
    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial void flatlane_topic_options_init(NativeTopicOptions* opts);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial void flatlane_service_options_init(NativeServiceOptions* opts);

    // ---- topics

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int flatlane_publisher_open(string name, NativeTopicOptions* opts, out IntPtr handle);

    [LibraryImport(Library, EntryPoint = "flatlane_publisher_loan")]
    private static partial int flatlane_publisher_loan_transition(IntPtr p, ulong n, long timeoutNs, byte** outPtr, ulong* outCapacity);

    // Out of line, so that its P/Invoke frame is not built by every caller (see Native.cs).
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int flatlane_publisher_loan(IntPtr p, ulong n, long timeoutNs, byte** outPtr, ulong* outCapacity) => flatlane_publisher_loan_transition(p, n, timeoutNs, outPtr, outCapacity);

    // A zero-timeout loan cannot wait (a free-list pop, else one reclaim pass and at most the
    // once-per-liveness-interval /proc check): tried first without the GC transition.
    [LibraryImport(Library, EntryPoint = "flatlane_publisher_loan")]
    [SuppressGCTransition]
    public static partial int publisher_loan_poll(IntPtr p, ulong n, long zeroTimeout, byte** outPtr, ulong* outCapacity);

    [LibraryImport(Library)]
    public static partial int flatlane_publisher_publish(IntPtr p, ulong used);

    [LibraryImport(Library)]
    public static partial int flatlane_publisher_publish_tail(IntPtr p, ulong used);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial void flatlane_publisher_discard(IntPtr p);

    [LibraryImport(Library)]
    public static partial int flatlane_publisher_send(IntPtr p, byte* data, ulong size, long timeoutNs);

    [LibraryImport(Library)]
    public static partial uint flatlane_publisher_subscriber_count(IntPtr p);

    [LibraryImport(Library)]
    public static partial void flatlane_publisher_stats(IntPtr p, NativePublisherCounters* stats);

    [LibraryImport(Library)]
    public static partial void flatlane_publisher_close(IntPtr p);

    [LibraryImport(Library)]
    public static partial void flatlane_publisher_destroy(IntPtr p);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int flatlane_subscriber_open(string name, NativeTopicOptions* opts, out IntPtr handle);

    [LibraryImport(Library, EntryPoint = "flatlane_subscriber_receive")]
    private static partial int flatlane_subscriber_receive_transition(IntPtr s, long timeoutNs, NativeSample* sample);

    // Out of line, so that its P/Invoke frame is not built by every caller (see Native.cs).
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int flatlane_subscriber_receive(IntPtr s, long timeoutNs, NativeSample* sample) => flatlane_subscriber_receive_transition(s, timeoutNs, sample);

    // A zero-timeout receive cannot wait (as reader_read_poll): tried first without the GC transition.
    [LibraryImport(Library, EntryPoint = "flatlane_subscriber_receive")]
    [SuppressGCTransition]
    public static partial int subscriber_receive_poll(IntPtr s, long zeroTimeout, NativeSample* sample);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial int flatlane_subscriber_release(IntPtr s, ulong token);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial void flatlane_subscriber_stats(IntPtr s, NativeSubscriberCounters* stats);

    [LibraryImport(Library)]
    public static partial void flatlane_subscriber_close(IntPtr s);

    [LibraryImport(Library)]
    public static partial void flatlane_subscriber_destroy(IntPtr s);

    // ---- services

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int flatlane_server_open(string name, NativeServiceOptions* opts, out IntPtr handle);

    [LibraryImport(Library, EntryPoint = "flatlane_server_receive")]
    private static partial int flatlane_server_receive_transition(IntPtr s, long timeoutNs, NativeRequest* request);

    // Out of line, so that its P/Invoke frame is not built by every caller (see Native.cs).
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int flatlane_server_receive(IntPtr s, long timeoutNs, NativeRequest* request) => flatlane_server_receive_transition(s, timeoutNs, request);

    // Zero-timeout receives cannot wait: tried first without the GC transition (as above).
    [LibraryImport(Library, EntryPoint = "flatlane_server_receive")]
    [SuppressGCTransition]
    public static partial int server_receive_poll(IntPtr s, long zeroTimeout, NativeRequest* request);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial int flatlane_server_release(IntPtr s, ulong token);

    [LibraryImport(Library)]
    public static partial int flatlane_server_prepare_reply(IntPtr s, ulong requestToken, ulong n, byte** outPtr);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial int flatlane_server_commit_reply(IntPtr s, ulong used, int more);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial int flatlane_server_commit_reply_tail(IntPtr s, ulong used, int more);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial void flatlane_server_abort_reply(IntPtr s);

    [LibraryImport(Library)]
    public static partial int flatlane_server_reply(IntPtr s, ulong requestToken, byte* data, ulong size, int more);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial void flatlane_server_stats(IntPtr s, NativeServerCounters* stats);

    [LibraryImport(Library)]
    public static partial void flatlane_server_close(IntPtr s);

    [LibraryImport(Library)]
    public static partial void flatlane_server_destroy(IntPtr s);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int flatlane_client_open(string name, NativeServiceOptions* opts, out IntPtr handle);

    [LibraryImport(Library)]
    public static partial int flatlane_client_prepare(IntPtr c, ulong n, byte** outPtr);

    [LibraryImport(Library)]
    public static partial int flatlane_client_send_prepared(IntPtr c, ulong used, ulong* outId);

    [LibraryImport(Library)]
    public static partial int flatlane_client_send_prepared_tail(IntPtr c, ulong used, ulong* outId);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial void flatlane_client_abort_prepared(IntPtr c);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial ulong flatlane_client_max_request(IntPtr c);

    [LibraryImport(Library)]
    public static partial int flatlane_client_send(IntPtr c, byte* data, ulong size, ulong* outId);

    [LibraryImport(Library, EntryPoint = "flatlane_client_receive")]
    private static partial int flatlane_client_receive_transition(IntPtr c, ulong id, long timeoutNs, NativeReply* reply);

    // Out of line, so that its P/Invoke frame is not built by every caller (see Native.cs).
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int flatlane_client_receive(IntPtr c, ulong id, long timeoutNs, NativeReply* reply) => flatlane_client_receive_transition(c, id, timeoutNs, reply);

    [LibraryImport(Library, EntryPoint = "flatlane_client_receive")]
    [SuppressGCTransition]
    public static partial int client_receive_poll(IntPtr c, ulong id, long zeroTimeout, NativeReply* reply);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial int flatlane_client_release(IntPtr c, ulong token);

    [LibraryImport(Library)]
    public static partial void flatlane_client_close(IntPtr c);

    [LibraryImport(Library)]
    public static partial void flatlane_client_destroy(IntPtr c);
}
