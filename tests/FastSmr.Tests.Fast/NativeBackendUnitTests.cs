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

using static FastSmr.Tests.Units;

namespace FastSmr.Tests;

/// <summary>The native back-end's pure pieces: the peer wire format, options validation, snapshot files.</summary>
public class NativeBackendUnitTests
{
    [Fact]
    public void WireFormat_RoundTripsEveryField_AndEntriesOutliveTheBuffer()
    {
        var message = new Message
        {
            Type = MessageType.Append,
            From = R(2),
            To = R(3),
            Term = T(7),
            LogTerm = T(6),
            Index = I(41),
            Commit = I(40),
            Reject = true,
            RejectHint = I(12),
            Round = 99,
            Transfer = true,
            Entries = [new Entry(I(42), T(7), EntryKind.Normal, new byte[] { 1, 2, 3 }), new Entry(I(43), T(7), EntryKind.NoOp, ReadOnlyMemory<byte>.Empty), new Entry(I(44), T(7), EntryKind.Config, new ClusterConfig([R(1), R(2), R(3)]).Encode())],
        };
        var snapshot = new Message { Type = MessageType.Snapshot, From = R(1), To = R(2), Term = T(3), Index = I(500), LogTerm = T(2), Config = new ClusterConfig([R(1), R(2)], [R(3)]) };
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
        Assert.Equal([42L, 43L, 44L], first.Entries.Select(e => e.Index.Value));
        Assert.Equal([EntryKind.Normal, EntryKind.NoOp, EntryKind.Config], first.Entries.Select(e => e.Type));
        Assert.Equal(new byte[] { 1, 2, 3 }, first.Entries[0].Data.ToArray());
        Assert.Equal(new ClusterConfig([R(1), R(2), R(3)]), ClusterConfig.Decode(first.Entries[2].Data.Span));
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
        WireFormat.Write(writer, new Message { Type = MessageType.Append, From = R(1), To = R(2), Term = T(1), Entries = [new Entry(I(1), T(1), EntryKind.Normal, new byte[] { 5, 6 })] });
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
            ReplicaId = R(1),
            Members = [(R(1), new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 7001)), (R(2), new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 7002))],
            DataDirectory = "/tmp/unused",
        };

        Valid().Validate();
        var missing = Valid();
        missing.ReplicaId = R(3);
        Assert.Contains("not among Members", Assert.Throws<ArgumentException>(missing.Validate).Message, StringComparison.Ordinal);
        var duplicate = Valid();
        duplicate.Members = [(R(1), new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 7001)), (R(1), new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 7002))];
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

        // What every back-end shares is checked once, in ReplicationBackendOptions.
        var route = Valid();
        route.PeerRoutes = new Dictionary<ReplicaId, System.Net.IPEndPoint> { [R(3)] = new(System.Net.IPAddress.Loopback, 7003) };
        Assert.Contains("not another member", Assert.Throws<ArgumentException>(route.Validate).Message, StringComparison.Ordinal);
        var election = Valid();
        election.Election = new ElectionTiming(300, 300);
        Assert.StartsWith("UpperElectionTimeoutMs: must be 301..", Assert.Throws<ArgumentException>(election.Validate).Message, StringComparison.Ordinal);
        var snapshots = Valid();
        snapshots.Snapshots = new SnapshotPolicy { BytesInterval = 1_000 };
        Assert.StartsWith("SnapshotBytesInterval: must be 1048576..", Assert.Throws<ArgumentException>(snapshots.Validate).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SnapshotFile_RoundTrips_AndCorruptionIsDetected()
    {
        var directory = Directory.CreateTempSubdirectory("fastsmr-snap-").FullName;
        try
        {
            var state = TestData.Bytes(3, 200_000);
            var written = SnapshotFile.Write(directory, new ClusterConfig([R(1), R(2), R(3)]), s =>
            {
                s.Write(state);
                return (1234, 5);
            });
            var read = SnapshotFile.Verify(written.Path);
            Assert.Equal((1234L, 5L, 200_000L), (read.Index, read.Term, read.StateLength));
            Assert.Equal(new ClusterConfig([R(1), R(2), R(3)]), read.Config);
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

            // Every byte counts, not only the state's: a flipped term in the header or a flipped member id in the
            // configuration is refused as well (file version 2).
            foreach (var offset in new[] { 16, SnapshotFile.FixedHeaderSize + 1 })
            {
                var damaged = File.ReadAllBytes(read.Path);
                damaged[^100] ^= 0x10; // undo the state's flip above
                damaged[offset] ^= 0x01;
                File.WriteAllBytes(read.Path, damaged);
                Assert.Contains("checksum", Assert.Throws<InvalidDataException>(() => SnapshotFile.Verify(read.Path)).Message, StringComparison.Ordinal);
                damaged[offset] ^= 0x01;
                File.WriteAllBytes(read.Path, damaged);
                Assert.Equal(1234L, SnapshotFile.Verify(read.Path).Index);
                damaged[^100] ^= 0x10;
                File.WriteAllBytes(read.Path, damaged);
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
