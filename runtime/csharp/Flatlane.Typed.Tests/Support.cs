using System;
using System.Diagnostics;
using System.IO;
using Flatlane.FlatBuffers;
using Flatlane.Tests;
using Xunit;

namespace Flatlane.Typed.Tests;

/// <summary>
/// The messages every side of the tests builds and checks (the same rules as peers/typed_peer.cpp
/// and peers/typed_peer.py): message k carries SizeOf(k, max) elements, 0 up to max.
/// </summary>
internal static class Msgs
{
    private static readonly int[] Fixed = [0, 1, 2, 3, 7, 64, 1000];

    public static int SizeOf(ulong k, int max) => k < 7 ? Math.Min(Fixed[k], max) : k == 7 ? max : (int)(unchecked(k * 2654435761UL) % (ulong)(max + 1));

    public static string LabelOf(ulong k) => $"sample {k} β";

    public static byte BlobByte(ulong k, int i) => unchecked((byte)(k * 31 + (ulong)i * 7 + (ulong)(i >> 8)));

    public static Offset<fltest.Sample> BuildSample(FbBuilder b, ulong k, int max)
    {
        var label = b.CreateString(LabelOf(k));
        int n = SizeOf(k, max);
        b.StartVector(4, n, 4);
        for (int i = n - 1; i >= 0; i--) b.Put(i * 0.25f);
        var values = b.EndVector();
        return fltest.Sample.Build(b).Id(k).Label(label).Position(new fltest.Vec3 { X = k, Z = -1.5 }).Values(values).End();
    }

    public static void ExpectSample(fltest.Sample s, ulong k, int max)
    {
        Assert.Equal(k, s.Id);
        Assert.Equal(LabelOf(k), s.Label);
        Assert.Equal((double)k, s.Position.X);
        Assert.Equal(-1.5, s.Position.Z);
        ReadOnlySpan<float> v = s.Values;
        Assert.Equal(SizeOf(k, max), v.Length);
        for (int i = 0; i < v.Length; i++)
        {
            if (v[i] != i * 0.25f) Assert.Fail($"sample {k} value {i}: {v[i]}");
        }
    }

    public static Offset<fltest.Blob> BuildBlob(FbBuilder b, ulong k, int max)
    {
        int n = SizeOf(k, max);
        b.StartVector(1, n, 1);
        ulong sum = 0;
        for (int i = n - 1; i >= 0; i--)
        {
            byte x = BlobByte(k, i);
            sum += x;
            b.Put(x);
        }
        var data = b.EndVector();
        return fltest.Blob.Build(b).Id(k).Data(data).Checksum(sum).End();
    }

    /// <summary>Checks a blob; returns its id.</summary>
    public static ulong ExpectBlob(fltest.Blob blob, int max)
    {
        ulong k = blob.Id;
        ReadOnlySpan<byte> d = blob.Data;
        Assert.Equal(SizeOf(k, max), d.Length);
        ulong sum = 0;
        for (int i = 0; i < d.Length; i++)
        {
            if (d[i] != BlobByte(k, i)) Assert.Fail($"blob {k} byte {i}");
            sum += d[i];
        }
        Assert.Equal(sum, blob.Checksum);
        return k;
    }

    public static uint CountFor(ulong k) => (uint)(k % 7 + 1);
}

/// <summary>The peer programs: typed_peer.cpp compiled on first use, typed_peer.py run by Debian's python3.</summary>
internal static class TypedPeers
{
    private static readonly object Gate = new();
    private static string? _cpp;

    private static string PeersDir => Path.Combine(AppContext.BaseDirectory, "peers");

    private static string SourceRoot
    {
        get
        {
            // The sources the build was made from (CMAKE_HOME_DIRECTORY), so headers match the library.
            string cache = Path.Combine(Build.Dir, "CMakeCache.txt");
            if (File.Exists(cache))
            {
                foreach (string line in File.ReadLines(cache))
                {
                    if (line.StartsWith("CMAKE_HOME_DIRECTORY:INTERNAL=", StringComparison.Ordinal))
                        return line["CMAKE_HOME_DIRECTORY:INTERNAL=".Length..];
                }
            }
            return Build.RepoRoot;
        }
    }

    private static void Run(string program, params string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd() + p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed ({p.ExitCode}): {err}");
    }

    /// <summary>The C++ peer: flatc --cpp for typed_test.fbs, then g++ against the build's libflatlane.a.</summary>
    public static string Cpp
    {
        get
        {
            lock (Gate)
            {
                if (_cpp is not null) return _cpp;
                string lib = Path.Combine(Build.Dir, "runtime", "cpp", "libflatlane.a");
                if (!File.Exists(lib))
                    throw new FileNotFoundException($"{lib} missing: build the runtime (cmake --build <build> --target flatlane_runtime) and set FLATLANE_BUILD_DIR", lib);
                string src = SourceRoot;
                string outDir = Path.Combine(Build.Dir, "csharp-typed-peer");
                Directory.CreateDirectory(outDir);
                string exe = Path.Combine(outDir, "typed_peer");
                string source = Path.Combine(PeersDir, "typed_peer.cpp");
                string schema = Path.Combine(Build.RepoRoot, "tests", "cpp", "schema", "typed_test.fbs");
                if (!File.Exists(exe) || File.GetLastWriteTimeUtc(exe) < File.GetLastWriteTimeUtc(source) ||
                    File.GetLastWriteTimeUtc(exe) < File.GetLastWriteTimeUtc(lib))
                {
                    string framework = Path.Combine(Build.RepoRoot, "generator", "flatlane_gen", "schema");
                    Run("flatc", "--cpp", "-o", outDir, "-I", framework, schema, Path.Combine(framework, "flatlane.fbs"),
                        Path.Combine(Build.RepoRoot, "tests", "generator", "data", "kitchen_sink.fbs"),
                        Path.Combine(Build.RepoRoot, "runtime", "csharp", "Flatlane.Typed.Tests", "schema", "union_vectors.fbs"));
                    Run("g++", "-std=c++20", "-O1", "-I", Path.Combine(src, "runtime", "cpp", "include"), "-I", outDir,
                        "-o", exe + ".tmp", source, lib, "-lpthread", "-lrt");
                    File.Move(exe + ".tmp", exe, overwrite: true);
                }
                return _cpp = exe;
            }
        }
    }

    /// <summary>Starts the C++ peer.</summary>
    public static Peer StartCpp(params string[] args) => Peer.Start(Cpp, args);

    /// <summary>Starts the Python peer (PYTHONPATH = the build's package + flatc's Python modules of typed_test.fbs).</summary>
    public static Peer StartPython(params string[] args)
    {
        string pkg = Path.Combine(Build.Dir, "python");
        if (!Directory.Exists(Path.Combine(pkg, "flatlane")))
            throw new DirectoryNotFoundException($"{pkg}/flatlane missing: build the Python package (cmake --build <build> --target flatlane_python)");
        string modules = Path.Combine(Build.RepoRoot, "generated", "tests", "typed_test");
        string python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        return Peer.Start("/usr/bin/env", [$"PYTHONPATH={pkg}:{modules}", python, Path.Combine(PeersDir, "typed_peer.py"), .. args]);
    }

    /// <summary>Starts the C++ (<paramref name="lang"/> "cpp") or the Python peer.</summary>
    public static Peer Start(string lang, params string[] args) => lang == "cpp" ? StartCpp(args) : StartPython(args);

    public static string Hex(ulong h) => h.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
}
