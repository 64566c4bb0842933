using System.Diagnostics;
using System.Globalization;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace FastSmr.Bench;

/// <summary>
/// <c>write-paths</c>: the cost of making an append durable on this machine, path by path, in one run — memcpy into a
/// mapping + fdatasync, memcpy + msync of the dirty pages, pwrite (<see cref="RandomAccess.Write(SafeFileHandle, ReadOnlySpan{byte}, long)"/>)
/// + fdatasync, and pwrite to an O_DSYNC descriptor. The file is preallocated, so no append changes its size.
/// </summary>
internal static unsafe partial class WritePaths
{
    private const int FileBytes = 256 << 20;
    private const int OpenWriteOnly = 0x1;
    private const int OpenDsync = 0x1000;
    private const int MsSync = 4;
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    public static int Run(string[] args)
    {
        var seconds = 3.0;
        string? json = null;
        string directory = Path.GetTempPath();
        var fallocate = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--seconds": seconds = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--json": json = args[++i]; break;
                case "--dir": directory = args[++i]; break;
                case "--fallocate": fallocate = true; break;
                default: Console.Error.WriteLine("usage: write-paths [--seconds S] [--json FILE] [--dir DIR] [--fallocate]"); return 2;
            }
        }

        var path = Path.Combine(directory, "fastsmr-write-paths-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + ".dat");
        var rows = new List<Dictionary<string, object>>();
        try
        {
            Prepare(path, fallocate);
            Console.WriteLine($"write-paths: {seconds} s per row on a {FileBytes >> 20} MiB file preallocated by {(fallocate ? "fallocate (unwritten extents)" : "writing zeros")} in {directory}");
            Console.WriteLine("| path | bytes per sync | syncs/s | MB/s | p50 µs | p99 µs | max µs |");
            Console.WriteLine("|---|---|---|---|---|---|---|");
            foreach (var bytes in new[] { 64, 4_096, 16_384, 262_144 })
            {
                foreach (var (name, run) in new (string, Func<string, int, double, List<double>>)[]
                {
                    ("mmap memcpy + fdatasync", MmapFdatasync), ("mmap memcpy + msync", MmapMsync),
                    ("pwrite + fdatasync", PwriteFdatasync), ("pwrite to O_DSYNC", PwriteDsync),
                })
                {
                    Prepare(path, fallocate); // a fresh file for every row: no row inherits another's pages or extents

                    rows.Add(Measure(name, path, bytes, seconds, run));
                }
            }
        }
        finally
        {
            File.Delete(path);
        }

        if (json is not null)
        {
            var report = new Dictionary<string, object>
            {
                ["benchmark"] = "write-paths",
                ["seconds_per_row"] = seconds,
                ["file_bytes"] = FileBytes,
                ["preallocation"] = fallocate ? "fallocate" : "zero-fill",
                ["directory"] = directory,
                ["rows"] = rows,
                ["machine"] = new Dictionary<string, object> { ["cores"] = Environment.ProcessorCount, ["os"] = RuntimeInformation.OSDescription, ["runtime"] = RuntimeInformation.FrameworkDescription },
                ["commit"] = Environment.GetEnvironmentVariable("FASTSMR_COMMIT") ?? "unknown",
                ["measured_at"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            };
            File.WriteAllText(json, JsonSerializer.Serialize(report, JsonOptions));
        }

        return 0;
    }

    /// <summary>Creates the file: zero-filled and synced, or reserved with fallocate (unwritten extents).</summary>
    private static void Prepare(string path, bool fallocate)
    {
        if (fallocate)
        {
            // Reserved but unwritten extents: the first write to each block must also convert its extent.
            using var file = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.ReadWrite, FileOptions.None, FileBytes);
        }
        else
        {
            using var file = new FileStream(path, FileMode.Create, FileAccess.ReadWrite, FileShare.ReadWrite);
            file.SetLength(FileBytes);
            var zero = new byte[1 << 20];
            for (var written = 0; written < FileBytes; written += zero.Length)
            {
                file.Write(zero);
            }

            file.Flush(flushToDisk: true);
        }
    }

    /// <summary>Runs appends of <paramref name="bytes"/> bytes, each made durable, for <paramref name="seconds"/>.</summary>
    private static Dictionary<string, object> Measure(string name, string path, int bytes, double seconds, Func<string, int, double, List<double>> run)
    {
        var latencies = run(path, bytes, seconds);
        latencies.Sort();
        var total = latencies.Sum();
        double P(double q) => latencies[Math.Min(latencies.Count - 1, (int)(q * latencies.Count))];
        var perSecond = latencies.Count / (total / 1e6);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {bytes} | {perSecond:F0} | {perSecond * bytes / 1e6:F1} | {P(0.5):F0} | {P(0.99):F0} | {latencies[^1]:F0} |"));
        return new Dictionary<string, object>
        {
            ["path"] = name,
            ["bytes_per_sync"] = bytes,
            ["syncs"] = latencies.Count,
            ["syncs_per_sec"] = Math.Round(perSecond),
            ["p50_us"] = Math.Round(P(0.5), 1),
            ["p99_us"] = Math.Round(P(0.99), 1),
            ["max_us"] = Math.Round(latencies[^1], 1),
        };
    }

    private static List<double> MmapFdatasync(string path, int bytes, double seconds) => Mapped(path, bytes, seconds, useMsync: false);

    private static List<double> MmapMsync(string path, int bytes, double seconds) => Mapped(path, bytes, seconds, useMsync: true);

    private static List<double> Mapped(string path, int bytes, double seconds, bool useMsync)
    {
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        using var map = MemoryMappedFile.CreateFromFile(file, null, FileBytes, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: true);
        using var view = map.CreateViewAccessor(0, FileBytes, MemoryMappedFileAccess.ReadWrite);
        byte* basePointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePointer);
        try
        {
            var source = Payload(bytes);
            var fd = (int)file.DangerousGetHandle();
            return Loop(bytes, seconds, offset =>
            {
                source.CopyTo(new Span<byte>(basePointer + offset, bytes));
                if (useMsync)
                {
                    // msync needs a page-aligned start: sync the pages this append touched.
                    var start = offset & ~4095L;
                    Check(Msync((nint)(basePointer + start), (nuint)(offset + bytes - start), MsSync), "msync");
                }
                else
                {
                    Check(Timing.FdatasyncNative(fd), "fdatasync");
                }
            });
        }
        finally
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
    }

    private static List<double> PwriteFdatasync(string path, int bytes, double seconds)
    {
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        var source = Payload(bytes);
        var fd = (int)file.DangerousGetHandle();
        return Loop(bytes, seconds, offset =>
        {
            RandomAccess.Write(file, source, offset);
            Check(Timing.FdatasyncNative(fd), "fdatasync");
        });
    }

    private static List<double> PwriteDsync(string path, int bytes, double seconds)
    {
        var fd = Open(path, OpenWriteOnly | OpenDsync, 0);
        Check(fd, "open(O_DSYNC)");
        using var file = new SafeFileHandle(fd, ownsHandle: true);
        var source = Payload(bytes);
        return Loop(bytes, seconds, offset => RandomAccess.Write(file, source, offset));
    }

    private static byte[] Payload(int bytes)
    {
        var payload = new byte[bytes];
        new Random(bytes).NextBytes(payload);
        return payload;
    }

    /// <summary>Appends back to back (wrapping at the end of the file) and returns each append's latency in µs.</summary>
    private static List<double> Loop(int bytes, double seconds, Action<long> append)
    {
        var latencies = new List<double>(100_000);
        long offset = 0;
        for (var i = 0; i < 20; i++)
        {
            append(offset); // warm-up
            offset += bytes;
        }

        var watch = Stopwatch.StartNew();
        while (watch.Elapsed.TotalSeconds < seconds && latencies.Count < 2_000_000)
        {
            if (offset + bytes > FileBytes)
            {
                offset = 0;
            }

            var started = Stopwatch.GetTimestamp();
            append(offset);
            latencies.Add(Stopwatch.GetElapsedTime(started).TotalMicroseconds);
            offset += bytes;
        }

        return latencies;
    }

    private static void Check(int result, string call)
    {
        if (result < 0)
        {
            throw new IOException(call + " failed: errno " + Marshal.GetLastPInvokeError().ToString(CultureInfo.InvariantCulture));
        }
    }

    [LibraryImport("libc", EntryPoint = "msync", SetLastError = true)]
    private static partial int Msync(nint address, nuint length, int flags);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);
}
