using System.Buffers;
using FastSmr.Native;
using FastSmr.Raft;

namespace FastSmr.Simulation;

/// <summary>
/// The network between simulated replicas: every message is encoded with the native wire format when sent and decoded
/// on delivery, after a seeded delay; links can be cut (one way or both), messages dropped and duplicated. A replica
/// learns of a peer's connection (the hello, with its "no state" flag) before the peer's first message of each pair of
/// incarnations, as on the peer port.
/// </summary>
public sealed class SimNetwork(SimWorld world, IReadOnlyList<SimNode> nodes)
{
    private readonly HashSet<(int From, int To)> cut = [];

    private IReadOnlyList<SimNode> Nodes => nodes;

    private SimWorld World => world;
    private readonly Dictionary<(int From, int To), (int From, int To)> greeted = []; // incarnations greeted, per link

    /// <summary>The shortest and longest one-way delay, in microseconds.</summary>
    public (long Min, long Max) DelayUs { get; set; } = (50, 2_000);

    /// <summary>The chance that a message is lost.</summary>
    public double DropChance { get; set; }

    /// <summary>The chance that a snapshot stream arrives damaged (a flipped byte its checksum catches).</summary>
    public double DamageChance { get; set; }

    /// <summary>The chance that a message is delivered twice.</summary>
    public double DuplicateChance { get; set; }

    /// <summary>Messages sent (lost ones included).</summary>
    public long Sent { get; private set; }

    /// <summary>Cuts the link from <paramref name="from"/> to <paramref name="to"/> (one way).</summary>
    public void Cut(int from, int to) => cut.Add((from, to));

    /// <summary>Heals every link.</summary>
    public void HealAll() => cut.Clear();

    /// <summary>Whether the link is up now.</summary>
    public bool Up(int from, int to) => !cut.Contains((from, to));

    /// <summary>A bus for the current incarnation of <paramref name="node"/>.</summary>
    public IMessageBus BusFor(SimNode node) => new Bus(this, node);

    private SimNode Node(int id) => nodes[id - 1];

    private long Delay() => world.Random.Between(DelayUs.Min, DelayUs.Max + 1);

    private bool Lost(int from, int to)
    {
        Sent++;
        return !Up(from, to) || world.Random.Chance(DropChance);
    }

    private void Greet(SimNode from, SimNode to, long delay)
    {
        var key = (from.Id, to.Id);
        var incarnations = (from.Incarnation, to.Incarnation);
        if (to.Process is not { Alive: true } || (greeted.TryGetValue(key, out var done) && done == incarnations) || !Up(from.Id, to.Id))
        {
            return;
        }

        greeted[key] = incarnations;
        var fresh = from.Replica?.Fresh ?? false;
        var target = to.Process;
        world.At(world.NowUs + delay, target, "hello " + from.Id + "->" + to.Id, () =>
        {
            if (to.Incarnation == incarnations.Item2)
            {
                to.Replica!.Greeted(from.Id, fresh);
            }
        });
    }

    private void Deliver(SimNode from, Message message, byte[] frame)
    {
        var to = Node((int)message.To.Value);
        var delay = Delay();
        Greet(from, to, delay - 1);
        if (Lost(from.Id, to.Id) || to.Process is not { Alive: true } target)
        {
            return;
        }

        var copies = world.Random.Chance(DuplicateChance) ? 2 : 1;
        for (var i = 0; i < copies; i++)
        {
            var what = world.Trace is null ? "deliver " + message.Type + " " + from.Id + "->" + to.Id : "deliver " + message;
            world.At(world.NowUs + delay + (i * Delay()), target, what, () =>
            {
                var buffer = new ReadOnlySequence<byte>(frame);
                if (!WireFormat.TryRead(ref buffer, out var decoded) || decoded is null)
                {
                    throw new InvalidOperationException("a frame the wire format wrote does not read back");
                }

                to.Replica!.Receive(decoded, to.Replica.NowUs());
                to.Replica.Kick();
            });
        }
    }

    private void DeliverSnapshot(SimNode from, Message message, byte[] file)
    {
        var to = Node((int)message.To.Value);
        var delay = Delay() + (file.Length / 100); // ~100 MB/s
        Greet(from, to, delay - 1);
        if (Lost(from.Id, to.Id) || to.Process is not { Alive: true } target)
        {
            return;
        }

        if (world.Random.Chance(DamageChance))
        {
            file = (byte[])file.Clone();
            file[world.Random.Below(file.Length)] ^= 0x5a;
        }

        world.At(world.NowUs + delay, target, "snapshot " + from.Id + "->" + to.Id, () =>
        {
            SnapshotHeader staged;
            try
            {
                staged = to.Disk.Stage(file);
            }
            catch (InvalidDataException)
            {
                return; // refused on receipt, as the peer transport does; the leader sends it again
            }

            if (staged.Index != message.Index.Value || staged.Term != message.LogTerm.Value || !to.Replica!.ReceiveSnapshot(message, staged))
            {
                to.Disk.Unstage(staged);
            }
        });
    }

    private sealed class Bus(SimNetwork network, SimNode node) : IMessageBus
    {
        private readonly List<(Message Message, byte[] Frame)> queued = [];

        public long Dropped => 0;

        public void Start() { }

        public void Send(Message message)
        {
            var writer = new ArrayBufferWriter<byte>();
            WireFormat.Write(writer, message);
            queued.Add((message, writer.WrittenSpan.ToArray()));
        }

        public void SendSnapshot(Message message, SnapshotHeader snapshot)
        {
            if (node.Disk.SnapshotBytes(snapshot.Path) is not { } file)
            {
                return;
            }

            try
            {
                using var stream = new MemoryStream(file, writable: false);
                SnapshotFile.Verify(stream, snapshot.Path); // as the peer transport checks a file before it leaves
            }
            catch (InvalidDataException)
            {
                var replica = node.Replica!;
                network.World.After(1, node.Process, "snapshot damaged r" + node.Id, () => replica.SnapshotDamaged(message.Index.Value));
                return;
            }

            network.DeliverSnapshot(node, message, file);
        }

        public void Flush()
        {
            foreach (var (message, frame) in queued)
            {
                network.Deliver(node, message, frame);
            }

            queued.Clear();
        }

        public void EnsureConnected()
        {
            foreach (var peer in network.Nodes)
            {
                if (peer.Id != node.Id)
                {
                    network.Greet(node, peer, network.Delay());
                }
            }
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
