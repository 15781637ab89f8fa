using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Flatlane;

/// <summary>
/// Finds libflatlane_c.so. Searched in order: <c>$FLATLANE_NATIVE_DIR</c>,
/// <c>$FLATLANE_BUILD_DIR/runtime/c</c>, the application directory, then <c>build/runtime/c</c>
/// under every ancestor of the application directory (a checkout's CMake build dir), and finally
/// the platform's default search (LD_LIBRARY_PATH, ldconfig).
/// </summary>
internal static class NativeLoader
{
    public const string NativeDirVariable = "FLATLANE_NATIVE_DIR";
    public const string BuildDirVariable = "FLATLANE_BUILD_DIR";
    private const string FileName = "libflatlane_c.so";

    private static readonly object Gate = new();
    private static volatile bool _checked;

#pragma warning disable CA2255 // a library module initializer is exactly what is wanted: the resolver must be in place before the first P/Invoke
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Register()
    {
        NativeLibrary.SetDllImportResolver(typeof(NativeLoader).Assembly, Resolve);
    }

    /// <summary>Candidate paths, most specific first.</summary>
    internal static List<string> Candidates()
    {
        var list = new List<string>();
        string? nativeDir = Environment.GetEnvironmentVariable(NativeDirVariable);
        if (!string.IsNullOrEmpty(nativeDir)) list.Add(Path.Combine(nativeDir, FileName));
        string? buildDir = Environment.GetEnvironmentVariable(BuildDirVariable);
        if (!string.IsNullOrEmpty(buildDir)) list.Add(Path.Combine(buildDir, "runtime", "c", FileName));
        string baseDir = AppContext.BaseDirectory;
        list.Add(Path.Combine(baseDir, FileName));
        for (DirectoryInfo? d = new DirectoryInfo(baseDir); d != null; d = d.Parent)
            list.Add(Path.Combine(d.FullName, "build", "runtime", "c", FileName));
        return list;
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != Native.Library) return IntPtr.Zero;
        List<string> candidates = Candidates();
        foreach (string path in candidates)
        {
            if (File.Exists(path) && NativeLibrary.TryLoad(path, out IntPtr h)) return h;
        }
        if (NativeLibrary.TryLoad(FileName, assembly, searchPath, out IntPtr sys)) return sys;
        throw new DllNotFoundException(
            $"Flatlane: {FileName} not found. Build it (cmake --build <build> --target flatlane_c) and set " +
            $"{NativeDirVariable} to the directory holding it. Searched: {string.Join(", ", candidates)}, then the default library path.");
    }

    /// <summary>Fails early, with a clear message, when the loaded library speaks another ABI.</summary>
    internal static void EnsureCompatible()
    {
        if (_checked) return;
        lock (Gate)
        {
            if (_checked) return;
            int v = Native.flatlane_abi_version();
            if (v != Native.AbiVersion)
                throw new InvalidOperationException(
                    $"Flatlane: libflatlane_c speaks C ABI version {v}, this assembly expects {Native.AbiVersion}; rebuild one of them.");
            _checked = true;
        }
    }
}
