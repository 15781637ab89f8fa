using System;
using System.Linq;
using Xunit;

namespace Flatlane.Tests;

public class ErrorTests
{
    [Fact]
    public void ErrorCode_MirrorsTheNativeErrcNumbering()
    {
        // The native library names every code; the enum must agree number for number.
        foreach (ErrorCode c in Enum.GetValues<ErrorCode>())
        {
            string native = Native.ErrcName((int)c);
            string expected = string.Concat(c.ToString().Select((ch, i) =>
                char.IsUpper(ch) && i > 0 ? "_" + char.ToLowerInvariant(ch) : char.ToLowerInvariant(ch).ToString()));
            Assert.Equal(expected, native);
        }
        Assert.Equal("unknown", Native.ErrcName(Enum.GetValues<ErrorCode>().Length));
    }

    [Fact]
    public void OpenMissing_IsNotFound_WithTheChannelInTheMessage()
    {
        using var ch = new Channel("missing");
        var e = Assert.Throws<FlatlaneException>(() => new Reader(ch.Name, new ChannelOptions { Mode = OpenMode.Open }));
        Assert.Equal(ErrorCode.NotFound, e.ErrorCode);
        Assert.Contains(ch.Name, e.Message);
        Assert.Equal(ch.Name, e.Channel);
        Assert.Throws<FlatlaneException>(() => new Writer(ch.Name, new ChannelOptions { Mode = OpenMode.Open }));
    }

    [Fact]
    public void TypeIdentity_IsChecked()
    {
        using var ch = new Channel("type");
        using var w = new Writer(ch.Name, Channel.Small() with { TypeName = "robot.Command", TypeHash = 0x1234 });
        var wrongName = Assert.Throws<FlatlaneException>(() =>
            new Reader(ch.Name, new ChannelOptions { Mode = OpenMode.Open, TypeName = "robot.State", TypeHash = 0x1234 }));
        Assert.Equal(ErrorCode.TypeMismatch, wrongName.ErrorCode);
        Assert.Contains("robot.Command", wrongName.Message);
        var wrongHash = Assert.Throws<FlatlaneException>(() =>
            new Reader(ch.Name, new ChannelOptions { Mode = OpenMode.Open, TypeName = "robot.Command", TypeHash = 0x1235 }));
        Assert.Equal(ErrorCode.TypeMismatch, wrongHash.ErrorCode);
        // The right identity, and "no check" (untyped), both attach.
        using (new Reader(ch.Name, new ChannelOptions { Mode = OpenMode.Open, TypeName = "robot.Command", TypeHash = 0x1234 }))
        {
        }
        using (new Reader(ch.Name, new ChannelOptions { Mode = OpenMode.Open }))
        {
        }
    }

    [Fact]
    public void SecondWriter_IsBusy_AndCreateOfALiveSegment_AlreadyExists()
    {
        using var ch = new Channel("busy");
        using var w = new Writer(ch.Name, Channel.Small());
        Assert.Equal(ErrorCode.Busy, Assert.Throws<FlatlaneException>(() => new Writer(ch.Name, Channel.Small())).ErrorCode);
        Assert.Equal(ErrorCode.AlreadyExists,
            Assert.Throws<FlatlaneException>(() => new Reader(ch.Name, Channel.Small(OpenMode.Create))).ErrorCode);
    }

    [Fact]
    public void InvalidArguments_AreReportedAsSuch()
    {
        using var ch = new Channel("inval");
        Assert.Equal(ErrorCode.InvalidArgument,
            Assert.Throws<FlatlaneException>(() => new Writer("bad name/with slash")).ErrorCode);
        Assert.Equal(ErrorCode.InvalidArgument,
            Assert.Throws<FlatlaneException>(() => new Writer(ch.Name, Channel.Small() with { ChunkSize = 8 })).ErrorCode);
        Assert.Equal(ErrorCode.InvalidArgument,
            Assert.Throws<FlatlaneException>(() => new Writer(ch.Name, Channel.Small() with { TypeName = new string('x', 200) })).ErrorCode);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Writer(ch.Name, Channel.Small() with { RingCapacity = -1 }));
    }

    [Fact]
    public void Reserve_BeyondTheFrameLimit_IsMessageTooLarge_WithSizes()
    {
        using var ch = new Channel("toolarge");
        using var w = new Writer(ch.Name, Channel.Small());
        int n = (int)w.MaxFramePayload + 1;
        var e = Assert.Throws<FlatlaneException>(() => w.Reserve(n));
        Assert.Equal(ErrorCode.MessageTooLarge, e.ErrorCode);
        Assert.Contains($"reserve({n})", e.Message);
        Assert.Contains(w.MaxFramePayload.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => w.Reserve(-1));
    }

    [Fact]
    public void Commit_WithoutOrBeyondTheReservation_IsInvalidArgument()
    {
        using var ch = new Channel("commit");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small());
        var none = Assert.Throws<FlatlaneException>(() => w.Commit(1));
        Assert.Equal(ErrorCode.InvalidArgument, none.ErrorCode);
        Assert.Contains("no reservation", none.Message);
        w.Reserve(10);
        var over = Assert.Throws<FlatlaneException>(() => w.Commit(11));
        Assert.Contains("larger than the reservation of 10", over.Message);
        w.Commit(10);  // the reservation survived the refused commit
        using Frame f = r.Read(TimeSpan.FromSeconds(1));
        Assert.Equal(10, f.Length);
    }

    [Fact]
    public void MaxMessageSize_RefusesLargerReassemblies()
    {
        using var ch = new Channel("maxmsg");
        using var w = new Writer(ch.Name, Channel.Small());
        using var r = new Reader(ch.Name, Channel.Small() with { MaxMessageSize = 40_000 });
        w.Send(new byte[50_000], TimeSpan.FromSeconds(5));
        w.Send(new byte[] { 9 }, TimeSpan.FromSeconds(5));
        var e = Assert.Throws<FlatlaneException>(() => r.Receive(TimeSpan.FromSeconds(5)));
        Assert.Equal(ErrorCode.MessageTooLarge, e.ErrorCode);
        Assert.Contains("40000", e.Message);
        using Message m = r.Receive(TimeSpan.FromSeconds(5));  // the rest of the big one is skipped
        Assert.Equal(9, m.Data[0]);
    }
}
