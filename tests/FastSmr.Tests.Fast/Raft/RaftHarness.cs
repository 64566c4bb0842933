using FastSmr.Raft;

using static FastSmr.Tests.Units;

namespace FastSmr.Tests.Raft;

/// <summary>
/// Replicas of <see cref="RaftNode"/> in one test, with a hand-driven network (messages wait in a queue until delivered;
/// links can be cut) and disks that persist at once, or only when the test says so. Times are microseconds.
/// </summary>
internal sealed class RaftHarness
{
    public const long ElectionUs = 100_000;
    private readonly Dictionary<int, Func<RaftOptions>> optionsOf = [];
    private readonly HashSet<(int From, int To)> cut = [];

    /// <summary>Replicas 1..<paramref name="replicas"/>; the first <paramref name="voters"/> of them vote at bootstrap (all by default).</summary>
    public RaftHarness(int replicas, Func<RaftOptions, RaftOptions>? configure = null, int? voters = null)
    {
        var ids = Enumerable.Range(1, replicas).ToArray();
        var voting = ids[..(voters ?? replicas)];
        foreach (var id in ids)
        {
            var options = new RaftOptions { Id = R(id), Voters = [.. voting.Select(R)], ElectionTimeoutMinUs = ElectionUs, HeartbeatIntervalUs = 10_000, Seed = (ulong)id };
            options = configure?.Invoke(options) ?? options;
            optionsOf[id] = () => options;
            Disks[id] = new Disk();
            Start(id);
        }
    }

    public long Now { get; private set; } = 1_000_000;

    public Dictionary<int, RaftNode> Nodes { get; } = [];

    public Dictionary<int, Disk> Disks { get; } = [];

    public List<Message> InFlight { get; } = [];

    /// <summary>Entries each replica applied, in order (a restart starts over).</summary>
    public Dictionary<int, List<Entry>> Applied { get; } = [];

    /// <summary>When false, writes wait for <see cref="PersistAll"/>.</summary>
    public bool AutoPersist { get; set; } = true;

    public RaftNode this[int id] => Nodes[id];

    public void Start(int id)
    {
        var disk = Disks[id];
        Nodes[id] = new RaftNode(optionsOf[id](), disk.Hard, [.. disk.Durable], disk.Snapshot?.Index ?? default, disk.Snapshot?.Term ?? default, disk.Snapshot?.Config);
        Applied[id] = [];
        Nodes[id].Tick(Now);
    }

    public void Crash(int id)
    {
        var disk = Disks[id];
        disk.Written.RemoveRange(disk.Durable.Count, disk.Written.Count - disk.Durable.Count); // unsynced writes are lost
        Nodes.Remove(id);
        InFlight.RemoveAll(m => m.To == R(id) || m.From == R(id));
    }

    public void Isolate(int id)
    {
        foreach (var other in optionsOf.Keys.Where(o => o != id))
        {
            cut.Add((id, other));
            cut.Add((other, id));
        }
    }

    public void Cut(int from, int to) => cut.Add((from, to));

    public void Heal() => cut.Clear();

    /// <summary>Lets time pass in 1 ms steps, ticking every replica and delivering every message as it goes.</summary>
    public void Advance(long us, bool deliver = true)
    {
        var end = Now + us;
        while (Now < end)
        {
            Now = Math.Min(end, Now + 1_000);
            foreach (var node in Nodes.Values.ToList())
            {
                node.Tick(Now);
            }

            ProcessAll();
            if (deliver)
            {
                DeliverAll();
            }
        }
    }

    /// <summary>Delivers messages (and the messages they cause) until the network is quiet.</summary>
    public void DeliverAll(Func<Message, bool>? which = null, int roundsMax = 10_000)
    {
        for (var rounds = 0; rounds < roundsMax; rounds++)
        {
            ProcessAll();
            var batch = InFlight.Where(m => which?.Invoke(m) ?? true).ToList();
            if (batch.Count == 0)
            {
                return;
            }

            foreach (var message in batch)
            {
                InFlight.Remove(message);
                if (Nodes.TryGetValue((int)message.To.Value, out var node))
                {
                    node.Step(message, Now);
                }
            }
        }

        throw new InvalidOperationException("the network did not go quiet");
    }

    public void DropAll(Func<Message, bool> which) => InFlight.RemoveAll(m => which(m));

    /// <summary>
    /// Elects <paramref name="id"/>: it campaigns (again, if a pre-vote taught it a newer term) until it leads. With
    /// <paramref name="votesOnly"/>, only election messages are delivered; the rest stay in flight for the test.
    /// </summary>
    public void Elect(int id, bool votesOnly = false)
    {
        for (var attempt = 0; attempt < 3 && Nodes[id].Role != Role.Leader; attempt++)
        {
            Nodes[id].Campaign();
            DeliverAll(votesOnly ? m => m.Type is MessageType.PreVote or MessageType.PreVoteResponse or MessageType.Vote or MessageType.VoteResponse : null);
        }

        if (Nodes[id].Role != Role.Leader)
        {
            throw new InvalidOperationException("replica " + id + " could not win an election");
        }
    }

    /// <summary>Time passes with nothing delivered (every promise not to vote runs out), then the network is emptied.</summary>
    public void Quiet(long us = 2 * ElectionUs)
    {
        Advance(us, deliver: false);
        InFlight.Clear();
    }

    public Proposal Propose(int id, string text)
    {
        var result = Nodes[id].Propose(System.Text.Encoding.UTF8.GetBytes(text));
        ProcessAll();
        return result;
    }

    public Proposal ProposeConfigChange(int id, ConfigChange change, int member)
    {
        var result = Nodes[id].ProposeConfigChange(change, R(member));
        ProcessAll();
        return result;
    }

    public void PersistAll()
    {
        foreach (var (id, node) in Nodes)
        {
            var disk = Disks[id];
            disk.Durable.Clear();
            disk.Durable.AddRange(disk.Written);
            if (disk.Written.Count > 0)
            {
                node.Persisted(disk.Written[^1].Index, disk.Written[^1].Term);
            }
        }

        ProcessAll();
    }

    public void ProcessAll()
    {
        foreach (var (id, node) in Nodes.ToList())
        {
            Process(id, node);
        }
    }

    private void Process(int id, RaftNode node)
    {
        var disk = Disks[id];
        while (node.HasReady)
        {
            var ready = node.GetReady();
            disk.Hard = ready.HardState;
            if (ready.Snapshot is { } snapshot)
            {
                disk.Snapshot = snapshot; // the state itself would be fetched from the leader here
                disk.Written.Clear();
                disk.Durable.Clear();
                Installed[id] = snapshot.Index.Value;
            }

            if (ready.Entries.Count > 0)
            {
                var first = (int)(ready.Entries[0].Index - (disk.Snapshot?.Index ?? default));
                if (first <= disk.Written.Count)
                {
                    disk.Written.RemoveRange(first - 1, disk.Written.Count - first + 1);
                    if (disk.Durable.Count >= first)
                    {
                        disk.Durable.RemoveRange(first - 1, disk.Durable.Count - first + 1);
                    }
                }

                disk.Written.AddRange(ready.Entries);
            }

            foreach (var message in ready.Messages)
            {
                if (!cut.Contains(((int)message.From.Value, (int)message.To.Value)))
                {
                    InFlight.Add(message);
                }
            }

            Applied[id].AddRange(ready.CommittedEntries);
            node.Advance(ready);
            if (AutoPersist && ready.Entries.Count > 0)
            {
                disk.Durable.Clear();
                disk.Durable.AddRange(disk.Written);
                node.Persisted(ready.Entries[^1].Index, ready.Entries[^1].Term);
            }
        }
    }

    /// <summary>The index of the last snapshot each replica installed from a leader.</summary>
    public Dictionary<int, long> Installed { get; } = [];

    /// <summary>Replica <paramref name="id"/> snapshots its state at <paramref name="index"/> and drops the log before it.</summary>
    public void Compact(int id, long index)
    {
        var node = Nodes[id];
        var disk = Disks[id];
        var term = node.TermAt(I(index));
        var drop = (int)(I(index) - (disk.Snapshot?.Index ?? default));
        node.Compact(I(index));
        disk.Snapshot = new SnapshotInfo(I(index), term, node.SnapshotConfig);
        disk.Written.RemoveRange(0, drop);
        disk.Durable.RemoveRange(0, Math.Min(drop, disk.Durable.Count));
    }

    public static string Text(Entry entry) => System.Text.Encoding.UTF8.GetString(entry.Data.Span);

    /// <summary>One replica's disk: what was written, and what is durable.</summary>
    public sealed class Disk
    {
        public HardState Hard { get; set; }

        public List<Entry> Written { get; } = [];

        public List<Entry> Durable { get; } = [];

        public SnapshotInfo? Snapshot { get; set; }
    }
}
