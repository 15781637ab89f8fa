using System;
using System.Threading;
using Xunit;

namespace Flatlane.Tests;

// The biased gate every endpoint's native calls go through (EndpointGate.cs): the owner thread
// enters with plain stores, any other thread revokes the bias once. These tests check mutual
// exclusion across the revocation, the hand-off when the owner is inside, and disposal.
public class EndpointGateTests
{
    private sealed class Guarded
    {
        public EndpointGate Gate;
        public int Inside;      // 1 while a holder is inside: a second holder would find 1
        public long Count;      // incremented non-atomically by holders: lost updates show overlap
        public int Overlaps;

        public void Critical()
        {
            if (Interlocked.Exchange(ref Inside, 1) != 0) Interlocked.Increment(ref Overlaps);
            Count++;
            Thread.SpinWait(20);
            Count++;
            Volatile.Write(ref Inside, 0);
        }
    }

    // The owner is recognised by its stack and its alive word (flatlane_thread_identity): the
    // bounds must hold this thread's locals and not another thread's, and the other thread's word
    // must read 0 once it has exited (not necessarily when Join returns: see below).
    [Fact]
    public unsafe void ThreadIdentity_StackHoldsOnlyThisThreadsLocals_AliveEndsWithTheThread()
    {
        static (ulong Lo, ulong Size, ulong Local, IntPtr Alive) Probe()
        {
            ulong lo, size;
            uint* alive;
            Assert.Equal(0, Native.flatlane_thread_identity(&lo, &size, &alive));
            Assert.True(alive != null && *alive != 0);
            return (lo, size, (ulong)&lo, (IntPtr)alive);
        }
        var mine = Probe();
        Assert.True(mine.Size >= 64 * 1024, $"stack of {mine.Size} bytes");
        Assert.True(mine.Local - mine.Lo < mine.Size);
        Assert.Equal(mine.Alive, Probe().Alive);  // one word per thread
        (ulong Lo, ulong Size, ulong Local, IntPtr Alive) other = default;
        var t = new Thread(() => other = Probe(), 256 * 1024);
        t.Start();
        t.Join();
        Assert.True(other.Local - other.Lo < other.Size);
        Assert.False(other.Local - mine.Lo < mine.Size, "another thread's local lies in this thread's stack");
        Assert.False(mine.Local - other.Lo < other.Size, "this thread's local lies in another thread's stack");
        Assert.NotEqual(mine.Alive, other.Alive);
        // Join returns once the managed thread has finished, which can be before its OS thread
        // has run the pthread key destructors that clear the word (CI saw 1 right after Join).
        // What the gate relies on is that the word is 0 before the stack can be reused, i.e. by
        // the end of the OS thread's exit: so wait for it, boundedly.
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref *(uint*)other.Alive) == 0, TimeSpan.FromSeconds(10)),
                    "the exited thread's alive word is still nonzero after 10 s");
        Assert.NotEqual(0u, Volatile.Read(ref *(uint*)mine.Alive));
    }

    // An owner that exits leaves no bias behind, even for a thread that runs on its recycled stack
    // (glibc hands a dead thread's stack to the next thread of the same size): that thread must
    // revoke the bias, not pass as the owner.
    [Fact]
    public void OwnerThreadExit_EvenOnItsRecycledStack_TheNextThreadRevokesTheBias()
    {
        var g = new Guarded();
        void Use()
        {
            for (int i = 0; i < 3; i++)
            {
                Assert.True(g.Gate.Enter());
                g.Critical();
                g.Gate.Exit();
            }
        }
        var first = new Thread(Use, 512 * 1024);
        first.Start();
        first.Join();
        Assert.True(g.Gate.IsBiased);  // granted to the thread that just exited
        var second = new Thread(Use, 512 * 1024);
        second.Start();
        second.Join();
        Assert.False(g.Gate.IsBiased);
        Assert.Equal(0, g.Overlaps);
        Assert.Equal(12, g.Count);
    }

    [Fact]
    public void OneThread_TakesTheBias_AndKeepsIt()
    {
        var g = new Guarded();
        for (int i = 0; i < 1000; i++)
        {
            Assert.True(g.Gate.Enter());
            g.Critical();
            g.Gate.Exit();
        }
        Assert.True(g.Gate.IsBiased);
        Assert.Equal(2000, g.Count);
        Assert.True(g.Gate.EnterDisposed());
        Assert.False(g.Gate.IsBiased);
        Assert.True(g.Gate.IsDisposed);
        Assert.False(g.Gate.Enter());
        Assert.False(g.Gate.TryEnter());
        Assert.False(g.Gate.EnterDisposed());
    }

    // A Dispose that arrives while the very first entrant is inside (through the lock) must win:
    // the entrant must not become a bias owner that later walks past the closed gate.
    [Fact]
    public void Dispose_DuringTheFirstEntry_LeavesNoBias()
    {
        var g = new Guarded();
        Assert.True(g.Gate.Enter());  // first entry: through the lock, not biased yet
        Assert.False(g.Gate.IsBiased);
        Assert.False(g.Gate.TryEnter());  // nested on this thread: no fast path exists yet
        bool result = false;
        var d = new Thread(() => result = g.Gate.EnterDisposed());
        d.Start();
        Assert.False(d.Join(100));  // waits for the first entrant
        g.Gate.Exit();
        Assert.True(d.Join(5000));
        Assert.True(result);
        Assert.False(g.Gate.IsBiased);
        Assert.False(g.Gate.Enter());
        Assert.False(g.Gate.TryEnter());
    }

    [Fact]
    public void NestedEntry_OnTheOwnerThread_IsRefused()
    {
        var g = new Guarded();
        Assert.True(g.Gate.Enter());
        g.Gate.Exit();
        Assert.True(g.Gate.Enter());  // through the bias
        Assert.False(g.Gate.TryEnter());
        Assert.Throws<InvalidOperationException>(() => g.Gate.Enter());
        Assert.True(g.Gate.IsBiased);
        g.Gate.Exit();
        Assert.True(g.Gate.TryEnter());
        g.Gate.Exit();
    }

    [Fact]
    public void AnotherThread_WhileTheOwnerIsInside_IsTurnedAway_ThenTheOwnerHandsOver()
    {
        var g = new Guarded();
        Assert.True(g.Gate.Enter());
        g.Gate.Exit();  // first entry took the bias (through the lock)
        Assert.True(g.Gate.Enter());  // now through the bias
        Assert.True(g.Gate.IsBiased);
        bool got = true;
        var t = new Thread(() => got = g.Gate.TryEnter());
        t.Start();
        t.Join();
        Assert.False(got);  // the owner is inside: the other thread would queue its work
        Assert.False(g.Gate.IsBiased);
        g.Gate.Exit();  // the owner completes the revocation
        t = new Thread(() =>
        {
            got = g.Gate.TryEnter();
            if (got) g.Gate.Exit();
        });
        t.Start();
        t.Join();
        Assert.True(got);
        // The owner keeps working, through the lock now.
        Assert.True(g.Gate.Enter());
        g.Gate.Exit();
        Assert.False(g.Gate.IsBiased);
    }

    [Fact]
    public void BlockingEnter_FromAnotherThread_WaitsForTheOwnerToLeave()
    {
        var g = new Guarded();
        Assert.True(g.Gate.Enter());
        g.Gate.Exit();
        Assert.True(g.Gate.Enter());
        var entered = new ManualResetEventSlim();
        var t = new Thread(() =>
        {
            Assert.True(g.Gate.Enter());
            entered.Set();
            g.Gate.Exit();
        });
        t.Start();
        Assert.False(entered.Wait(100));  // the owner is still inside
        g.Gate.Exit();
        Assert.True(entered.Wait(5000));
        t.Join();
    }

    [Fact]
    public void Dispose_FromAnotherThread_WaitsForTheOwner_AndShutsItOut()
    {
        var g = new Guarded();
        Assert.True(g.Gate.Enter());
        g.Gate.Exit();
        Assert.True(g.Gate.Enter());
        bool result = false;
        var t = new Thread(() => result = g.Gate.EnterDisposed());
        t.Start();
        Assert.False(t.Join(100));  // the owner is still inside
        g.Gate.Exit();
        Assert.True(t.Join(5000));
        Assert.True(result);
        Assert.False(g.Gate.Enter());
        Assert.False(g.Gate.TryEnter());
    }

    // Many fresh gates, each with an owner hammering it and other threads arriving at random
    // moments (some blocking, some trying): nobody is ever inside with somebody else, whatever
    // point of the revocation the others arrive at.
    [Fact]
    public void Stress_MutualExclusion_AcrossTheRevocation()
    {
        var rng = new Random(12345);
        for (int round = 0; round < 200; round++)
        {
            var g = new Guarded();
            const int OwnerOps = 2000;
            int delay = rng.Next(0, 400);
            long othersInside = 0;
            var start = new Barrier(4);
            int refused = 0;
            var owner = new Thread(() =>
            {
                // The first thread in takes the bias: make it the owner before the others start.
                if (!g.Gate.Enter()) refused++;
                g.Gate.Exit();
                start.SignalAndWait();
                for (int i = 0; i < OwnerOps; i++)
                {
                    if (!g.Gate.Enter())
                    {
                        refused++;
                        continue;
                    }
                    g.Critical();
                    g.Gate.Exit();
                }
            });
            Thread Other(bool blocking) => new(() =>
            {
                start.SignalAndWait();
                Thread.SpinWait(delay * 50);
                for (int i = 0; i < 50; i++)
                {
                    bool got = blocking ? g.Gate.Enter() : g.Gate.TryEnter();
                    if (!got) continue;
                    g.Critical();
                    Interlocked.Increment(ref othersInside);
                    g.Gate.Exit();
                }
            });
            var threads = new[] { owner, Other(true), Other(false), Other(true) };
            foreach (var t in threads) t.Start();
            foreach (var t in threads) t.Join();
            Assert.Equal(0, refused);
            Assert.Equal(0, g.Overlaps);
            Assert.False(g.Gate.IsBiased);
            Assert.Equal(2 * (OwnerOps + othersInside), g.Count);
            Assert.True(othersInside >= 100);  // the two blocking threads always get in
        }
    }
}
