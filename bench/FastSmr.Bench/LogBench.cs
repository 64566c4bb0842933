using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using DotNext.Net.Cluster.Consensus.Raft;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
using FastSmr.Log;
using Microsoft.Win32.SafeHandles;

namespace FastSmr.Bench;

/// <summary>
/// <c>log [--quick] [--seconds S] [--dir DIR] [--json FILE]</c>: durable appends of 64 B records in batches of 1, 16,
/// 256 and 4,096 (append the batch, then one flush), FastSmr.Log against DotNext 6.12's <c>WriteAheadLog</c>
/// (ChunkSize 1 MiB, default shared-memory mode) in the same run on the same records; a single durable 4 KiB append
/// against a raw <c>pwrite</c> + <c>fdatasync</c>; allocated bytes per append and per read; reopening a large log.
/// </summary>
internal static partial class LogBench
{
    private const int RecordBytes = 64;
    private static readonly int[] Batches = [1, 16, 256, 4096];
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    public static int Run(string[] args)
    {
        var quick = false;
        double? seconds = null;
        string? json = null;
        var root = Path.GetTempPath();
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--quick": quick = true; break;
                case "--seconds": seconds = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--json": json = args[++i]; break;
                case "--dir": root = args[++i]; break;
                default: Console.Error.WriteLine("usage: log [--quick] [--seconds S] [--dir DIR] [--json FILE]"); return 2;
            }
        }

        var perRow = seconds ?? (quick ? 1.0 : 4.0);
        var reopenRecords = quick ? 1_000_000 : 10_000_000;
        var work = Fresh(Path.GetFullPath(root), "fastsmr-logbench");
        var payload = new byte[RecordBytes];
        new Random(64).NextBytes(payload);
        var report = new Dictionary<string, object>();
        try
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"log: durable appends of {RecordBytes} B records, {perRow} s per row, in {work}"));
            Console.WriteLine("| batch | FastSmr.Log records/s | DotNext WAL records/s | ratio | FastSmr p50 / p99 µs | DotNext p50 / p99 µs |");
            Console.WriteLine("|---|---|---|---|---|---|");
            var batches = new Dictionary<string, object>();
            foreach (var batch in Batches)
            {
                var ours = FastSmrBatches(Fresh(work, "fastsmr"), payload, batch, perRow);
                var theirs = DotNextBatches(Fresh(work, "dotnext"), payload, batch, perRow).GetAwaiter().GetResult();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {batch} | {ours.PerSecond:F0} | {theirs.PerSecond:F0} | {ours.PerSecond / theirs.PerSecond:F1}x | {ours.P50:F0} / {ours.P99:F0} | {theirs.P50:F0} / {theirs.P99:F0} |"));
                batches[batch.ToString(CultureInfo.InvariantCulture)] = new Dictionary<string, object>
                {
                    ["fastsmr_records_per_sec"] = Math.Round(ours.PerSecond),
                    ["dotnext_records_per_sec"] = Math.Round(theirs.PerSecond),
                    ["fastsmr_p99_us"] = Math.Round(ours.P99, 1),
                    ["dotnext_p99_us"] = Math.Round(theirs.P99, 1),
                    ["fastsmr_p50_us"] = Math.Round(ours.P50, 1),
                    ["dotnext_p50_us"] = Math.Round(theirs.P50, 1),
                    ["fastsmr_batches"] = ours.Count,
                    ["dotnext_batches"] = theirs.Count,
                };
            }

            report["batch"] = batches;

            var single = Single4K(work, perRow);
            report["single_4k"] = single;
            var (perAppend, perRead) = Allocations(Fresh(work, "alloc"), payload);
            report["fastsmr_alloc_bytes_per_append"] = perAppend;
            report["fastsmr_alloc_bytes_per_read"] = perRead;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"allocated per durable append: {perAppend} B, per record read: {perRead} B"));
            report["reopen"] = Reopen(Fresh(work, "reopen"), payload, reopenRecords);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }

        report["settings"] = new Dictionary<string, object>
        {
            ["record_bytes"] = RecordBytes,
            ["seconds_per_row"] = perRow,
            ["quick"] = quick,
            ["fastsmr"] = "SegmentedLog defaults: 64 MiB fallocated segments, 1 MiB write buffer; per batch Append x N then Flush() (pwrite + fdatasync)",
            ["dotnext"] = "WriteAheadLog ChunkSize 1 MiB, MemoryManagement SharedMemory (default), no hash; per batch AppendAsync(BinaryLogEntry) x N then FlushAsync() (msync + O_SYNC checkpoint write)",
            ["directory"] = Path.GetFullPath(root),
        };
        report["durability"] = "every batch durable before the next starts (FastSmr: fdatasync; DotNext: msync(MS_SYNC) + O_SYNC checkpoint)";
        report["machine"] = Machine();
        report["commit"] = Environment.GetEnvironmentVariable("FASTSMR_COMMIT") ?? "unknown";
        report["measured_at"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture);
        if (json is not null)
        {
            File.WriteAllText(json, JsonSerializer.Serialize(report, JsonOptions));
            Console.WriteLine("log: wrote " + json);
        }

        return 0;
    }

    internal static Dictionary<string, object> Machine() => new()
    {
        ["cores"] = Environment.ProcessorCount,
        ["os"] = RuntimeInformation.OSDescription,
        ["runtime"] = RuntimeInformation.FrameworkDescription,
        ["memory_bytes"] = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes,
    };

    private static string Fresh(string parent, string name) =>
        Directory.CreateDirectory(Path.Combine(parent, name + "-" + Guid.NewGuid().ToString("N")[..8])).FullName;

    private static Result FastSmrBatches(string directory, byte[] payload, int batch, double seconds)
    {
        using var log = SegmentedLog.Open(directory);
        return Loop(batch, seconds, () =>
        {
            for (var i = 0; i < batch; i++)
            {
                log.Append(new Term(1), payload);
            }

            log.Flush();
            return ValueTask.CompletedTask;
        }).GetAwaiter().GetResult();
    }

    private static async Task<Result> DotNextBatches(string directory, byte[] payload, int batch, double seconds)
    {
        var options = new WriteAheadLog.Options { Location = directory, ChunkSize = 1 << 20 };
        var wal = new WriteAheadLog(options, new NullStateMachine());
        try
        {
            await wal.InitializeAsync().ConfigureAwait(false);
            return await Loop(batch, seconds, async () =>
            {
                for (var i = 0; i < batch; i++)
                {
                    await wal.AppendAsync(new BinaryLogEntry { Term = 1, Content = payload }).ConfigureAwait(false);
                }

                await wal.FlushAsync().ConfigureAwait(false);
            }).ConfigureAwait(false);
        }
        finally
        {
            await wal.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Runs <paramref name="durableBatch"/> back to back for <paramref name="seconds"/> after a warm-up; latencies per batch.</summary>
    private static async Task<Result> Loop(int batch, double seconds, Func<ValueTask> durableBatch)
    {
        for (var i = 0; i < Math.Max(3, 2048 / batch); i++)
        {
            await durableBatch().ConfigureAwait(false);
        }

        var latencies = new List<double>(100_000);
        var watch = Stopwatch.StartNew();
        while ((watch.Elapsed.TotalSeconds < seconds || latencies.Count < 20) && latencies.Count < 1_000_000)
        {
            var started = Stopwatch.GetTimestamp();
            await durableBatch().ConfigureAwait(false);
            latencies.Add(Stopwatch.GetElapsedTime(started).TotalMicroseconds);
        }

        var elapsed = watch.Elapsed.TotalSeconds;
        latencies.Sort();
        return new Result(latencies.Count * (double)batch / elapsed, Percentile(latencies, 0.5), Percentile(latencies, 0.99), latencies.Count);
    }

    private static double Percentile(List<double> sorted, double q) => Timing.Percentile(sorted, q);

    /// <summary>One durable 4 KiB append at a time: FastSmr.Log against pwrite + fdatasync into a fresh fallocated file, alternating in rounds.</summary>
    private static Dictionary<string, object> Single4K(string work, double seconds)
    {
        var payload = new byte[4096];
        new Random(4096).NextBytes(payload);
        var ours = new List<double>();
        var raw = new List<double>();
        const int Rounds = 4;
        for (var round = 0; round < Rounds; round++)
        {
            // Alternating rounds so both see the same disk weather.
            using (var log = SegmentedLog.Open(Fresh(work, "single")))
            {
                ours.AddRange(Timing.Timed(seconds / Rounds, () =>
                {
                    log.Append(new Term(1), payload);
                    log.Flush();
                }));
            }

            var path = Path.Combine(Fresh(work, "raw"), "raw.dat");
            using var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.None, 64L << 20);
            long offset = 0;
            raw.AddRange(Timing.Timed(seconds / Rounds, () =>
            {
                RandomAccess.Write(file, payload, offset);
                offset += payload.Length;
                if (Timing.Fdatasync(file) != 0)
                {
                    throw new IOException("fdatasync failed");
                }
            }));
        }

        ours.Sort();
        raw.Sort();
        var result = new Dictionary<string, object>
        {
            ["fastsmr_p50_us"] = Math.Round(Percentile(ours, 0.5), 1),
            ["fastsmr_p99_us"] = Math.Round(Percentile(ours, 0.99), 1),
            ["raw_pwrite_fdatasync_p50_us"] = Math.Round(Percentile(raw, 0.5), 1),
            ["raw_pwrite_fdatasync_p99_us"] = Math.Round(Percentile(raw, 0.99), 1),
            ["p99_ratio"] = Math.Round(Percentile(ours, 0.99) / Percentile(raw, 0.99), 2),
            ["fastsmr_appends"] = ours.Count,
            ["raw_appends"] = raw.Count,
            ["raw_file"] = "64 MiB fallocated, sequential 4 KiB pwrite + fdatasync",
        };
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"single durable 4 KiB append: FastSmr.Log p50 {result["fastsmr_p50_us"]} / p99 {result["fastsmr_p99_us"]} µs; pwrite + fdatasync p50 {result["raw_pwrite_fdatasync_p50_us"]} / p99 {result["raw_pwrite_fdatasync_p99_us"]} µs; p99 ratio {result["p99_ratio"]}"));
        return result;
    }

    /// <summary>GC-heap bytes per durable append (Append, and a Flush every 256) and per record read, in steady state on this thread.</summary>
    private static (double PerAppend, double PerRead) Allocations(string directory, byte[] payload)
    {
        using var log = SegmentedLog.Open(directory);
        void Appends(int count)
        {
            for (var i = 0; i < count; i++)
            {
                log.Append(new Term(1), payload);
                if (i % 256 == 255)
                {
                    log.Flush();
                }
            }
        }

        long Reads()
        {
            long sum = 0;
            for (var from = new LogIndex(1); from + 255 <= log.LastIndex; from += 256)
            {
                foreach (var entry in log.Read(from, from + 255))
                {
                    sum += entry.Payload[0];
                }
            }

            return sum;
        }

        Appends(20_000); // warm-up: JIT, pools
        Reads();
        const int Count = 200_000;
        var before = GC.GetAllocatedBytesForCurrentThread();
        Appends(Count);
        var perAppend = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)Count;
        var records = log.LastIndex.Value / 256 * 256;
        before = GC.GetAllocatedBytesForCurrentThread();
        Reads();
        var perRead = (GC.GetAllocatedBytesForCurrentThread() - before) / (double)records;
        return (Math.Round(perAppend, 3), Math.Round(perRead, 3));
    }

    /// <summary>Writes <paramref name="records"/> 64 B records, closes, and times reopening (page cache warm, then dropped if allowed).</summary>
    private static Dictionary<string, object> Reopen(string directory, byte[] payload, int records)
    {
        var watch = Stopwatch.StartNew();
        using (var log = SegmentedLog.Open(directory))
        {
            for (var i = 1; i <= records; i++)
            {
                log.Append(new Term(1), payload);
                if (i % 4096 == 0)
                {
                    log.Flush();
                }

                if (i % 1_000_000 == 0)
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"reopen: written {i / 1_000_000}M of {records / 1_000_000}M records ({watch.Elapsed.TotalSeconds:F1} s)"));
                }
            }
        }

        var writeSeconds = watch.Elapsed.TotalSeconds;
        var result = new Dictionary<string, object> { ["records"] = records, ["record_bytes"] = RecordBytes, ["write_seconds"] = Math.Round(writeSeconds, 2) };
        TimeOpen(directory, records, out _); // first open pays for JIT
        result["warm_open_ms"] = TimeOpen(directory, records, out var segments);
        result["segments"] = segments;
        if (DropPageCache())
        {
            result["cold_open_ms"] = TimeOpen(directory, records, out _);
        }

        // Opening checks only the last segment; the first read of an older segment indexes it (checking every CRC).
        watch.Restart();
        using (var log = SegmentedLog.Open(directory))
        {
            long sum = 0;
            foreach (var entry in log.Read(new LogIndex(1), log.LastIndex))
            {
                sum += entry.Payload.Length;
            }

            GC.KeepAlive(sum);
        }

        result["open_and_read_all_ms"] = Math.Round(watch.Elapsed.TotalMilliseconds, 1);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"reopen of {records} records in {segments} segments: warm {result["warm_open_ms"]} ms, cold {(result.TryGetValue("cold_open_ms", out var cold) ? cold : "n/a")} ms; open + read everything {result["open_and_read_all_ms"]} ms"));
        return result;
    }

    private static double TimeOpen(string directory, int records, out int segments)
    {
        var watch = Stopwatch.StartNew();
        using var log = SegmentedLog.Open(directory);
        var elapsed = watch.Elapsed.TotalMilliseconds;
        if (log.LastIndex.Value != records)
        {
            throw new InvalidDataException("reopened log ends at " + log.LastIndex.ToString());
        }

        segments = log.SegmentCount;
        return Math.Round(elapsed, 1);
    }

    private static bool DropPageCache()
    {
        try
        {
            File.WriteAllText("/proc/sys/vm/drop_caches", "1");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private readonly record struct Result(double PerSecond, double P50, double P99, int Count);

    /// <summary>The smallest state machine DotNext's WAL accepts: never snapshots, applies nothing.</summary>
    private sealed class NullStateMachine : IStateMachine
    {
        public ISnapshot? Snapshot => null;

        public ValueTask ReclaimGarbageAsync(long watermark, CancellationToken token) => ValueTask.CompletedTask;

        public ValueTask<long> ApplyAsync(DotNext.Net.Cluster.Consensus.Raft.StateMachine.LogEntry entry, CancellationToken token) => ValueTask.FromResult(entry.Index);
    }
}
