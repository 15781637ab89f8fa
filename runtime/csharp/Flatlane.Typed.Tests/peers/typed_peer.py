"""Python peer for the C# generated-endpoint tests (InteropTests.cs, DuplexTests.cs): the
flatlane package's topics, services and duplex channels, messages read and built with flatc's
Python code for tests/cpp/schema/typed_test.fbs (generated/tests/typed_test). Same modes,
arguments, messages and output as typed_peer.cpp:

    typed_peer.py MODE NAME COUNT TYPE HASH [TYPE2 HASH2] [MAX]

Needs PYTHONPATH=<build>/python:<repo>/generated/tests/typed_test and Debian's python3-flatbuffers.
"""

import os
import signal
import struct
import sys
import time

import flatbuffers
import flatlane
import numpy as np
from fltest import AddReply, AddRequest, Blob, CountReply, CountRequest, Sample, Vec3


def say(s):
    sys.stdout.write(s + "\n")
    sys.stdout.flush()


def bad(why):
    say("bad " + why)
    sys.exit(3)


FIXED = [0, 1, 2, 3, 7, 64, 1000]


def size_of(k, mx):
    if k < 7:
        return min(FIXED[k], mx)
    if k == 7:
        return mx
    return (k * 2654435761) % (1 << 64) % (mx + 1)


def label_of(k):
    return "sample %d \u03b2" % k


def root(cls, data):
    buf = bytes(data)  # flatc's Python reader wants a bytes-like it can index; the copy is the test's
    n = flatbuffers.encode.Get(flatbuffers.packer.uoffset, buf, 0)
    if n < 4 or n >= len(buf):
        bad("root offset %d of a %d-byte message" % (n, len(buf)))
    return getattr(cls, cls.__name__.split(".")[-1]).GetRootAs(buf, 0)


def expect_sample(s, k, mx):
    if s.Id() != k:
        bad("sample id %d expected %d" % (s.Id(), k))
    if s.Label().decode("utf-8") != label_of(k):
        bad("sample label")
    p = s.Position()
    if p is None or p.X() != float(k) or p.Z() != -1.5:
        bad("sample position")
    n = size_of(k, mx)
    if s.ValuesLength() != n:
        bad("sample values %d expected %d" % (s.ValuesLength(), n))
    if n and list(s.ValuesAsNumpy()) != [i * 0.25 for i in range(n)]:
        bad("sample values")


def build_sample(k, mx):
    b = flatbuffers.Builder(64)
    label = b.CreateString(label_of(k))
    n = size_of(k, mx)
    Sample.StartValuesVector(b, n)
    for i in reversed(range(n)):
        b.PrependFloat32(i * 0.25)
    vals = b.EndVector()
    Sample.Start(b)
    Sample.AddId(b, k)
    Sample.AddLabel(b, label)
    Sample.AddPosition(b, Vec3.CreateVec3(b, float(k), 0.0, -1.5))
    Sample.AddValues(b, vals)
    b.Finish(Sample.End(b))
    return bytes(b.Output())


def blob_byte(k, i):
    return (k * 31 + i * 7 + (i >> 8)) & 0xFF


def expect_blob(bl, mx):
    k = bl.Id()
    n = size_of(k, mx)
    if bl.DataLength() != n:
        bad("blob %d size %d expected %d" % (k, bl.DataLength(), n))
    want = bytes(blob_byte(k, i) for i in range(n))
    got = bl.DataAsNumpy().tobytes() if n else b""
    if got != want:
        bad("blob bytes")
    if bl.Checksum() != sum(want):
        bad("blob checksum")
    return k


def build_blob(k, mx):
    n = size_of(k, mx)
    data = bytes(blob_byte(k, i) for i in range(n))
    b = flatbuffers.Builder(n + 64)
    d = b.CreateByteVector(data)
    Blob.Start(b)
    Blob.AddId(b, k)
    Blob.AddData(b, d)
    Blob.AddChecksum(b, sum(data))
    b.Finish(Blob.End(b))
    return bytes(b.Output())


def count_for(k):
    return k % 7 + 1


def invert_blob(buf):
    """The duplex servers' work, in place in the client's frame (a writable memoryview): invert
    Blob.data and rewrite checksum, as invert_blob in typed_peer.cpp (flatc's Python code has no
    mutators: the accessors give the positions, the bytes are written through the view)."""
    bl = Blob.Blob.GetRootAs(buf, 0)
    n = bl.DataLength()
    total = 0
    if n:
        data = bl.DataAsNumpy()  # a view of the frame, writable because buf is
        np.invert(data, out=data)
        total = int(data.sum(dtype=np.uint64))
    o = bl._tab.Offset(8)  # checksum's vtable slot
    if o:
        struct.pack_into("<Q", buf, bl._tab.Pos + o, total)
    elif total:
        bad("checksum not stored")


def expect_inverted_blob(bl, k, mx):
    if bl.Id() != k:
        bad("reply id %d expected %d" % (bl.Id(), k))
    n = size_of(k, mx)
    if bl.DataLength() != n:
        bad("reply %d size %d" % (k, bl.DataLength()))
    want = bytes(~blob_byte(k, i) & 0xFF for i in range(n))
    got = bl.DataAsNumpy().tobytes() if n else b""
    if got != want:
        bad("reply %d bytes" % k)
    if bl.Checksum() != sum(want):
        bad("reply checksum")


def main(argv):
    signal.alarm(60)
    mode, name, count = argv[1], argv[2], int(argv[3])
    t1 = (argv[4], int(argv[5], 16))
    t2 = (argv[6], int(argv[7], 16)) if len(argv) > 7 else ("", 0)
    mx = int(argv[8]) if len(argv) > 8 else 1000
    if mode in ("sub-sample", "pull-blob"):
        sub = flatlane.TopicSubscriber(name, mode="open", type_name=t1[0], type_hash=t1[1],
                                       subscriber_mode=flatlane.SubscriberMode.BLOCK_PUBLISHER)
        say("ready")
        ids = 0
        for k in range(count):
            with sub.receive(20000) as s:
                if mode == "sub-sample":
                    expect_sample(root(Sample, s.data), k, mx)
                else:
                    ids += expect_blob(root(Blob, s.data), mx)
        say("done %d %d" % (count, ids))
    elif mode in ("pub-sample", "push-blob"):
        pub = flatlane.TopicPublisher(name, mode="open", type_name=t1[0], type_hash=t1[1])
        say("ready")
        for _ in range(2000):
            if pub.subscriber_count:
                break
            time.sleep(0.001)
        for k in range(count):
            pub.send(build_sample(k, mx) if mode == "pub-sample" else build_blob(k, mx), 10000)
        say("done %d" % count)
    elif mode in ("serve-add", "serve-count"):
        srv = flatlane.ServiceServer(name, mode="open", request_type=t1, reply_type=t2)
        say("ready")
        for _ in range(count):
            with srv.receive(20000) as r:
                if mode == "serve-add":
                    q = root(AddRequest, r.data)
                    b = flatbuffers.Builder(64)
                    AddReply.Start(b)
                    AddReply.AddSum(b, q.A() + q.B())
                    b.Finish(AddReply.End(b))
                    srv.reply(r, bytes(b.Output()))
                else:
                    q = root(CountRequest, r.data)
                    for n in range(1, q.To() + 1):
                        b = flatbuffers.Builder(64)
                        CountReply.Start(b)
                        CountReply.AddN(b, n)
                        b.Finish(CountReply.End(b))
                        srv.reply(r, bytes(b.Output()), more=n < q.To())
        say("done %d" % count)
    elif mode in ("call-add", "call-count"):
        cli = flatlane.ServiceClient(name, mode="open", request_type=t1, reply_type=t2)
        say("ready")
        for k in range(count):
            b = flatbuffers.Builder(64)
            if mode == "call-add":
                AddRequest.Start(b)
                AddRequest.AddA(b, k)
                AddRequest.AddB(b, -7)
                b.Finish(AddRequest.End(b))
                with cli.call(bytes(b.Output()), 10000) as rep:
                    if root(AddReply, rep.data).Sum() != k - 7:
                        bad("sum")
            else:
                CountRequest.Start(b)
                CountRequest.AddTo(b, count_for(k))
                b.Finish(CountRequest.End(b))
                rid = cli.send(bytes(b.Output()))
                n = 0
                while True:
                    n += 1
                    with cli.receive(rid, 10000) as rep:
                        if root(CountReply, rep.data).N() != n:
                            bad("count reply")
                        more = rep.more
                    if not more:
                        if n != count_for(k):
                            bad("count stream ended at %d" % n)
                        break
        say("done %d" % count)
    elif mode == "serve-invert":
        srv = flatlane.DuplexServer(name, mode="open", type_name=t1[0], type_hash=t1[1])
        say("ready")
        for _ in range(count):
            with srv.receive(20000) as r:
                root(Blob, r.data)  # the bytes check out before they are changed
                invert_blob(r.data)
                r.respond()
        say("done %d" % count)
    elif mode == "call-invert":
        cli = flatlane.DuplexClient(name, mode="open", type_name=t1[0], type_hash=t1[1])
        say("ready")
        sent = got = 0
        while got < count:
            while sent < count and sent - got < 4:
                sent += 1
                cli.send(build_blob(sent, mx), 0, 10000)
            with cli.receive(20000) as rep:
                got += 1
                if rep.rejected:
                    bad("rejected %d" % rep.seq)
                expect_inverted_blob(root(Blob, rep.data), got, mx)
        say("done %d" % count)
    else:
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except flatlane.FlatlaneError as e:  # noqa: F821 - exported by the package
        say("error %s %s" % (type(e).__name__, e))
        sys.exit(4)
