using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using FastSmr.Raft;

namespace FastSmr.Bench;

/// <summary>
/// <c>raft [--seconds S] [--json FILE]</c>: FastSmr.Raft's core alone — 3 replicas in one process and one thread, an
/// in-memory log that persists at once, messages handed over directly — proposing 64 B entries in rounds of 1, 64 and
/// 1,024 and driving the cluster until they commit. Entries/s from propose to commit on the leader, and GC-heap bytes
/// allocated per proposal (for the whole cluster's work, not just the leader's).
/// </summary>
internal static class RaftBench
{
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    public static int Run(string[] args)
    {
        var seconds = 3.0;
        string? json = null;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--seconds": seconds = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--json": json = args[++i]; break;
                default: Console.Error.WriteLine("usage: raft [--seconds S] [--json FILE]"); return 2;
            }
        }

        Console.WriteLine("| proposals per round | entries/s committed | rounds | bytes allocated per proposal |");
        Console.WriteLine("|---|---|---|---|");
        var rows = new List<Dictionary<string, object>>();
        foreach (var perRound in new[] { 1, 64, 1024 })
        {
            var cluster = new Cluster();
            cluster.Run(perRound, 0.3); // warm-up: JIT, list capacities
            var (perSecond, rounds, bytes) = cluster.Run(perRound, seconds);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {perRound} | {perSecond:F0} | {rounds} | {bytes:F0} |"));
            rows.Add(new Dictionary<string, object>
            {
                ["proposals_per_round"] = perRound,
                ["entries_per_sec"] = Math.Round(perSecond),
                ["rounds"] = rounds,
                ["alloc_bytes_per_proposal"] = Math.Round(bytes, 1),
            });
        }

        if (json is not null)
        {
            var report = new Dictionary<string, object>
            {
                ["benchmark"] = "raft-core",
                ["rows"] = rows,
                ["settings"] = new Dictionary<string, object>
                {
                    ["replicas"] = 3,
                    ["entry_bytes"] = 64,
                    ["seconds_per_row"] = seconds,
                    ["io"] = "none: in-memory log persisted at once, messages handed over directly, one thread",
                },
                ["durability"] = "none (core only)",
                ["machine"] = LogBench.Machine(),
                ["commit"] = Environment.GetEnvironmentVariable("FASTSMR_COMMIT") ?? "unknown",
                ["measured_at"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            };
            File.WriteAllText(json, JsonSerializer.Serialize(report, JsonOptions));
            Console.WriteLine("raft: wrote " + json);
        }

        return 0;
    }

    private sealed class Cluster
    {
        private readonly RaftNode[] nodes = new RaftNode[3];
        private readonly Queue<Message> network = new();
        private readonly byte[] payload = new byte[64];
        private long now = 1_000_000;
        private long applied;

        public Cluster()
        {
            ReplicaId[] voters = [new(1), new(2), new(3)];
            for (var i = 0; i < 3; i++)
            {
                nodes[i] = new RaftNode(new RaftOptions { Id = new ReplicaId((uint)(i + 1)), Voters = voters, Seed = (ulong)(i + 1), InflightMessagesMax = 64, UncommittedEntriesMax = 1 << 20 });
                nodes[i].Tick(now);
            }

            for (var attempt = 0; attempt < 20 && Array.Find(nodes, n => n.Role == Role.Leader) is null; attempt++)
            {
                now += 1_500_000; // past the start-up promises; whoever times out campaigns (split votes retry)
                foreach (var node in nodes)
                {
                    node.Tick(now);
                }

                Pump();
            }

            leader = Array.Find(nodes, n => n.Role == Role.Leader) ?? throw new InvalidOperationException("no leader was elected");
        }

        private readonly RaftNode leader;

        public (double PerSecond, long Rounds, double BytesPerProposal) Run(int perRound, double seconds)
        {
            long rounds = 0;
            var appliedBefore = applied;
            var allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
            var watch = Stopwatch.StartNew();
            while (watch.Elapsed.TotalSeconds < seconds)
            {
                for (var i = 0; i < perRound; i++)
                {
                    if (leader.Propose(payload).Status != ProposeStatus.Ok)
                    {
                        throw new InvalidOperationException("proposal refused");
                    }
                }

                Pump();
                rounds++;
            }

            var elapsed = watch.Elapsed.TotalSeconds;
            var proposals = rounds * perRound;
            var bytes = (GC.GetAllocatedBytesForCurrentThread() - allocatedBefore) / (double)proposals;
            return ((applied - appliedBefore) / elapsed, rounds, bytes);
        }

        private void Pump()
        {
            for (var guard = 0; guard < 1_000_000; guard++)
            {
                var busy = false;
                foreach (var node in nodes)
                {
                    while (node.HasReady)
                    {
                        busy = true;
                        var ready = node.GetReady();
                        foreach (var message in ready.Messages)
                        {
                            network.Enqueue(message);
                        }

                        if (node == leader)
                        {
                            applied += ready.CommittedEntries.Count;
                        }

                        node.Advance(ready);
                        if (ready.Entries.Count > 0)
                        {
                            node.Persisted(ready.Entries[^1].Index, ready.Entries[^1].Term);
                        }
                    }
                }

                while (network.TryDequeue(out var message))
                {
                    busy = true;
                    nodes[message.To.Value - 1].Step(message, now);
                }

                if (!busy)
                {
                    return;
                }
            }

            throw new InvalidOperationException("the cluster did not go quiet");
        }
    }
}
