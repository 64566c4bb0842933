using static FastSmr.Tests.Units;
using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using FastSmr.Core;
using FastSmr.Core.Kv;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Native;
using FastSmr.Raft;
using Xunit.Abstractions;
using FastSmr.Server;
using FastSmr.Testing;
using FastSmr.Testing.Clusters;

namespace FastSmr.Tests;


/// <summary>The native back-end in a running cluster: bad input on the peer port, the boot-id rule.</summary>
[Collection(ClusterCollection.Name)]
public class NativeBackendTests(ITestOutputHelper output)
{
    [Fact]
    public async Task GarbageOnThePeerPort_ClosesThatConnection_AndTheClusterCarriesOn()
    {
        await using var cluster = new InProcessCluster(3, backend: BackendKind.Native, insecure: true); // forged frames need a plaintext port
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderServerAsync(TimeSpan.FromSeconds(30));
        var target = EndPointParser.Parse(leader.Options.Self.Raft);

        // Random bytes instead of a hello; then a valid hello followed by a frame that claims 4 GiB.
        var random = TestData.Bytes(9, 256 * 1024);
        Assert.True(await SendAndSeeClosedAsync(target, random), "random bytes on the peer port did not close the connection");
        var hello = new byte[WireFormat.HelloSize + 4];
        var peer = leader.Options.Members.First(m => m.Id != leader.Options.Id).Id;
        WireFormat.WriteHello(hello, WireFormat.KindMessages, leader.Options.ClusterId, (int)peer.Value);
        BinaryPrimitives.WriteUInt32LittleEndian(hello.AsSpan(WireFormat.HelloSize), uint.MaxValue);
        Assert.True(await SendAndSeeClosedAsync(target, hello), "a 4 GiB frame length did not close the connection");
        var otherCluster = new byte[WireFormat.HelloSize];
        WireFormat.WriteHello(otherCluster, WireFormat.KindMessages, leader.Options.ClusterId + 1, (int)peer.Value);
        Assert.True(await SendAndSeeClosedAsync(target, otherCluster), "a hello of another cluster did not close the connection");

        await using var client = cluster.NewClient();
        for (var i = 0; i < 20; i++)
        {
            var result = await client.SubmitAsync(KvCommand.Put(Kv.Key("k" + i), Kv.Key("v")));
            Assert.Equal(SubmitStatus.Ok, result.Status);
        }

        Assert.Equal(ReplicaRole.Leader, leader.Engine.Leadership.Role);
        await cluster.ConvergeAsync(TimeSpan.FromSeconds(30));

        // Lease reads: the leader's lease holds (a read may be answered), a follower's never does, nor another term's.
        var term = leader.Engine.Leadership.Term;
        Assert.True(leader.Backend.ReadStillValid(term));
        Assert.False(leader.Backend.ReadStillValid(new Term(term.Value + 1)));
        Assert.All(cluster.Running.Where(s => s != leader), s => Assert.False(s.Backend.ReadStillValid(term)));
        var read = await client.ReadAsync(KvCommand.Get(Kv.Key("k3")));
        Assert.Equal(SubmitStatus.Ok, read.Status);
        Assert.Equal("v", Kv.Text(read.Output));
    }

    [Fact]
    public async Task ForgedPeerMessages_OnAPlaintextPort_AreDropped_AndTheClusterCarriesOn()
    {
        // Issue 13's attack on d9a8542: one heartbeat with term 2^63 - 1 left the cluster leaderless for good, and an
        // append whose entry terms go down stopped the replica ("storage failed"). Sent as replica X to follower F.
        await using var cluster = new InProcessCluster(3, backend: BackendKind.Native, insecure: true); // forged frames need a plaintext port
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderServerAsync(TimeSpan.FromSeconds(30));
        var follower = cluster.Running.First(s => s != leader);
        var impersonated = cluster.Running.First(s => s != leader && s != follower).Options.Id;
        await cluster.StopAsync(impersonated); // else its own reconnection could replace the forged connection first
        var term = leader.Engine.Leadership.Term;
        var node = (NativeBackend)follower.Backend;
        var writer = new ArrayBufferWriter<byte>();
        var hello = new byte[WireFormat.HelloSize];
        WireFormat.WriteHello(hello, WireFormat.KindMessages, follower.Options.ClusterId, (int)impersonated.Value);
        writer.Write(hello);
        WireFormat.Write(writer, new Message { Type = MessageType.Heartbeat, From = impersonated, To = follower.Options.Id, Term = new Term(long.MaxValue) });
        var last = follower.Engine.GetStatus().CommitIndex;
        WireFormat.Write(
            writer,
            new Message
            {
                Type = MessageType.Append,
                From = impersonated,
                To = follower.Options.Id,
                Term = term,
                Index = last,
                LogTerm = term,
                Entries = [new Entry(last + 1, term, EntryKind.Normal, new byte[8]), new Entry(last + 2, new Term(term.Value - 1), EntryKind.Normal, new byte[8])],
            }
        );
        await SendToPeerPortAsync(follower, writer.WrittenMemory, () => node.RefusedMessages >= 2, "the follower dropped both forged messages");

        await using var client = cluster.NewClient();
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(SubmitStatus.Ok, (await client.SubmitAsync(KvCommand.Put(Kv.Key("k" + i), Kv.Key("v")))).Status);
        }

        Assert.Equal(term, follower.Engine.Leadership.Term);
        Assert.Equal(ReplicaRole.Follower, follower.Engine.Leadership.Role);
        Assert.Equal(ReplicaRole.Leader, leader.Engine.Leadership.Role);
        await cluster.ConvergeAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task AForgedSnapshotThatDoesNotRestore_IsDeletedOnReceipt_AndNeverInstalled()
    {
        // Issue 13's attack on d9a8542: a malformed InstallSnapshot, sent as the leader, was installed before it was
        // parsed, stopped the follower, and stopped it again at every restart. Its file is well formed (lengths, CRC,
        // this cluster's image header); only the state machine's bytes are garbage.
        await using var cluster = new InProcessCluster(3, backend: BackendKind.Native, insecure: true); // forged frames need a plaintext port
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderServerAsync(TimeSpan.FromSeconds(30));
        var follower = cluster.Running.First(s => s != leader);
        var node = (NativeBackend)follower.Backend;
        var term = leader.Engine.Leadership.Term;
        var index = leader.Engine.GetStatus().CommitIndex + 1_000;
        await SendForgedSnapshotAsync(
            cluster,
            follower,
            leader.Options.Id,
            index,
            term,
            stream => stream.Write(TestData.Bytes(5, 4_096)),
            () => node.SnapshotsRefused == 1,
            "the follower refused the forged snapshot"
        );

        Assert.False(node.Failure.IsCompleted, "the follower stopped");
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(cluster.Directory, "replica-" + follower.Options.Id), "*.tmp", SearchOption.AllDirectories));
        await using var client = cluster.NewClient();
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(SubmitStatus.Ok, (await client.SubmitAsync(KvCommand.Put(Kv.Key("k" + i), Kv.Key("v")))).Status);
        }

        await cluster.ConvergeAsync(TimeSpan.FromSeconds(30));
        Assert.True(follower.Engine.GetStatus().AppliedIndex < index, "the forged snapshot's index was reached");

        // And the replica restarts: nothing of the forged snapshot was kept to stop it.
        await cluster.StopAsync(follower.Options.Id);
        await cluster.StartAsync(follower.Options.Id);
        await cluster.ConvergeAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task AStagedSnapshotTheCoreDoesNotTake_IsDeletedAtOnce()
    {
        // Issue 13: staged snapshots that could never be installed stayed on disk with no quota. This one restores
        // (valid state), but comes from a replica that is not the term's leader, so the core drops it: its staged file
        // must go with it, not wait for the commit index to pass its (huge) index.
        await using var cluster = new InProcessCluster(3, backend: BackendKind.Native, insecure: true); // forged frames need a plaintext port
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderServerAsync(TimeSpan.FromSeconds(30));
        var follower = cluster.Running.First(s => s != leader);
        var impersonated = cluster.Running.First(s => s != leader && s != follower).Options.Id;
        await cluster.StopAsync(impersonated);
        var node = (NativeBackend)follower.Backend;
        var term = leader.Engine.Leadership.Term;
        var index = new LogIndex(1_000_000);
        var dropped = node.RefusedMessages;
        await SendForgedSnapshotAsync(
            cluster,
            follower,
            impersonated,
            index,
            term,
            stream => new KvStateMachine().WriteSnapshot(stream),
            () => node.RefusedMessages > dropped,
            "the core dropped the snapshot of a replica that is not the leader"
        );

        var staged = Path.Combine(cluster.Directory, "replica-" + follower.Options.Id, "snapshots");
        await Wait.UntilAsync(() => !Directory.EnumerateFiles(staged, "incoming-*").Any(), TimeSpan.FromSeconds(10), "the staged file was deleted");
        Assert.True(follower.Engine.GetStatus().AppliedIndex < index);
    }

    [Fact]
    public async Task APartialFrameThatStalls_IsClosed_AndPinsNothing()
    {
        // Issue 13: eight 65 MiB frames sent in part and left there pinned 489 MB with no deadline. A frame that makes
        // no progress for 10 s now closes its connection.
        await using var cluster = new InProcessCluster(3, backend: BackendKind.Native, insecure: true); // forged frames need a plaintext port
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderServerAsync(TimeSpan.FromSeconds(30));
        var follower = cluster.Running.First(s => s != leader);
        var peer = cluster.Running.First(s => s != leader && s != follower).Options.Id;

        // The connection claims to be a replica that is down: a running one would reconnect and, as the newer
        // connection of that peer, replace this one before the stall deadline could act.
        await cluster.StopAsync(peer);
        var hello = new byte[WireFormat.HelloSize + 4];
        WireFormat.WriteHello(hello, WireFormat.KindMessages, follower.Options.ClusterId, (int)peer.Value);
        BinaryPrimitives.WriteUInt32LittleEndian(hello.AsSpan(WireFormat.HelloSize), 60 << 20); // a 60 MiB frame...
        var target = EndPointParser.Parse(follower.Options.Self.Raft);
        using var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(target);
        await socket.SendAsync(hello, SocketFlags.None);
        await socket.SendAsync(new byte[1 << 20], SocketFlags.None); // ...of which 1 MiB comes, then nothing
        var watch = Stopwatch.StartNew();
        var buffer = new byte[64];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        bool closed;
        try
        {
            closed = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) == 0;
        }
        catch (SocketException)
        {
            closed = true; // closed with a reset
        }

        output.WriteLine($"the stalled connection was closed after {watch.ElapsedMilliseconds} ms");
        Assert.True(closed);
        Assert.InRange(watch.Elapsed, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(25));
        await using var client = cluster.NewClient();
        Assert.Equal(SubmitStatus.Ok, (await client.SubmitAsync(KvCommand.Put(Kv.Key("k"), Kv.Key("v")))).Status);
    }

    [Fact]
    public async Task MemoryMode_AfterAnUncleanMachineRestart_AReplicaNeitherVotesNorCampaigns_UntilCaughtUp()
    {
        await using var cluster = new InProcessCluster(3, DurabilityMode.Memory, backend: BackendKind.Native);
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        await using (var client = cluster.NewClient())
        {
            for (var i = 0; i < 30; i++)
            {
                var result = await client.SubmitAsync(KvCommand.Put(Kv.Key("k" + i), Kv.Key("v")));
                Assert.Equal(SubmitStatus.Ok, result.Status);
            }
        }

        foreach (var id in new[] { R(1), R(2), R(3) })
        {
            await cluster.StopAsync(id);
        }

        // Replicas 2 and 3 "find" another boot id: as if the machine had crashed under them.
        foreach (var id in new[] { R(2), R(3) })
        {
            await File.WriteAllTextAsync(Path.Combine(cluster.Directory, "replica-" + id, "boot-id"), "00000000-dead-beef-0000-000000000000");
        }

        await cluster.StartAsync(R(2));
        await cluster.StartAsync(R(3));
        Assert.True(((NativeBackend)cluster[R(2)].Backend).Rejoining);
        Assert.True(((NativeBackend)cluster[R(3)].Backend).Rejoining);

        // Two replicas that may have lost what they acknowledged must not elect one of themselves: without the rule
        // they would within about two election timeouts (300-600 ms here).
        await Wait.HoldsForAsync(
            () => !cluster.Running.Any(s => s.Engine.Leadership.Role is ReplicaRole.Leader or ReplicaRole.Candidate),
            TimeSpan.FromSeconds(3),
            "no rejoining replica is leader or candidate");

        // Only replica 3 crashed, in fact: replicas 1 and 2 elect a leader, replica 3 catches up and only then votes again.
        await cluster.StopAsync(R(2));
        await cluster.StopAsync(R(3));
        var bootId = (await File.ReadAllTextAsync("/proc/sys/kernel/random/boot_id")).Trim();
        await File.WriteAllTextAsync(Path.Combine(cluster.Directory, "replica-2", "boot-id"), bootId);
        await cluster.StartAsync(R(3));
        Assert.True(((NativeBackend)cluster[R(3)].Backend).Rejoining, "the rejoining state must survive a restart until caught up");
        await cluster.StartAsync(R(1));
        await cluster.StartAsync(R(2));
        var rejoining = (NativeBackend)cluster[R(3)].Backend;
        var rejoined = await Wait.UntilAsync(
            () =>
            {
                Assert.False(rejoining.Rejoining && cluster[R(3)].Engine.Leadership.Role is ReplicaRole.Leader or ReplicaRole.Candidate, "a rejoining replica campaigned");
                return !rejoining.Rejoining;
            },
            TimeSpan.FromSeconds(30),
            "replica 3 has caught up and votes again");
        output.WriteLine($"replica 3 rejoined {rejoined.TotalMilliseconds:F0} ms after the others started");
        Assert.Equal(bootId, (await File.ReadAllTextAsync(Path.Combine(cluster.Directory, "replica-3", "boot-id"))).Trim());
        var leader = await cluster.WaitForLeaderServerAsync(TimeSpan.FromSeconds(30));
        Assert.NotEqual(R(3), leader.Options.Id);
        await cluster.ConvergeAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task AReplicaWhoseDataWasWiped_DoesNotVote_UntilItHasCaughtUp_SoNoAcknowledgedWriteIsLost()
    {
        // Issue 13, item 4 (amnesia): the writes are acknowledged by leader L and follower F while G is down; then L
        // stops and F's data directory is wiped. F and G together are a majority: if F voted for G (whose log lacks the
        // writes), G would lead and the acknowledged writes would be gone. F must wait until it has caught up.
        await using var cluster = new InProcessCluster(3, backend: BackendKind.Native);
        await cluster.StartAllAsync();
        var l = (await cluster.WaitForLeaderServerAsync(TimeSpan.FromSeconds(30))).Options.Id;
        var (f, g) = (cluster.Ids.First(id => id != l), cluster.Ids.Last(id => id != l));
        await cluster.StopAsync(g);
        await using (var client = cluster.NewClient())
        {
            for (var i = 0; i < 30; i++)
            {
                Assert.Equal(SubmitStatus.Ok, (await client.SubmitAsync(KvCommand.Put(Kv.Key("w" + i), Kv.Key("v")))).Status);
            }
        }

        await cluster.StopAsync(l);
        await cluster.StopAsync(f);
        Directory.Delete(Path.Combine(cluster.Directory, "replica-" + f), recursive: true);
        await cluster.StartAsync(f);
        await cluster.StartAsync(g);
        Assert.True(((NativeBackend)cluster[f].Backend).Rejoining, "a replica with no state votes at once");
        await Wait.HoldsForAsync(
            () => !cluster.Running.Any(s => s.Engine.Leadership.Role is ReplicaRole.Leader),
            TimeSpan.FromSeconds(3),
            "no leader without the replica that holds the writes");

        await cluster.StartAsync(l);
        await Wait.UntilAsync(() => !((NativeBackend)cluster[f].Backend).Rejoining, TimeSpan.FromSeconds(30), "the wiped replica caught up");
        await cluster.ConvergeAsync(TimeSpan.FromSeconds(30));
        await using var reader = cluster.NewClient();
        for (var i = 0; i < 30; i++)
        {
            var read = await reader.ReadAsync(KvCommand.Get(Kv.Key("w" + i)));
            Assert.Equal(SubmitStatus.Ok, read.Status);
            Assert.Equal("v", Kv.Text(read.Output));
        }
    }

    /// <summary>
    /// Sends a snapshot stream to <paramref name="follower"/>'s peer port as replica <paramref name="from"/>: the hello of
    /// a snapshot connection, the Snapshot message for (<paramref name="index"/>, <paramref name="term"/>) and a
    /// well-formed file whose state is this cluster's image header followed by what <paramref name="writeState"/> writes.
    /// </summary>
    private static async Task SendForgedSnapshotAsync(
        InProcessCluster cluster,
        ReplicaServer follower,
        ReplicaId from,
        LogIndex index,
        Term term,
        Action<Stream> writeState,
        Func<bool> until,
        string what
    )
    {
        var config = new ClusterConfig([.. cluster.Ids]);
        var forged = Directory.CreateTempSubdirectory("fastsmr-forged-").FullName;
        try
        {
            var file = SnapshotFile.Write(
                forged,
                config,
                stream =>
                {
                    var header = new byte[SnapshotFormat.ImageHeaderSize];
                    SnapshotFormat.WriteImageHeader(header, new SnapshotImageHeader(follower.Options.ClusterId, from, index, term, 0));
                    stream.Write(header);
                    writeState(stream);
                    return (index.Value, term.Value);
                }
            );
            var bytes = await File.ReadAllBytesAsync(file.Path);
            var writer = new ArrayBufferWriter<byte>();
            var hello = new byte[WireFormat.HelloSize];
            WireFormat.WriteHello(hello, WireFormat.KindSnapshot, follower.Options.ClusterId, (int)from.Value);
            writer.Write(hello);
            var message = new Message { Type = MessageType.Snapshot, From = from, To = follower.Options.Id, Term = term, Index = index, LogTerm = term, Config = config };
            WireFormat.Write(writer, message);
            BinaryPrimitives.WriteInt64LittleEndian(writer.GetSpan(8), bytes.Length);
            writer.Advance(8);
            writer.Write(bytes);
            await SendToPeerPortAsync(follower, writer.WrittenMemory, until, what);
        }
        finally
        {
            Directory.Delete(forged, recursive: true);
        }
    }

    /// <summary>Connects to <paramref name="target"/>'s peer port, sends <paramref name="bytes"/>, and waits until <paramref name="until"/> holds.</summary>
    private static async Task SendToPeerPortAsync(ReplicaServer target, ReadOnlyMemory<byte> bytes, Func<bool> until, string what)
    {
        var endPoint = EndPointParser.Parse(target.Options.Self.Raft);
        using var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endPoint);
        await socket.SendAsync(bytes, SocketFlags.None);
        socket.Shutdown(SocketShutdown.Send);
        await Wait.UntilAsync(until, TimeSpan.FromSeconds(10), what);
    }

    private static async Task<bool> SendAndSeeClosedAsync(System.Net.IPEndPoint target, byte[] bytes)
    {
        using var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(target);
        try
        {
            await socket.SendAsync(bytes, SocketFlags.None);
        }
        catch (SocketException)
        {
            return true; // reset while sending: closed
        }

        var buffer = new byte[64];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            return await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) == 0;
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
