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

namespace FastSmr.Tests;

/// <summary>The native back-end's own pieces: the peer wire format, snapshot files, bad input on the peer port, the boot-id rule.</summary>
[Collection(ClusterCollection.Name)]
public class NativeBackendTests(ITestOutputHelper output)
{
    [Fact]
    public void WireFormat_RoundTripsEveryField_AndEntriesOutliveTheBuffer()
    {
        var message = new Message
        {
            Type = MessageType.Append,
            From = 2,
            To = 3,
            Term = 7,
            LogTerm = 6,
            Index = 41,
            Commit = 40,
            Reject = true,
            RejectHint = 12,
            Round = 99,
            Transfer = true,
            Entries = [new Entry(42, 7, EntryType.Normal, new byte[] { 1, 2, 3 }), new Entry(43, 7, EntryType.NoOp, ReadOnlyMemory<byte>.Empty), new Entry(44, 7, EntryType.Config, new ClusterConfig([1, 2, 3]).Encode())],
        };
        var snapshot = new Message { Type = MessageType.Snapshot, From = 1, To = 2, Term = 3, Index = 500, LogTerm = 2, Config = new ClusterConfig([1, 2], [3]) };
        var writer = new ArrayBufferWriter<byte>();
        WireFormat.Write(writer, message);
        WireFormat.Write(writer, snapshot);
        var bytes = writer.WrittenSpan.ToArray();

        // Fed one byte at a time, nothing is read until a frame is complete.
        var partial = new ReadOnlySequence<byte>(bytes, 0, 10);
        Assert.False(WireFormat.TryRead(ref partial, out _));
        var buffer = new ReadOnlySequence<byte>(bytes);
        Assert.True(WireFormat.TryRead(ref buffer, out var first));
        Assert.True(WireFormat.TryRead(ref buffer, out var second));
        Assert.True(buffer.IsEmpty);
        Array.Clear(bytes);

        Assert.Equal(message.ToString(), first!.ToString());
        Assert.Equal([42L, 43L, 44L], first.Entries.Select(e => e.Index));
        Assert.Equal([EntryType.Normal, EntryType.NoOp, EntryType.Config], first.Entries.Select(e => e.Type));
        Assert.Equal(new byte[] { 1, 2, 3 }, first.Entries[0].Data.ToArray());
        Assert.Equal(new ClusterConfig([1, 2, 3]), ClusterConfig.Decode(first.Entries[2].Data.Span));
        Assert.Equal(snapshot.ToString(), second!.ToString());
        Assert.Equal(snapshot.Config, second.Config);
    }

    [Theory]
    [InlineData("length beyond the limit")]
    [InlineData("length below the fixed body")]
    [InlineData("unknown type")]
    [InlineData("entry longer than the frame")]
    [InlineData("bytes after the last entry")]
    [InlineData("entries on a vote")]
    public void WireFormat_RefusesMalformedFrames(string damage)
    {
        var writer = new ArrayBufferWriter<byte>();
        WireFormat.Write(writer, new Message { Type = MessageType.Append, From = 1, To = 2, Term = 1, Entries = [new Entry(1, 1, EntryType.Normal, new byte[] { 5, 6 })] });
        var bytes = writer.WrittenSpan.ToArray();
        switch (damage)
        {
            case "length beyond the limit":
                BinaryPrimitives.WriteUInt32LittleEndian(bytes, uint.MaxValue);
                break;
            case "length below the fixed body":
                BinaryPrimitives.WriteUInt32LittleEndian(bytes, 3);
                break;
            case "unknown type":
                bytes[4] = 200;
                break;
            case "entry longer than the frame":
                BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4 + WireFormat.FixedBodySize + 9), 1 << 20);
                break;
            case "bytes after the last entry":
                bytes = [.. bytes, 0];
                BinaryPrimitives.WriteUInt32LittleEndian(bytes, BinaryPrimitives.ReadUInt32LittleEndian(bytes) + 1);
                break;
            default:
                bytes[4] = (byte)MessageType.Vote;
                break;
        }

        var buffer = new ReadOnlySequence<byte>(bytes);
        Assert.Throws<InvalidDataException>(() => WireFormat.TryRead(ref buffer, out _));
    }

    [Fact]
    public void Options_AreValidated_WithAReason()
    {
        NativeBackendOptions Valid() => new()
        {
            ReplicaId = 1,
            Members = [(1u, new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 7001)), (2u, new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 7002))],
            DataDirectory = "/tmp/unused",
        };

        Valid().Validate();
        var missing = Valid();
        missing.ReplicaId = 3;
        Assert.Contains("not among Members", Assert.Throws<ArgumentException>(missing.Validate).Message, StringComparison.Ordinal);
        var duplicate = Valid();
        duplicate.Members = [(1u, new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 7001)), (1u, new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 7002))];
        Assert.Throws<ArgumentException>(duplicate.Validate);
        var noDirectory = Valid();
        noDirectory.DataDirectory = " ";
        Assert.Throws<ArgumentException>(noDirectory.Validate);
        var heartbeat = Valid();
        heartbeat.HeartbeatIntervalMs = 200; // more than half the 300 ms election timeout
        Assert.Contains("two heartbeat intervals", Assert.Throws<ArgumentException>(heartbeat.Validate).Message, StringComparison.Ordinal);
        var queue = Valid();
        queue.PeerQueueBytesMax = 1_000;
        Assert.Throws<ArgumentOutOfRangeException>(queue.Validate);
    }

    [Fact]
    public void SnapshotFile_RoundTrips_AndCorruptionIsDetected()
    {
        var directory = Directory.CreateTempSubdirectory("fastsmr-snap-").FullName;
        try
        {
            var state = SegmentedLogTests.Payload(3, 200_000);
            var written = SnapshotFile.Write(directory, new ClusterConfig([1, 2, 3]), s =>
            {
                s.Write(state);
                return (1234, 5);
            });
            var read = SnapshotFile.Verify(written.Path);
            Assert.Equal((1234L, 5L, 200_000L), (read.Index, read.Term, read.StateLength));
            Assert.Equal(new ClusterConfig([1, 2, 3]), read.Config);
            using (var file = File.OpenRead(read.Path))
            {
                file.Position = read.StateOffset;
                var copy = new byte[state.Length];
                file.ReadExactly(copy);
                Assert.Equal(state, copy);
            }

            var empty = Directory.CreateDirectory(Path.Combine(directory, "empty")).FullName;
            Assert.Null(SnapshotFile.FindLatest(empty, (_, _) => { }));
            var bytes = File.ReadAllBytes(read.Path);
            bytes[^100] ^= 0x10;
            File.WriteAllBytes(read.Path, bytes);
            Assert.Contains("checksum", Assert.Throws<InvalidDataException>(() => SnapshotFile.Verify(read.Path)).Message, StringComparison.Ordinal);
            var skipped = new List<string>();
            Assert.Null(SnapshotFile.FindLatest(directory, (path, _) => skipped.Add(path)));
            Assert.Equal([read.Path], skipped);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task GarbageOnThePeerPort_ClosesThatConnection_AndTheClusterCarriesOn()
    {
        await using var cluster = new InProcessCluster(3, backend: "native");
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        var target = EndPointParser.Parse(leader.Options.Self.Raft);

        // Random bytes instead of a hello; then a valid hello followed by a frame that claims 4 GiB.
        var random = SegmentedLogTests.Payload(9, 256 * 1024);
        Assert.True(await SendAndSeeClosedAsync(target, random), "random bytes on the peer port did not close the connection");
        var hello = new byte[WireFormat.HelloSize + 4];
        var peer = leader.Options.Members.First(m => m.Id != leader.Options.Id).Id;
        WireFormat.WriteHello(hello, WireFormat.KindMessages, leader.Options.ClusterId, (int)peer);
        BinaryPrimitives.WriteUInt32LittleEndian(hello.AsSpan(WireFormat.HelloSize), uint.MaxValue);
        Assert.True(await SendAndSeeClosedAsync(target, hello), "a 4 GiB frame length did not close the connection");
        var otherCluster = new byte[WireFormat.HelloSize];
        WireFormat.WriteHello(otherCluster, WireFormat.KindMessages, leader.Options.ClusterId + 1, (int)peer);
        Assert.True(await SendAndSeeClosedAsync(target, otherCluster), "a hello of another cluster did not close the connection");

        await using var client = cluster.NewClient();
        for (var i = 0; i < 20; i++)
        {
            var result = await client.SubmitAsync(KvCommand.Put(Kv.Key("k" + i), Kv.Key("v")));
            Assert.Equal(SubmitStatus.Ok, result.Status);
        }

        Assert.Equal(ReplicaRole.Leader, leader.Engine.Leadership.Role);
        await cluster.WaitForConvergenceAsync(TimeSpan.FromSeconds(30));

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
    public async Task MemoryMode_AfterAnUncleanMachineRestart_AReplicaNeitherVotesNorCampaigns_UntilCaughtUp()
    {
        await using var cluster = new InProcessCluster(3, DurabilityMode.Memory, backend: "native");
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

        foreach (var id in new uint[] { 1, 2, 3 })
        {
            await cluster.StopAsync(id);
        }

        // Replicas 2 and 3 "find" another boot id: as if the machine had crashed under them.
        foreach (var id in new uint[] { 2, 3 })
        {
            await File.WriteAllTextAsync(Path.Combine(cluster.Directory, "replica-" + id, "boot-id"), "00000000-dead-beef-0000-000000000000");
        }

        await cluster.StartAsync(2);
        await cluster.StartAsync(3);
        Assert.True(((NativeBackend)cluster[2].Backend).Rejoining);
        Assert.True(((NativeBackend)cluster[3].Backend).Rejoining);

        // Two replicas that may have lost what they acknowledged must not elect one of themselves: without the rule
        // they would within about two election timeouts (300-600 ms here).
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(3))
        {
            Assert.DoesNotContain(cluster.Running, s => s.Engine.Leadership.Role is ReplicaRole.Leader or ReplicaRole.Candidate);
            await Task.Delay(50);
        }

        // Only replica 3 crashed, in fact: replicas 1 and 2 elect a leader, replica 3 catches up and only then votes again.
        await cluster.StopAsync(2);
        await cluster.StopAsync(3);
        var bootId = (await File.ReadAllTextAsync("/proc/sys/kernel/random/boot_id")).Trim();
        await File.WriteAllTextAsync(Path.Combine(cluster.Directory, "replica-2", "boot-id"), bootId);
        await cluster.StartAsync(3);
        Assert.True(((NativeBackend)cluster[3].Backend).Rejoining, "the rejoining state must survive a restart until caught up");
        await cluster.StartAsync(1);
        await cluster.StartAsync(2);
        watch.Restart();
        var rejoining = (NativeBackend)cluster[3].Backend;
        while (watch.Elapsed < TimeSpan.FromSeconds(30) && rejoining.Rejoining)
        {
            Assert.False(cluster[3].Engine.Leadership.Role is ReplicaRole.Leader or ReplicaRole.Candidate, "a rejoining replica campaigned");
            await Task.Delay(20);
        }

        output.WriteLine($"replica 3 rejoined {watch.ElapsedMilliseconds} ms after the others started");
        Assert.False(rejoining.Rejoining);
        Assert.Equal(bootId, (await File.ReadAllTextAsync(Path.Combine(cluster.Directory, "replica-3", "boot-id"))).Trim());
        var leader = await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        Assert.NotEqual(3u, leader.Options.Id);
        await cluster.WaitForConvergenceAsync(TimeSpan.FromSeconds(30));
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
