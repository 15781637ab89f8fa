using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Flatlane;

// Blittable mirrors of the structs in runtime/c/include/flatlane/flatlane_c.h. Field order and
// widths must match the header exactly; flatlane_options carries its own size, which the native
// side checks, and the tests round-trip every struct through real calls.

[StructLayout(LayoutKind.Sequential)]
internal struct NativeOptions
{
    public uint StructSize;
    public int OpenMode;
    public ulong RingCapacity;
    public uint MaxFramePayload;
    public uint ChunkSize;
    public uint FileMode;
    public int WaitStrategy;
    public long SpinBudgetNs;
    public long LivenessIntervalNs;
    public ulong MaxMessageSize;
    public IntPtr TypeName;
    public ulong TypeHash;
    public int UnlinkOnClose;
    public int Reserved0;
}

[StructLayout(LayoutKind.Sequential)]
internal struct NativeStats
{
    public ulong Frames;
    public ulong Messages;
    public ulong Bytes;
    public ulong OccupancyBytes;
    public ulong CapacityBytes;
    public ulong HeldFrames;
    public ulong DroppedPartialMessages;
    public uint MaxFramePayload;
    public uint ChunkSize;
}

[StructLayout(LayoutKind.Sequential)]
internal struct NativeFrame
{
    public IntPtr Data;
    public ulong Size;
    public ulong Seq;
    public ulong Token;
    public uint Flags;
    public uint ChunkIndex;
    public uint ChunkCount;
    public uint Reserved0;
    public ulong MessageSize;
}

[StructLayout(LayoutKind.Sequential)]
internal struct NativeMessage
{
    public IntPtr Data;
    public ulong Size;
    public ulong Seq;
    public ulong Token;
    public int ZeroCopy;
    public int Reserved0;
}

internal sealed class WriterHandle : SafeHandle
{
    public WriterHandle() : base(IntPtr.Zero, ownsHandle: true) { }
    public override bool IsInvalid => handle == IntPtr.Zero;
    protected override bool ReleaseHandle()
    {
        Native.flatlane_writer_destroy(handle);
        return true;
    }
}

internal sealed class ReaderHandle : SafeHandle
{
    public ReaderHandle() : base(IntPtr.Zero, ownsHandle: true) { }
    public override bool IsInvalid => handle == IntPtr.Zero;
    protected override bool ReleaseHandle()
    {
        Native.flatlane_reader_destroy(handle);
        return true;
    }
}

// [SuppressGCTransition] is only on calls that return in bounded time without blocking (no
// waits, at most one futex wake): a call that can sleep must keep the GC transition, or the
// runtime could not suspend this thread for a collection while it sleeps.
//
// A blocking import that has a transition-free poll twin (the hot receives and reserves) is
// reached through a [MethodImpl(NoInlining)] wrapper. The JIT compiles a P/Invoke inline into its
// caller and sets up the P/Invoke frame for it in the caller's prolog
// (CORINFO_HELP_INIT_PINVOKE_FRAME: a call into the runtime and a TLS lookup), on every call: a
// poll-first method such as Reader.ReadOnce or TopicPublisher.Loan paid that per message even
// when the poll found what it wanted. Behind the wrapper the frame is built only when the
// blocking call is really made.
internal static unsafe partial class Native
{
    public const string Library = "flatlane_c";
    public const int AbiVersion = 5;

    [LibraryImport(Library)]
    public static partial int flatlane_abi_version();

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial IntPtr flatlane_errc_name(int code);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial IntPtr flatlane_last_error();

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial int flatlane_last_error_code();

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial void flatlane_options_init(NativeOptions* opts);

    // Once per endpoint (EndpointGate's first entry); it may read /proc for the main thread.
    [LibraryImport(Library)]
    public static partial int flatlane_thread_identity(ulong* stackLo, ulong* stackSize, uint** alive);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int flatlane_unlink(string name);

    // ---- writer

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int flatlane_writer_open(string name, NativeOptions* opts, out WriterHandle handle);

    [LibraryImport(Library)]
    public static partial int flatlane_writer_peer_attached(WriterHandle w);

    [LibraryImport(Library)]
    [SuppressGCTransition]
    public static partial void flatlane_writer_stats(WriterHandle w, NativeStats* stats);

    [LibraryImport(Library)]
    public static partial void flatlane_writer_close(WriterHandle w);

    [LibraryImport(Library)]
    public static partial void flatlane_writer_destroy(IntPtr w);

    // ---- reader

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int flatlane_reader_open(string name, NativeOptions* opts, out ReaderHandle handle);

    [LibraryImport(Library)]
    public static partial int flatlane_reader_peer_attached(ReaderHandle r);

    [LibraryImport(Library)]
    public static partial void flatlane_reader_close(ReaderHandle r);

    [LibraryImport(Library)]
    public static partial void flatlane_reader_destroy(IntPtr r);

    // ---- hot path: raw handles
    //
    // Writer and Reader guard these calls with their own gate (an endpoint is single-threaded,
    // and Dispose waits for the gate before destroying), which replaces the two interlocked
    // reference-count updates a SafeHandle parameter costs on every call. The *_poll imports are
    // the same native functions declared with [SuppressGCTransition]; they are only ever called
    // with a zero timeout, where the call cannot block.

    [LibraryImport(Library, EntryPoint = "flatlane_writer_reserve")]
    private static partial int writer_reserve_transition(IntPtr w, ulong n, long timeoutNs, byte** outPtr);

    // Out of line, so that its P/Invoke frame is not built by every caller (see the class note).
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int writer_reserve(IntPtr w, ulong n, long timeoutNs, byte** outPtr) => writer_reserve_transition(w, n, timeoutNs, outPtr);

    [LibraryImport(Library, EntryPoint = "flatlane_writer_reserve")]
    [SuppressGCTransition]
    public static partial int writer_reserve_poll(IntPtr w, ulong n, long zeroTimeout, byte** outPtr);

    // The poll before a blocking reserve: no `demand` raised (see flatlane_c.h).
    [LibraryImport(Library, EntryPoint = "flatlane_writer_try_reserve")]
    [SuppressGCTransition]
    public static partial int writer_try_reserve(IntPtr w, ulong n, byte** outPtr);

    [LibraryImport(Library, EntryPoint = "flatlane_writer_commit")]
    [SuppressGCTransition]
    public static partial int writer_commit(IntPtr w, ulong used);

    [LibraryImport(Library, EntryPoint = "flatlane_writer_commit_tail")]
    [SuppressGCTransition]
    public static partial int writer_commit_tail(IntPtr w, ulong used);

    // Where the ring and the writer's cursor are (WriterFastPath runs reserve/commit on them).
    [LibraryImport(Library, EntryPoint = "flatlane_writer_get_fast_path")]
    [SuppressGCTransition]
    public static partial void writer_get_fast_path(IntPtr w, NativeWriterFastPath* fastPath);

    // One FUTEX_WAKE at most: bounded, so no GC transition.
    [LibraryImport(Library, EntryPoint = "flatlane_writer_wake_reader")]
    [SuppressGCTransition]
    public static partial void writer_wake_reader(IntPtr w);

    [LibraryImport(Library, EntryPoint = "flatlane_writer_write_message")]
    public static partial int writer_write_message(IntPtr w, byte* data, ulong size, long timeoutNs);

    [LibraryImport(Library, EntryPoint = "flatlane_reader_read")]
    private static partial int reader_read_transition(IntPtr r, long timeoutNs, NativeFrame* frame);

    // Out of line, so that its P/Invoke frame is not built by every caller (see the class note).
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int reader_read(IntPtr r, long timeoutNs, NativeFrame* frame) => reader_read_transition(r, timeoutNs, frame);

    [LibraryImport(Library, EntryPoint = "flatlane_reader_read")]
    [SuppressGCTransition]
    public static partial int reader_read_poll(IntPtr r, long zeroTimeout, NativeFrame* frame);

    [LibraryImport(Library, EntryPoint = "flatlane_reader_release")]
    [SuppressGCTransition]
    public static partial int reader_release(IntPtr r, ulong token);

    // Where the ring and the reader's cursor are (ReaderFastPath reads and releases on them).
    [LibraryImport(Library, EntryPoint = "flatlane_reader_get_fast_path")]
    [SuppressGCTransition]
    public static partial void reader_get_fast_path(IntPtr r, NativeReaderFastPath* fastPath);

    // One FUTEX_WAKE at most: bounded, so no GC transition.
    [LibraryImport(Library, EntryPoint = "flatlane_reader_wake_writer")]
    [SuppressGCTransition]
    public static partial void reader_wake_writer(IntPtr r);

    [LibraryImport(Library, EntryPoint = "flatlane_reader_read_message")]
    public static partial int reader_read_message(IntPtr r, long timeoutNs, NativeMessage* message);

    [LibraryImport(Library, EntryPoint = "flatlane_reader_release_message")]
    [SuppressGCTransition]
    public static partial void reader_release_message(IntPtr r, ulong token);

    [LibraryImport(Library, EntryPoint = "flatlane_reader_stats")]
    [SuppressGCTransition]
    public static partial void reader_stats(IntPtr r, NativeStats* stats);

    // ---- helpers

    // Negative = wait forever (null, Timeout.InfiniteTimeSpan or any negative span).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long ToNanoseconds(TimeSpan? timeout)
    {
        if (timeout is not TimeSpan t || t.Ticks < 0) return -1;
        return t.Ticks > long.MaxValue / 100 ? long.MaxValue : t.Ticks * 100;
    }

    public static string LastErrorMessage()
    {
        return Marshal.PtrToStringUTF8(flatlane_last_error()) ?? string.Empty;
    }

    public static string ErrcName(int code) => Marshal.PtrToStringUTF8(flatlane_errc_name(code)) ?? "unknown";
}
