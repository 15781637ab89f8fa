using System;
using System.Buffers.Binary;

namespace Flatlane.Tests;

/// <summary>
/// Ports of tests/cpp/topic_test_util.hpp and tests/cpp/service_test_util.hpp: the options and the
/// message formats the C++ peers (flatlane_peer_topic, flatlane_peer_service) use. Must stay
/// identical, or the peers refuse the segment (type identity) or the bytes.
/// </summary>
internal static class TopicMessages
{
    public static TopicOptions Options(OpenMode mode = OpenMode.CreateOrOpen) => new()
    {
        Mode = mode,
        SlotSize = 1024,
        SlotCount = 64,
        QueueDepth = 16,
        MaxSubscribers = 32,
        MaxPublishers = 4,
        MaxHeld = 16,
        TypeName = "fltest.TopicMessage",
        TypeHash = 0x5151,
    };

    // Push/pull: the same settings as a work queue, with its own type.
    public static TopicOptions WorkOptions(OpenMode mode = OpenMode.CreateOrOpen) => Options(mode) with
    {
        Distribution = Distribution.WorkQueue,
        TypeName = "fltest.Work",
        TypeHash = 7,
    };

    public static byte TopicByte(ulong id, int i) => unchecked((byte)((id * 131 + (ulong)i * 7) ^ (ulong)(i >> 3)));

    public static void Fill(Span<byte> p, ulong id)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(p, id);
        for (int i = 8; i < p.Length; i++) p[i] = TopicByte(id, i);
    }

    public static void Send(TopicPublisher pub, ulong id, int size = 200, TimeSpan? timeout = null)
    {
        Span<byte> s = pub.Loan(size, timeout ?? TimeSpan.FromSeconds(10));
        Fill(s, id);
        pub.Publish(size);
    }

    public static ulong Id(ReadOnlySpan<byte> p) => p.Length >= 8 ? BinaryPrimitives.ReadUInt64LittleEndian(p) : ulong.MaxValue;

    public static bool Ok(ReadOnlySpan<byte> p)
    {
        if (p.Length < 8) return false;
        ulong id = Id(p);
        for (int i = 8; i < p.Length; i++)
            if (p[i] != TopicByte(id, i)) return false;
        return true;
    }
}

internal static class ServiceMessages
{
    public static ServiceOptions Options() => new()
    {
        MaxClients = 8,
        MaxRequest = 1024,
        RequestSlots = 16,
        QueueDepth = 8,
        ReplyRing = 1 << 14,
        RequestTypeName = "fltest.Request",
        RequestTypeHash = 1,
        ReplyTypeName = "fltest.Reply",
        ReplyTypeHash = 2,
    };

    public static byte[] RequestPayload(ulong i)
    {
        var v = new byte[8 + (int)(i % 200)];
        for (int k = 0; k < v.Length; k++) v[k] = unchecked((byte)(i * 31 + (ulong)k));
        return v;
    }

    // The answer to a request: every byte plus one, written in place in the reply ring.
    public static void Answer(ServiceServer server, in Request r)
    {
        Span<byte> o = server.PrepareReply(r, r.Length);
        ReadOnlySpan<byte> d = r.Data;
        for (int k = 0; k < d.Length; k++) o[k] = unchecked((byte)(d[k] + 1));
        server.CommitReply(r.Length);
    }

    public static bool IsAnswer(ReadOnlySpan<byte> req, ReadOnlySpan<byte> rep)
    {
        if (req.Length != rep.Length) return false;
        for (int k = 0; k < req.Length; k++)
            if (rep[k] != unchecked((byte)(req[k] + 1))) return false;
        return true;
    }
}
