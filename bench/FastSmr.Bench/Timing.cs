using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace FastSmr.Bench;

/// <summary>What the benchmark commands share: a timed loop, percentiles, fdatasync.</summary>
internal static partial class Timing
{
    /// <summary>Runs <paramref name="action"/> <paramref name="warmUp"/> times, then back to back for <paramref name="seconds"/>; latencies in µs.</summary>
    public static List<double> Timed(double seconds, Action action, int warmUp = 10)
    {
        for (var i = 0; i < warmUp; i++)
        {
            action();
        }

        var latencies = new List<double>(100_000);
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed.TotalSeconds < seconds && latencies.Count < 2_000_000)
        {
            var started = Stopwatch.GetTimestamp();
            action();
            latencies.Add(Stopwatch.GetElapsedTime(started).TotalMicroseconds);
        }

        return latencies;
    }

    /// <summary>The <paramref name="q"/> quantile of sorted latencies (nearest rank).</summary>
    public static double Percentile(List<double> sorted, double q) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(q * sorted.Count) - 1)];

    /// <summary>fdatasync(2) on a handle; 0 on success.</summary>
    public static int Fdatasync(SafeFileHandle file)
    {
        var added = false;
        file.DangerousAddRef(ref added);
        try
        {
            return FdatasyncNative((int)file.DangerousGetHandle());
        }
        finally
        {
            if (added)
            {
                file.DangerousRelease();
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    internal static partial int FdatasyncNative(int fd);
}
