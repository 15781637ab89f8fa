// Where the two busy-spinning processes of a case run: as bench/platform.cpp places C++'s, the
// measuring process on the first CPU this process may use and its peer on the second. Unpinned,
// the scheduler may move a spinner onto its peer's CPU, or put one of the runtime's helper
// threads in a spinner's place, and those round trips cost microseconds that the C++ figures
// beside ours never pay.
using System;
using System.Diagnostics;

namespace Flatlane.Bench;

internal static class Cpus
{
    // On Linux, Process.ProcessorAffinity is the affinity of the process's main thread
    // (sched_getaffinity / sched_setaffinity on the pid): the thread that runs the cases.
    private static readonly long s_allowed = Allowed();

    /// <summary>
    /// Pins the measuring process to the first allowed CPU until disposed. Start every child
    /// before: a process started while this one is pinned inherits the pin (and the C++ bench
    /// would then find a single CPU).
    /// </summary>
    public static Pin Parent() => new(Nth(0));

    /// <summary>Pins a peer process (a case's child) to the second allowed CPU for its lifetime.</summary>
    public static void Child()
    {
        long cpu = Nth(1);
        if (cpu != 0) Set(cpu);
    }

    /// <summary>The pin of <see cref="Parent"/>: disposing it gives the process all its CPUs back.</summary>
    public readonly struct Pin : IDisposable
    {
        private readonly bool _pinned;

        internal Pin(long cpu)
        {
            _pinned = cpu != 0 && Nth(1) != 0 && Set(cpu);
        }

        public void Dispose()
        {
            if (_pinned) Set(s_allowed);
        }
    }

    // The n-th (0-based) CPU of the allowed set as a one-bit mask; 0 if there is none.
    private static long Nth(int n)
    {
        long rest = s_allowed;
        for (int i = 0; i < n && rest != 0; i++) rest &= rest - 1;
        return rest & -rest;
    }

    private static long Allowed()
    {
        if (!OperatingSystem.IsLinux()) return 0;
        try
        {
            using Process self = Process.GetCurrentProcess();
            return (long)self.ProcessorAffinity;
        }
        catch (PlatformNotSupportedException)
        {
            return 0;
        }
    }

    private static bool Set(long mask)
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            using Process self = Process.GetCurrentProcess();
            self.ProcessorAffinity = (IntPtr)mask;
            return true;
        }
        catch (Exception e) when (e is PlatformNotSupportedException or System.ComponentModel.Win32Exception)
        {
            return false;  // not allowed here: run unpinned, as the C++ bench does
        }
    }
}
