using System;
using Flatlane.FlatBuffers;

namespace Flatlane.Typed
{
    /// <summary>
    /// A FlatBuffers table that can travel on a channel: generated for every table by
    /// <c>flatlane-gen --lang csharp</c>. The type name and hash are what endpoints write into the
    /// segment header and check on attach (PROTOCOL.md §3.5), the same constants as in C++ and Python.
    /// </summary>
    public interface IFlatlaneMessage<TSelf> where TSelf : IFlatlaneMessage<TSelf>, allows ref struct
    {
        /// <summary>Fully qualified FlatBuffers name, e.g. <c>robot.Command</c>.</summary>
        static abstract string TypeName { get; }
        /// <summary>64-bit type hash of the definition (docs/SCHEMA.md, "Type hash").</summary>
        static abstract ulong TypeHash { get; }
        /// <summary>The schema's file identifier when this table is its root type, else null.</summary>
        static abstract string? FileIdentifier { get; }
        /// <summary>Checks a whole message (root offset, identifier, every field this table reaches).</summary>
        static abstract bool Verify(ReadOnlySpan<byte> buffer);
        /// <summary>A view of the root table of <paramref name="buffer"/> (no verification: call <see cref="Verify"/> first).</summary>
        static abstract TSelf GetRoot(ReadOnlySpan<byte> buffer);
    }
}

namespace flatlane
{
    using Flatlane.FlatBuffers;
    using Flatlane.Typed;

    /// <summary>
    /// <c>flatlane.Void</c> from flatlane.fbs: no data. The reply type of topics and pipelines and
    /// the request or reply of service methods that need none. It ships with the runtime (like the
    /// Python package's) so that several generated schemas can share it.
    /// </summary>
    public readonly ref struct Void : IFlatlaneMessage<Void>
    {
        /// <summary>The type hash flatlane-gen computes for flatlane.Void (a test checks it against the IR).</summary>
        public const ulong Hash = 0x41548898504d151d;

        private readonly ReadOnlySpan<byte> _buf;
        private readonly int _pos;

        /// <summary>The table at <paramref name="pos"/>.</summary>
        public Void(ReadOnlySpan<byte> buf, int pos)
        {
            _buf = buf;
            _pos = pos;
        }

        /// <inheritdoc/>
        public static string TypeName => "flatlane.Void";
        /// <inheritdoc/>
        public static ulong TypeHash => Hash;
        /// <inheritdoc/>
        public static string? FileIdentifier => null;

        /// <inheritdoc/>
        public static bool Verify(ReadOnlySpan<byte> buffer)
        {
            var v = new FbVerifier(buffer);
            return v.VerifyRoot(null, out int root) && VerifyTable(ref v, root);
        }

        /// <summary>Verifies the table at <paramref name="table"/>.</summary>
        public static bool VerifyTable(ref FbVerifier v, int table) => v.StartTable(table) && v.EndTable();

        /// <inheritdoc/>
        public static Void GetRoot(ReadOnlySpan<byte> buffer) => new(buffer, Fb.Root(buffer));

        /// <summary>Writes an empty table.</summary>
        public static Offset<Void> Create(FbBuilder b)
        {
            b.StartTable(0);
            return new Offset<Void>(b.EndTable());
        }

        /// <summary>The writable view generated tables have (Void has no fields to write).</summary>
        public readonly ref struct Mutable
        {
            private readonly Span<byte> _buf;
            private readonly int _pos;

            /// <summary>The table at <paramref name="pos"/>.</summary>
            public Mutable(Span<byte> buf, int pos)
            {
                _buf = buf;
                _pos = pos;
            }

            /// <summary>The root table of <paramref name="buffer"/>.</summary>
            public static Mutable GetRoot(Span<byte> buffer) => new(buffer, Fb.Root(buffer));

            /// <summary>False for a sub-table field that is not set.</summary>
            public bool IsPresent => _pos != 0;

            /// <summary>The read-only view.</summary>
            public Void View => new(_buf, _pos);
        }
    }
}
