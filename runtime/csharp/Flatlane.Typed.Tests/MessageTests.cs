using System;
using Flatlane.FlatBuffers;
using Xunit;

namespace Flatlane.Typed.Tests;

/// <summary>Generated builders and readers over plain memory: every kind of field, defaults, verification.</summary>
public class MessageTests
{
    internal static ReadOnlySpan<byte> BuildSample(FbBuilder b, ulong id, string label, int values)
    {
        b.Reset();
        var l = b.CreateString(label);
        Span<float> vals = values <= 256 ? stackalloc float[values] : new float[values];
        for (int i = 0; i < values; i++) vals[i] = i * 0.5f;
        var v = fltest.Sample.CreateValuesVector(b, vals);
        var root = fltest.Sample.Build(b).Id(id).Label(l).Position(new fltest.Vec3 { X = 1, Y = 2, Z = 3 }).Values(v).End();
        b.Finish(root.Value, fltest.Sample.FileIdentifier);
        return b.WrittenSpan;
    }

    [Fact]
    public void Sample_RoundTrips_AllFields()
    {
        var b = new FbBuilder(4096);
        ReadOnlySpan<byte> buf = BuildSample(b, 42, "hello", 5);
        Assert.True(fltest.Sample.Verify(buf));
        var s = fltest.Sample.GetRoot(buf);
        Assert.Equal(42UL, s.Id);
        Assert.Equal("hello", s.Label);
        Assert.True(s.LabelUtf8.SequenceEqual("hello"u8));
        Assert.True(s.HasPosition);
        Assert.Equal(2.0, s.Position.Y);
        Assert.Equal(5, s.Values.Length);
        Assert.Equal(2.0f, s.Values[4]);
        Assert.Equal(0, buf.Length % 8);
    }

    [Fact]
    public void Absent_Fields_ReadAsDefaults()
    {
        var b = new FbBuilder(256);
        var root = robot.Command.Build(b).End();
        b.Finish(root.Value, robot.Command.FileIdentifier);
        ReadOnlySpan<byte> buf = b.WrittenSpan;
        Assert.True(robot.Command.Verify(buf));
        Assert.True(Fb.HasIdentifier(buf, "RBC1"));
        var c = robot.Command.GetRoot(buf);
        Assert.Equal(0.5f, c.Speed);
        Assert.Equal(robot.Mode.Manual, c.Mode);
        Assert.False(c.Header.IsPresent);
        Assert.Equal(0UL, c.Header.Seq);
        Assert.Null(c.Header.FrameId);
        Assert.False(c.HasTarget);
        Assert.Equal(0, c.Joints.Length);
    }

    internal static ReadOnlySpan<byte> BuildSink(FbBuilder b) => BuildSink(b, inPlace: false);

    // inPlace: the scalar, enum and struct vectors are made with the generated in-place overloads
    // (Create*Vector(b, count, out Span<T>)) and filled afterwards.
    private static ReadOnlySpan<byte> BuildSink(FbBuilder b, bool inPlace)
    {
        b.Reset();
        var s = b.CreateString("required");
        var leafText = b.CreateString("leaf");
        var leaf = ks.Leaf.Build(b).Text(leafText).N(7).End();
        Span<Offset<ks.Leaf>> leaves = stackalloc Offset<ks.Leaf>[3];
        for (int i = 0; i < 3; i++)
        {
            var t = b.CreateString("l" + i);
            leaves[i] = ks.Leaf.Build(b).Text(t).N(i).End();
        }
        var leavesV = b.CreateVector<ks.Leaf>(leaves);
        var wa = new ks.inner.WithArray { Flags = ks.inner.Flags.C, Tail = -1 };
        wa.SetValues(0, 10);
        wa.SetValues(2, 30);
        VectorOffset arrays, signeds;
        if (inPlace)
        {
            arrays = ks.Sink.CreateArraysVector(b, 2, out Span<ks.inner.WithArray> a);
            a.Fill(wa);
            signeds = ks.Sink.CreateSignedsVector(b, 2, out Span<ks.inner.Signed> sg);
            sg[0] = ks.inner.Signed.Pos;
            sg[1] = ks.inner.Signed.Neg;
        }
        else
        {
            arrays = ks.Sink.CreateArraysVector(b, [wa, wa]);
            signeds = ks.Sink.CreateSignedsVector(b, [ks.inner.Signed.Pos, ks.inner.Signed.Neg]);
        }
        Span<StringOffset> strs = stackalloc StringOffset[2];
        strs[0] = b.CreateString("a");
        strs[1] = b.CreateString("βγ");
        var strings = b.CreateVector(strs);
        var otherText = b.CreateString("other");
        var other = ks.Leaf.Build(b).Text(otherText).N(-5).End();
        // nested_flatbuffer "Leaf": a whole Leaf buffer built on its own, stored as bytes.
        var inner = new FbBuilder(256);
        var innerText = inner.CreateString("inner");
        inner.Finish(ks.Leaf.Build(inner).Text(innerText).N(11).End().Value);
        VectorOffset nested;
        if (inPlace)
        {
            nested = ks.Sink.CreateNestedVector(b, inner.Size, out Span<byte> nb);
            inner.WrittenSpan.CopyTo(nb);
        }
        else
        {
            nested = ks.Sink.CreateNestedVector(b, inner.WrittenSpan);
        }
        var root = ks.Sink.Build(b)
            .B(false).I8(-100).U8(1).I16(-300).U16(60000).I32(-7).U32(4000000000).I64(long.MinValue).U64(5)
            .F32(-2.5f).F64(1e300).Opt(0).S(s).Leaf(leaf).Leaves(leavesV)
            .Aligned(new ks.inner.Aligned { X = 1, Y = 2, Z = 3 }).Arrays(arrays)
            .Flags(ks.inner.Flags.B).Signed(ks.inner.Signed.Zero).Signeds(signeds)
            .ChoiceAsOther(other).Strings(strings).Nested(nested).Big(0)
            .End();
        b.Finish(root.Value, ks.Sink.FileIdentifier);
        return b.WrittenSpan;
    }

    [Fact]
    public void KitchenSink_EveryKind_RoundTrips()
    {
        var b = new FbBuilder(4096);
        ReadOnlySpan<byte> buf = BuildSink(b);
        Assert.True(ks.Sink.Verify(buf));
        Assert.True(Fb.HasIdentifier(buf, "KSNK"));
        var k = ks.Sink.GetRoot(buf);
        Assert.False(k.B);
        Assert.Equal(-100, k.I8);
        Assert.Equal(1, k.U8);
        Assert.Equal(-300, k.I16);
        Assert.Equal(60000, k.U16);
        Assert.Equal(-7, k.I32);
        Assert.Equal(4000000000u, k.U32);
        Assert.Equal(long.MinValue, k.I64);
        Assert.Equal(5UL, k.U64);
        Assert.Equal(-2.5f, k.F32);
        Assert.Equal(1e300, k.F64);
        Assert.Equal(0, k.Opt);
        Assert.Equal("required", k.S);
        Assert.Equal("leaf", k.Leaf.Text);
        Assert.Equal(7, k.Leaf.N);
        Assert.Equal(3, k.Leaves.Length);
        Assert.Equal("l2", k.Leaves[2].Text);
        Assert.Equal(3f, k.Aligned.Z);
        Assert.Equal(2, k.Arrays.Length);
        Assert.Equal(30, k.Arrays[1].GetValues(2));
        Assert.Equal(0, k.Arrays[1].GetValues(1));
        Assert.Equal(ks.inner.Flags.C, k.Arrays[0].Flags);
        Assert.Equal(-1, k.Arrays[0].Tail);
        Assert.Equal(ks.inner.Flags.B, k.Flags);
        Assert.Equal(ks.inner.Signed.Zero, k.Signed);
        Assert.Equal([ks.inner.Signed.Pos, ks.inner.Signed.Neg], k.Signeds.ToArray());
        Assert.Equal(ks.Choice.Other, k.ChoiceType);
        Assert.Equal(-5, k.ChoiceAsOther.N);
        Assert.False(k.ChoiceAsLeaf.IsPresent);
        Assert.Equal(2, k.Strings.Length);
        Assert.Equal("βγ", k.Strings.GetString(1));
        Assert.Equal(11, k.NestedAsRoot.N);
        Assert.Equal("inner", k.NestedAsRoot.Text);
        Assert.Equal(0.0, k.Big);
    }

    [Fact]
    public void KitchenSink_Defaults_AreTheSchemas()
    {
        var b = new FbBuilder(1024);
        var s = b.CreateString("x");
        var root = ks.Sink.Build(b).S(s).End();
        b.Finish(root.Value, ks.Sink.FileIdentifier);
        var k = ks.Sink.GetRoot(b.WrittenSpan);
        Assert.True(ks.Sink.Verify(b.WrittenSpan));
        Assert.True(k.B);
        Assert.Equal(-8, k.I8);
        Assert.Equal(200, k.U8);
        Assert.Equal(-1, k.I32);
        // u64's schema default (18446744073709551615) is not checked: flatc 2.0.8's binary schema
        // stores it as 0, so the IR (and every generated reader but flatc's own C++) says 0.
        Assert.Equal(1.5f, k.F32);
        Assert.Equal(double.NegativeInfinity, k.F64);
        Assert.Null(k.Opt);
        Assert.Equal(ks.inner.Flags.A | ks.inner.Flags.B, k.Flags);
        Assert.Equal(ks.inner.Signed.Neg, k.Signed);
        Assert.Equal(double.PositiveInfinity, k.Big);
        Assert.Equal(ks.Choice.NONE, k.ChoiceType);
    }

    [Fact]
    public void Required_Field_Missing_IsRefused()
    {
        var b = new FbBuilder(256);
        var e = Assert.Throws<InvalidOperationException>(() => ks.Sink.Build(b).End());
        Assert.Contains("ks.Sink.s is required", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnionOfStruct_RoundTrips()
    {
        var b = new FbBuilder(512);
        var s = b.CreateString("x");
        var a = ks.inner.Aligned.CreateOffset(b, new ks.inner.Aligned { X = 4, Y = 5, Z = 6 });
        var root = ks.Sink.Build(b).S(s).ChoiceAsInnerAligned(a).End();
        b.Finish(root.Value, ks.Sink.FileIdentifier);
        Assert.True(ks.Sink.Verify(b.WrittenSpan));
        var k = ks.Sink.GetRoot(b.WrittenSpan);
        Assert.Equal(ks.Choice.inner_Aligned, k.ChoiceType);
        Assert.Equal(5f, k.ChoiceAsInnerAligned.Y);
    }

    // A vector filled in place after it is claimed (an image written straight into the frame)
    // must be byte for byte what CreateVector makes from a span: same padding and alignment, so
    // flatc's readers see the same message (KitchenSink_BuiltInCSharp_IsVerifiedAndReadByFlatcsCppCode).
    [Fact]
    public void Vectors_FilledInPlace_AreTheSameBytesAsVectorsFromASpan()
    {
        byte[] fromSpans = BuildSink(new FbBuilder(4096), inPlace: false).ToArray();
        byte[] inPlace = BuildSink(new FbBuilder(4096), inPlace: true).ToArray();
        Assert.Equal(fromSpans, inPlace);
        Assert.True(ks.Sink.Verify(inPlace));
        Assert.Equal([ks.inner.Signed.Pos, ks.inner.Signed.Neg], ks.Sink.GetRoot(inPlace).Signeds.ToArray());

        // After a 5-byte string the 4-byte floats need padding: in place and from a span agree.
        for (int n = 0; n <= 9; n++)
        {
            var b = new FbBuilder(512);
            byte[] expected = BuildSample(b, 7, "odd", n).ToArray();
            b.Reset();
            var l = b.CreateString("odd");
            var v = fltest.Sample.CreateValuesVector(b, n, out Span<float> vals);
            for (int i = 0; i < n; i++) vals[i] = i * 0.5f;
            var root = fltest.Sample.Build(b).Id(7).Label(l).Position(new fltest.Vec3 { X = 1, Y = 2, Z = 3 }).Values(v).End();
            b.Finish(root.Value, fltest.Sample.FileIdentifier);
            Assert.Equal(expected, b.WrittenSpan.ToArray());
        }

        // 8-byte doubles after strings of every length mod 8: the element alignment, not just the
        // length word's, decides the padding.
        for (int len = 0; len < 8; len++)
        {
            byte[][] built = new byte[2][];
            for (int k = 0; k < 2; k++)
            {
                var b = new FbBuilder(512);
                var frame = b.CreateString(new string('f', len));
                var header = common.Header.Build(b).Seq(9).FrameId(frame).End();
                VectorOffset jv;
                if (k == 0)
                {
                    jv = robot.Command.CreateJointsVector(b, [0.5, -1.25, 3]);
                }
                else
                {
                    jv = robot.Command.CreateJointsVector(b, 3, out Span<double> j);
                    j[0] = 0.5;
                    j[1] = -1.25;
                    j[2] = 3;
                }
                b.Finish(robot.Command.Build(b).Header(header).Joints(jv).End().Value, robot.Command.FileIdentifier);
                built[k] = b.WrittenSpan.ToArray();
                Assert.True(robot.Command.Verify(built[k]));
            }
            Assert.Equal(built[0], built[1]);
            Assert.Equal(-1.25, robot.Command.GetRoot(built[1]).Joints[1]);
        }
    }

    [Fact]
    public void Vector_InPlace_RefusesANegativeCount_AndOneThatDoesNotFit()
    {
        var b = new FbBuilder(64);
        Assert.Throws<ArgumentOutOfRangeException>(() => b.CreateUninitializedVector<int>(-1, 4, out _));
        var e = Assert.Throws<FlatlaneException>(() => fltest.Sample.CreateValuesVector(b, 1000, out _));
        Assert.Equal(ErrorCode.MessageTooLarge, e.ErrorCode);
        Assert.Throws<OverflowException>(() => b.CreateUninitializedVector<long>(int.MaxValue / 4, 8, out _));
        Assert.Equal(0, b.Size);  // nothing was claimed
        var empty = fltest.Sample.CreateValuesVector(b, 0, out Span<float> none);
        Assert.Equal(0, none.Length);
        Assert.Equal(4, b.Size);  // the length word alone
        Assert.NotEqual(0, empty.Value);
    }

    [Fact]
    public void Builder_Overflow_IsMessageTooLarge()
    {
        var b = new FbBuilder(64);
        var e = Assert.Throws<FlatlaneException>(() => b.CreateString(new string('x', 100)));
        Assert.Equal(ErrorCode.MessageTooLarge, e.ErrorCode);
    }

    [Fact]
    public void Verifier_Rejects_MalformedBuffers()
    {
        var b = new FbBuilder(4096);
        byte[] good = BuildSink(b).ToArray();
        Assert.True(ks.Sink.Verify(good));
        Assert.False(ks.Sink.Verify(ReadOnlySpan<byte>.Empty));
        Assert.False(ks.Sink.Verify(new byte[3]));
        Assert.False(ks.Sink.Verify(new byte[64]));             // root offset 0
        // Every truncation fails (except of the up to 3 padding bytes after the first string written).
        for (int n = 0; n < good.Length - 3; n++) Assert.False(ks.Sink.Verify(good.AsSpan(0, n)), $"truncated to {n} of {good.Length}");
        // Wrong file identifier.
        byte[] bad = (byte[])good.Clone();
        bad[4] ^= 0xff;
        Assert.False(ks.Sink.Verify(bad));
        // Root offset beyond the end.
        bad = (byte[])good.Clone();
        BitConverter.TryWriteBytes(bad.AsSpan(0, 4), good.Length + 4);
        Assert.False(ks.Sink.Verify(bad));
        // A string length pointing past the end: find "required" and corrupt its length.
        bad = (byte[])good.Clone();
        int at = bad.AsSpan().IndexOf("required"u8);
        BitConverter.TryWriteBytes(bad.AsSpan(at - 4, 4), 100000);
        Assert.False(ks.Sink.Verify(bad));
        // The terminating zero of a string.
        bad = (byte[])good.Clone();
        bad[at + 8] = (byte)'!';
        Assert.False(ks.Sink.Verify(bad));
        // A vtable offset pointing outside the buffer.
        bad = (byte[])good.Clone();
        int root = BitConverter.ToInt32(bad, 0);
        BitConverter.TryWriteBytes(bad.AsSpan(root, 4), -100000);
        Assert.False(ks.Sink.Verify(bad));
        // Random byte flips never crash the verifier, and what it accepts reads without throwing
        // out-of-bounds errors outside the buffer (all reads are span-checked).
        var rng = new Random(7);
        for (int i = 0; i < 2000; i++)
        {
            bad = (byte[])good.Clone();
            for (int j = 0; j < 3; j++) bad[rng.Next(bad.Length)] = (byte)rng.Next(256);
            if (ks.Sink.Verify(bad))
            {
                var k = ks.Sink.GetRoot(bad);
                _ = k.S;
                _ = k.Leaf.Text;
                for (int e = 0; e < k.Leaves.Length; e++) _ = k.Leaves[e].Text;
                for (int e = 0; e < k.Strings.Length; e++) _ = k.Strings[e];
                _ = k.Arrays.Length;
                _ = k.ChoiceAsOther.N;
            }
        }
    }

    // The verifier's field lookups check the table and its vtable themselves (they no longer go
    // through Slice): called on positions StartTable never approved, they answer false, never
    // read outside the buffer, never throw.
    [Fact]
    public void Verifier_FieldLookups_OutsideTheBuffer_AreRefused()
    {
        byte[] buf = new byte[16];
        BitConverter.TryWriteBytes(buf.AsSpan(8, 4), -100);  // a table at 8 whose vtable would lie at 108
        var v = new FbVerifier(buf);
        Assert.False(v.Field(8, 0, 4, 4));
        Assert.False(v.Field(14, 0, 4, 4));   // the table's soffset itself runs past the end
        Assert.False(v.Field(-4, 0, 4, 4));
        Assert.False(v.OffsetField(8, 0, false, out int t));
        Assert.Equal(0, t);
        Assert.False(v.VectorField(100, 1, 1, 1, false));
        // A vtable inside, whose slot for field 5 (bytes 18-19) would run past the end: refused, not read.
        BitConverter.TryWriteBytes(buf.AsSpan(8, 4), 4);      // vtable at 4
        BitConverter.TryWriteBytes(buf.AsSpan(4, 2), (ushort)60);  // claims 28 slots
        Assert.True(v.Field(8, 3, 4, 4));     // slot at 14-15 is inside and holds 0: absent
        Assert.False(v.Field(8, 5, 4, 4));
        Assert.True(v.Field(8, 40, 4, 4));    // beyond the vtable's size: absent, as FlatBuffers says
    }

    [Fact]
    public void Type_Identity_MatchesTheIr()
    {
        Assert.Equal("fltest.Sample", fltest.Sample.TypeName);
        Assert.Equal(0xb3f396f3a97116deUL, fltest.Sample.TypeHash);
        Assert.Equal("RBC1", robot.Command.FileIdentifier);
        Assert.Null(robot.Telemetry.FileIdentifier);
        Assert.Equal("fltest.Samples.samples", fltest.Samples.SamplesChannel.Name);
        Assert.Equal(ChannelKind.Topic, fltest.Samples.SamplesChannel.Spec.Kind);
        Assert.Equal(65536, fltest.Samples.SamplesChannel.Spec.RingCapacity);
        Assert.Equal(Overflow.Fail, fltest.Samples.Strict.Spec.Overflow);
        Assert.Equal(1 << 20, fltest.Bulk.Blobs.Spec.MaxMessage);
        Assert.True(fltest.Calc.Count.Streaming);
        Assert.False(fltest.Calc.Add.Streaming);
        Assert.Equal(WaitStrategy.Blocking, robot.Planners.Jobs.Spec.Wait);
    }

    [Fact]
    public void Builder_Reuse_AllocatesNothing()
    {
        var b = new FbBuilder(4096);
        BuildSample(b, 1, "warm", 8);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            b.Reset();
            var l = b.CreateString("label");
            var root = fltest.Sample.Build(b).Id((ulong)i).Label(l).End();
            b.Finish(root.Value);
            var s = fltest.Sample.GetRoot(b.WrittenSpan);
            if (!fltest.Sample.Verify(b.WrittenSpan) || s.Id != (ulong)i) Assert.Fail("bad message");
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}

/// <summary>flatc's own C++ parser reads what the C# builders write (every kind of field of kitchen_sink.fbs).</summary>
public class FlatcReadsCSharpTests
{
    private static string FlatcJson(string schema, ReadOnlySpan<byte> buffer, string ext, params string[] includes)
    {
        string dir = System.IO.Directory.CreateTempSubdirectory("flatlane-cs-").FullName;
        try
        {
            string bin = System.IO.Path.Combine(dir, "m." + ext);
            System.IO.File.WriteAllBytes(bin, buffer.ToArray());
            var psi = new System.Diagnostics.ProcessStartInfo("flatc") { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (string a in (string[])["--json", "--strict-json", "--defaults-json", "-o", dir, .. includes, schema, "--", bin]) psi.ArgumentList.Add(a);
            using var p = System.Diagnostics.Process.Start(psi)!;
            string err = p.StandardError.ReadToEnd() + p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, "flatc failed: " + err);
            return System.IO.File.ReadAllText(System.IO.Path.Combine(dir, "m.json"));
        }
        finally
        {
            System.IO.Directory.Delete(dir, true);
        }
    }

    // A vector of unions (schema/union_vectors.fbs): Text "a", Num -9, Pt (1.5, -2.5), Text "b".
    internal static ReadOnlySpan<byte> BuildBag(FbBuilder b)
    {
        b.Reset();
        Span<int> items = stackalloc int[4];
        var a = b.CreateString("a");
        items[0] = uv.Text.Build(b).S(a).End().Value;  // a table's strings come before it
        items[1] = uv.Num.Build(b).N(-9).End().Value;
        items[2] = uv.Pt.CreateOffset(b, new uv.Pt { X = 1.5f, Y = -2.5f }).Value;
        var bs = b.CreateString("b");
        items[3] = uv.Text.Build(b).S(bs).End().Value;
        var types = uv.Bag.CreateItemsTypeVector(b, [uv.Item.Text, uv.Item.Num, uv.Item.Pt, uv.Item.Text]);
        var vec = uv.Bag.CreateItemsVector(b, items);
        var root = uv.Bag.Build(b).Id(42).ItemsType(types).Items(vec).End();
        b.Finish(root.Value, uv.Bag.FileIdentifier);
        return b.WrittenSpan;
    }

    internal static void ExpectBag(byte[] buf)
    {
        Assert.True(uv.Bag.Verify(buf));
        var bag = uv.Bag.GetRoot(buf);
        Assert.Equal(42ul, bag.Id);
        Assert.Equal(7, bag.Tail);
        Assert.Equal(4, bag.ItemsLength);
        Assert.Equal(new[] { uv.Item.Text, uv.Item.Num, uv.Item.Pt, uv.Item.Text }, bag.ItemsType.ToArray());
        Assert.Equal("a", bag.ItemsAsText(0).S);
        Assert.Equal(-9, bag.ItemsAsNum(1).N);
        Assert.Equal(1.5f, bag.ItemsAsPt(2).X);
        Assert.Equal(-2.5f, bag.ItemsAsPt(2).Y);
        Assert.Equal("b", bag.ItemsAsText(3).S);
        Assert.False(bag.ItemsAsNum(0).IsPresent);  // another member: default
        Assert.Throws<ArgumentOutOfRangeException>(() => uv.Bag.GetRoot(buf).ItemsAsText(4));
    }

    [Fact]
    public void VectorOfUnions_RoundTrips_AndAMismatchedTypeVectorFailsVerification()
    {
        var b = new FbBuilder(4096);
        byte[] buf = BuildBag(b).ToArray();
        ExpectBag(buf);
        // Three member types for four members: refused. So is a member offset pointing outside.
        b.Reset();
        var x = b.CreateString("x");
        int t = uv.Text.Build(b).S(x).End().Value;
        var types = uv.Bag.CreateItemsTypeVector(b, [uv.Item.Text, uv.Item.Text]);
        var vec = uv.Bag.CreateItemsVector(b, [t]);
        b.Finish(uv.Bag.Build(b).ItemsType(types).Items(vec).End().Value, uv.Bag.FileIdentifier);
        Assert.False(uv.Bag.Verify(b.WrittenSpan));
        byte[] bad = (byte[])buf.Clone();
        int itemsVector = Fb.VectorOf(bad, Fb.Root(bad), 2, out int n);
        Assert.Equal(4, n);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(itemsVector + 4 + 4 * 1), 1u << 20);
        Assert.False(uv.Bag.Verify(bad));
    }

    [Fact]
    public void VectorOfUnions_BuiltInCSharp_IsReadByFlatcsCppCode_AndTheOtherWayRound()
    {
        var b = new FbBuilder(4096);
        byte[] buf = BuildBag(b).ToArray();
        string file = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"flatlane-cs-bag-{Environment.ProcessId}.uv");
        System.IO.File.WriteAllBytes(file, buf);
        try
        {
            using (var peer = TypedPeers.StartCpp("check-bag", file))
            {
                Assert.Equal("done bag", peer.Expect("done", TimeSpan.FromSeconds(20)));
                Assert.Equal(0, peer.WaitExit());
            }
            System.IO.File.Delete(file);
            using (var peer = TypedPeers.StartCpp("write-bag", file))
            {
                Assert.Equal("done write", peer.Expect("done", TimeSpan.FromSeconds(20)));
                Assert.Equal(0, peer.WaitExit());
            }
            ExpectBag(System.IO.File.ReadAllBytes(file));
        }
        finally
        {
            System.IO.File.Delete(file);
        }
    }

    [Fact]
    public void KitchenSink_BuiltInCSharp_IsVerifiedAndReadByFlatcsCppCode()
    {
        // flatc --json cannot read unions of structs, flatc's C++ code can: the C++ peer checks every field.
        var b = new FbBuilder(4096);
        byte[] buf = MessageTests.BuildSink(b).ToArray();
        string file = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"flatlane-cs-sink-{Environment.ProcessId}.ks");
        System.IO.File.WriteAllBytes(file, buf);
        try
        {
            using var peer = TypedPeers.StartCpp("check-sink", file);
            Assert.Equal("done sink", peer.Expect("done", TimeSpan.FromSeconds(20)));
            Assert.Equal(0, peer.WaitExit());
        }
        finally
        {
            System.IO.File.Delete(file);
        }
    }

    [Fact]
    public void RobotCommand_WithIdentifierAndIncludes_IsReadByFlatc()
    {
        var b = new FbBuilder(1024);
        var frame = b.CreateString("base");
        var header = common.Header.Build(b).Seq(9).StampNs(-4).FrameId(frame).End();
        Span<double> joints = stackalloc double[] { 0.5, -1.25 };
        var jv = robot.Command.CreateJointsVector(b, joints);
        var pose = new common.Pose { Position = new common.Vec3 { X = 1 }, Orientation = new common.Quat { W = 1 } };
        var root = robot.Command.Build(b).Header(header).Target(pose).Speed(0.75f).Mode(robot.Mode.Auto).Joints(jv).End();
        b.Finish(root.Value, robot.Command.FileIdentifier);
        string repo = Flatlane.Tests.Build.RepoRoot;
        string ex = System.IO.Path.Combine(repo, "schema", "examples");
        string json = FlatcJson(System.IO.Path.Combine(ex, "robot_cell.fbs"), b.WrittenSpan, "bin", "-I", ex,
            "-I", System.IO.Path.Combine(repo, "generator", "flatlane_gen", "schema"));
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        var c = doc.RootElement;
        Assert.Equal(9, c.GetProperty("header").GetProperty("seq").GetInt64());
        Assert.Equal("base", c.GetProperty("header").GetProperty("frame_id").GetString());
        Assert.Equal(1.0, c.GetProperty("target").GetProperty("position").GetProperty("x").GetDouble());
        Assert.Equal(1.0, c.GetProperty("target").GetProperty("orientation").GetProperty("w").GetDouble());
        Assert.Equal(0.75, c.GetProperty("speed").GetDouble());
        Assert.Equal("Auto", c.GetProperty("mode").GetString());
        Assert.Equal(-1.25, c.GetProperty("joints")[1].GetDouble());
    }
}

/// <summary>A nested_flatbuffer field must hold a valid buffer of its type, as flatc's verifiers require.</summary>
public class NestedFlatBufferTests
{
    [Fact]
    public void Invalid_Nested_Buffer_FailsVerification()
    {
        var b = new FbBuilder(1024);
        var s = b.CreateString("x");
        var nested = ks.Sink.CreateNestedVector(b, [1, 2, 3]);
        var root = ks.Sink.Build(b).S(s).Nested(nested).End();
        b.Finish(root.Value, ks.Sink.FileIdentifier);
        Assert.False(ks.Sink.Verify(b.WrittenSpan));
    }
}
