using System.Diagnostics;
using System.Text.Json;
using FastSmr.Core.Batching;
using FastSmr.Core.Kv;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Server;
using FastSmr.Testing.Clusters;
using FastSmr.Testing.Load;
using HdrHistogram;

namespace FastSmr.Testing.Bench;

/// <summary>
/// <c>fastsmr bench</c>: three replicas in this process (no client network hop), measured in one run, in both durability
/// modes: (a) "stock" — every writer replicates its own one-command entry through DotNext's ReplicateAsync, which is how
/// stock DotNext is used and what docs/anchors.md records; (b) "engine" — the same writers go through FastSmr's
/// engine, which groups commands that arrive while rounds are in flight into one entry (group commit).
/// </summary>
public static class InProcessBench
{
    /// <summary>Measures every row and prints one line per row; returns the process exit code.</summary>
    /// <param name="seconds">Measured seconds per row.</param>
    /// <param name="writers">Concurrent writers in the loaded rows.</param>
    /// <param name="jsonPath">Where to write the figures as JSON; null writes none.</param>
    /// <param name="token">Stops the run.</param>
    public static async Task<int> RunAsync(int seconds, int writers, string? jsonPath, CancellationToken token)
    {
        var rows = new List<Dictionary<string, object>>();
        foreach (var durability in new[] { DurabilityMode.Memory, DurabilityMode.Durable })
        {
            foreach (var path in new[] { "stock", "engine" })
            {
                foreach (var concurrency in new[] { 1, writers })
                {
                    var row = await MeasureAsync(durability, path, concurrency, seconds, token).ConfigureAwait(false);
                    rows.Add(row);
                    await Console.Out.WriteLineAsync(RowLine(durability, path, concurrency, row)).ConfigureAwait(false);
                }
            }
        }

        if (jsonPath is not null)
        {
            var report = new Dictionary<string, object>
            {
                ["schema_version"] = 1,
                ["kind"] = "in-process 3-replica cluster, DotNext back-end, 64 B values, no client network hop",
                ["seconds_per_row"] = seconds,
                ["rows"] = rows,
                ["machine"] = MachineInfo.Describe(),
                ["commit"] = MachineInfo.Commit(),
                ["measured_at"] = DateTimeOffset.UtcNow.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
            };
            await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(report, ServerOptions.JsonOptions), token)
                .ConfigureAwait(false);
            await Console.Out.WriteLineAsync("fastsmr bench: wrote " + jsonPath).ConfigureAwait(false);
        }

        return 0;
    }

    private static async Task<Dictionary<string, object>> MeasureAsync(
        DurabilityMode durability,
        string path,
        int concurrency,
        int seconds,
        CancellationToken token
    )
    {
        // The DotNext back-end (the default), three replicas in this process, every snapshot default of serve.
        var cluster = new InProcessCluster(3, durability);
        await using (cluster.ConfigureAwait(false))
        {
            await cluster.StartAllAsync().ConfigureAwait(false);
            var leader = await cluster.WaitForLeaderServerAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);

            // One warm-up second (JIT), then the measured window.
            await DriveAsync(leader, path, concurrency, 1, token).ConfigureAwait(false);
            var firstIndex = leader.Engine.AppliedIndex.Value;
            var (ops, histogram) = await DriveAsync(leader, path, concurrency, seconds, token).ConfigureAwait(false);
            var entries = leader.Engine.AppliedIndex.Value - firstIndex;
            return new Dictionary<string, object>
            {
                ["durability"] = Names.Of(durability),
                ["path"] = path,
                ["writers"] = concurrency,
                ["ops_per_sec"] = Math.Round(ops / (double)seconds, 1),
                ["entries_per_sec"] = Math.Round(entries / (double)seconds, 1),
                ["p50_us"] = histogram.TotalCount == 0 ? 0 : histogram.GetValueAtPercentile(50),
                ["p99_us"] = histogram.TotalCount == 0 ? 0 : histogram.GetValueAtPercentile(99),
                ["max_us"] = histogram.TotalCount == 0 ? 0 : histogram.GetMaxValue(),
            };
        }
    }

    private static async Task<(long Ops, LongHistogram Histogram)> DriveAsync(
        ReplicaServer leader,
        string path,
        int concurrency,
        int seconds,
        CancellationToken token
    )
    {
        var histogram = new LongHistogram(60_000_000, 3);
        long ops = 0;
        var end = Stopwatch.GetTimestamp() + (seconds * Stopwatch.Frequency);
        var term = leader.Engine.Leadership.Term;
        var tasks = Enumerable
            .Range(0, concurrency)
            .Select(writer =>
                Task.Run(
                    async () =>
                    {
                        var command = KvCommand.Put(BitConverter.GetBytes(writer), new byte[64]);
                        var entry = OneCommandEntry(command, new ReplicaId((uint)(100 + writer)));
                        while (Stopwatch.GetTimestamp() < end && !token.IsCancellationRequested)
                        {
                            var started = Stopwatch.GetTimestamp();
                            bool ok;
                            if (path == "stock")
                            {
                                ok =
                                    (await leader.Backend.ProposeAsync(entry, term, token).ConfigureAwait(false)).Outcome
                                    == ProposeOutcome.Committed;
                            }
                            else
                            {
                                using var result = await leader.Engine.SubmitAsync(command, TimeSpan.FromSeconds(5)).ConfigureAwait(false);
                                ok = result.Status == SubmitStatus.Ok;
                            }

                            if (ok)
                            {
                                Interlocked.Increment(ref ops);
                                var micros = Math.Max(1, (Stopwatch.GetTimestamp() - started) * 1_000_000 / Stopwatch.Frequency);
                                lock (histogram)
                                {
                                    histogram.RecordValue(Math.Min(micros, 60_000_000));
                                }
                            }
                        }
                    },
                    token
                )
            )
            .ToArray();
        await Task.WhenAll(tasks).ConfigureAwait(false);
        return (Interlocked.Read(ref ops), histogram);
    }

    /// <summary>A well-formed one-command entry (so every replica applies it), proposed under a foreign proposer id.</summary>
    private static byte[] OneCommandEntry(byte[] command, ReplicaId proposer)
    {
        var writer = new BatchWriter(BatchFormat.HeaderSize + BatchFormat.RecordHeaderSize + command.Length);
        var record = new byte[BatchFormat.RecordHeaderSize + command.Length];
        BatchFormat.WriteRecordHeader(record, command.Length, CommandOptions.None, 0, 0);
        command.CopyTo(record, BatchFormat.RecordHeaderSize);
        writer.TryAppendRecord(record);
        return writer.Complete(1, 0, proposer).ToArray();
    }

    private static string RowLine(DurabilityMode durability, string path, int writers, Dictionary<string, object> row) =>
        FormattableString.Invariant($"{Names.Of(durability), -8} {path, -7} writers={writers, -4} {row["ops_per_sec"], 10:N0} ops/s  ")
        + FormattableString.Invariant($"{row["entries_per_sec"], 7:N0} entries/s  p50 {row["p50_us"], 6} µs  p99 {row["p99_us"], 7} µs");
}
