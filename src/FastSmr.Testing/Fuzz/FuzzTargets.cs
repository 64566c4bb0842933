using System.Buffers;
using System.Text.Json;
using FastSmr.Core.Batching;
using FastSmr.Core.Kv;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Log;
using FastSmr.Native;
using FastSmr.Raft;
using FastSmr.Server;

namespace FastSmr.Testing.Fuzz;

/// <summary>
/// Every decoder that reads bytes from outside the process: client frames (both directions), peer frames, the batch
/// format, snapshot files down to the key-value state, log records, and the JSON configuration.
/// </summary>
public static class FuzzTargets
{
    /// <summary>All targets, in a fixed order.</summary>
    public static IReadOnlyList<FuzzTarget> All { get; } =
    [ClientFrames(), PeerFrames(), BatchEntries(), SnapshotFiles(), LogRecords(), ConfigurationJson()];

    private static byte[] B(string text) => System.Text.Encoding.UTF8.GetBytes(text);

    private static FuzzTarget ClientFrames()
    {
        var stream = new ArrayBufferWriter<byte>();
        var hello = new byte[FrameCodec.HelloSize];
        FrameCodec.WriteHello(hello, 1);
        FrameCodec.WriteFrame(stream, FrameType.Hello, 0, SubmitStatus.Ok, 0, 0, hello);
        var command = KvCommand.Put(B("key"), B("value"));
        var record = new byte[BatchFormat.RecordHeaderSize + command.Length];
        BatchFormat.WriteRecordHeader(record, command.Length, CommandOptions.Idempotent, 7, 1);
        command.CopyTo(record, BatchFormat.RecordHeaderSize);
        FrameCodec.WriteFrame(stream, FrameType.Submit, 0, SubmitStatus.Ok, 1, 5_000, record);
        FrameCodec.WriteFrame(stream, FrameType.Read, 1, SubmitStatus.Ok, 2, 0, KvCommand.Get(B("key")));
        var replies = new ArrayBufferWriter<byte>();
        var helloReply = new byte[FrameCodec.HelloReplySize];
        FrameCodec.WriteHelloReply(helloReply, new ReplicaId(2), 1);
        FrameCodec.WriteFrame(replies, FrameType.HelloReply, 0, SubmitStatus.Ok, 0, 0, helloReply);
        var status = new byte[FrameCodec.StatusReplySize];
        FrameCodec.WriteStatus(
            status,
            new StatusReport(new ReplicaId(1), ReplicaRole.Leader, new Term(3), new LogIndex(9), new LogIndex(9), default, new ReplicaId(1))
        );
        FrameCodec.WriteFrame(replies, FrameType.StatusReply, 0, SubmitStatus.Ok, 3, 0, status);
        var notLeader = new byte[FrameCodec.NotLeaderSizeMax];
        var length = FrameCodec.WriteNotLeader(notLeader, new ReplicaId(3), "127.0.0.1:9003");
        FrameCodec.WriteFrame(replies, FrameType.SubmitReply, 0, SubmitStatus.NotLeader, 1, 0, notLeader.AsSpan(0, length));
        return new FuzzTarget("client-frames", [stream.WrittenSpan.ToArray(), replies.WrittenSpan.ToArray()], DecodeClientFrames, e =>
            e is ProtocolException
        );
    }

    private static void DecodeClientFrames(byte[] input)
    {
        var buffer = new ReadOnlySequence<byte>(input);
        while (FrameCodec.TryReadFrame(ref buffer, 1 << 20, out var header, out var body))
        {
            var bytes = body.ToArray();
            switch (header.Type)
            {
                case FrameType.Hello when bytes.Length == FrameCodec.HelloSize:
                    _ = FrameCodec.ReadHello(bytes);
                    break;
                case FrameType.HelloReply:
                    _ = FrameCodec.ReadHelloReply(bytes);
                    break;
                case FrameType.StatusReply:
                    _ = FrameCodec.ReadStatus(bytes);
                    break;
                case FrameType.SubmitReply when header.Status == SubmitStatus.NotLeader:
                    _ = FrameCodec.ReadNotLeader(bytes);
                    break;
                case FrameType.Submit:
                    DecodeRecords(bytes);
                    break;
                case FrameType.Read:
                    _ = KvCommand.TryParse(bytes, out _, out _, out _);
                    break;
            }
        }
    }

    private static void DecodeRecords(ReadOnlySpan<byte> records)
    {
        while (BatchFormat.TryReadRecord(records, out var record, out var consumed, out _))
        {
            _ = KvCommand.TryParse(record.Command, out _, out _, out _);
            records = records[consumed..];
        }
    }

    private static FuzzTarget PeerFrames()
    {
        var config = new ClusterConfig([new ReplicaId(1), new ReplicaId(2), new ReplicaId(3)]);
        var stream = new ArrayBufferWriter<byte>();
        var hello = new byte[WireFormat.HelloSize];
        WireFormat.WriteHello(hello, WireFormat.KindMessages, 1, 2);
        stream.Write(hello);
        Entry[] entries =
        [
            new(new LogIndex(5), new Term(2), EntryKind.Normal, new byte[] { 1, 2, 3, 4 }),
            new(new LogIndex(6), new Term(2), EntryKind.Config, config.Encode()),
            new(new LogIndex(7), new Term(3), EntryKind.NoOp, ReadOnlyMemory<byte>.Empty),
        ];
        foreach (var message in PeerMessages(config, entries))
        {
            WireFormat.Write(stream, message);
        }

        return new FuzzTarget("peer-frames", [stream.WrittenSpan.ToArray()], DecodePeerFrames, e => e is InvalidDataException);
    }

    private static Message[] PeerMessages(ClusterConfig config, Entry[] entries)
    {
        return
        [
            new()
            {
                Type = MessageType.Append,
                From = new(2),
                To = new(1),
                Term = new(3),
                Index = new(4),
                LogTerm = new(2),
                Entries = entries,
                Commit = new(4),
            },
            new()
            {
                Type = MessageType.Heartbeat,
                From = new(2),
                To = new(1),
                Term = new(3),
                Commit = new(7),
                Round = 9,
            },
            new()
            {
                Type = MessageType.AppendResponse,
                From = new(2),
                To = new(1),
                Term = new(3),
                Index = new(7),
                Reject = true,
                RejectHint = new(3),
            },
            new()
            {
                Type = MessageType.Snapshot,
                From = new(2),
                To = new(1),
                Term = new(3),
                Index = new(100),
                LogTerm = new(3),
                Config = config,
            },
            new()
            {
                Type = MessageType.Vote,
                From = new(2),
                To = new(1),
                Term = new(4),
                Index = new(7),
                LogTerm = new(3),
                Transfer = true,
            },
        ];
    }

    private static void DecodePeerFrames(byte[] input)
    {
        if (input.Length < WireFormat.HelloSize)
        {
            return;
        }

        _ = WireFormat.ReadHello(input.AsSpan(0, WireFormat.HelloSize), 1, out _, out _);
        var buffer = new ReadOnlySequence<byte>(input, WireFormat.HelloSize, input.Length - WireFormat.HelloSize);
        while (WireFormat.TryRead(ref buffer, out _)) { }
    }

    private static FuzzTarget BatchEntries()
    {
        var writer = new BatchWriter(1 << 16);
        writer.Reset();
        for (var i = 0; i < 3; i++)
        {
            var command = i == 1 ? KvCommand.Increment(B("n"), 5) : KvCommand.Put(B("k" + i), B("v" + i));
            var record = new byte[BatchFormat.RecordHeaderSize + command.Length];
            BatchFormat.WriteRecordHeader(record, command.Length, CommandOptions.None, (ulong)i, (ulong)i);
            command.CopyTo(record, BatchFormat.RecordHeaderSize);
            _ = writer.TryAppendRecord(record);
        }

        var batch = writer.Complete(9, 1_700_000_000_000_000, new ReplicaId(1)).ToArray();
        var noOp = new byte[BatchFormat.HeaderSize];
        _ = BatchFormat.WriteNoOp(noOp, 10, 1_700_000_000_000_001, new ReplicaId(1));
        return new FuzzTarget("batch-entries", [batch, noOp], DecodeBatch, _ => false);
    }

    private static void DecodeBatch(byte[] input)
    {
        if (!BatchFormat.TryParse(input, out var header, out _) || header.EntryType != EntryType.Commands)
        {
            return;
        }

        foreach (var record in BatchFormat.EnumerateRecords(input))
        {
            _ = KvCommand.TryParse(record.Command, out _, out _, out _);
        }
    }

    private static FuzzTarget SnapshotFiles()
    {
        var kv = new KvStateMachine();
        var output = new ArrayBufferWriter<byte>();
        kv.Apply(new Core.StateMachines.ApplyContext(new LogIndex(1), 0, 0, 0, 0), KvCommand.Put(B("a"), B("1")), output);
        kv.Apply(new Core.StateMachines.ApplyContext(new LogIndex(2), 0, 0, 0, 0), KvCommand.Put(B("bb"), B("22")), output);
        var state = new MemoryStream();
        var image = new byte[SnapshotFormat.ImageHeaderSize];
        SnapshotFormat.WriteImageHeader(image, new SnapshotImageHeader(1, new ReplicaId(1), new LogIndex(2), new Term(1), 5));
        state.Write(image);
        kv.WriteSnapshot(state);
        var config = new ClusterConfig([new ReplicaId(1), new ReplicaId(2), new ReplicaId(3)]).Encode();
        var file = new byte[SnapshotFormat.FileHeaderSize + config.Length + state.Length];
        SnapshotFormat.WriteFileHeader(file, new SnapshotFileHeader(new LogIndex(2), new Term(1), state.Length, 0, config.Length));
        config.CopyTo(file, SnapshotFormat.FileHeaderSize);
        state.ToArray().CopyTo(file, SnapshotFormat.FileHeaderSize + config.Length);
        return new FuzzTarget("snapshot-files", [file], DecodeSnapshot, e => e is InvalidDataException or EndOfStreamException);
    }

    private static void DecodeSnapshot(byte[] input)
    {
        var header = SnapshotFormat.ReadFileHeader(input, "fuzz");
        if (SnapshotFormat.FileLength(header) != input.Length)
        {
            return; // SnapshotFile.Verify refuses it by its length before anything else
        }

        _ = ClusterConfig.Decode(input.AsSpan(SnapshotFormat.FileHeaderSize, header.ConfigLength));
        using var state = new MemoryStream(input, SnapshotFormat.FileHeaderSize + header.ConfigLength, (int)header.StateLength);
        var image = new byte[SnapshotFormat.ImageHeaderSize];
        state.ReadExactly(image);
        _ = SnapshotFormat.ReadImageHeader(image);
        new KvStateMachine().RestoreSnapshot(state);
    }

    private static FuzzTarget LogRecords()
    {
        var records = new byte[4_096];
        var at = LogRecord.Write(records, 1, 1, LogRecordType.Entry, new byte[] { 1, 2, 3 });
        at += LogRecord.Write(records.AsSpan(at), 1, 2, LogRecordType.NoOp, default, durableIndex: 1);
        at += LogRecord.Write(records.AsSpan(at), 2, 3, LogRecordType.Config, new ClusterConfig([new ReplicaId(1)]).Encode());
        return new FuzzTarget("log-records", [records[..at]], DecodeLogRecords, _ => false);
    }

    private static void DecodeLogRecords(byte[] input)
    {
        ReadOnlySpan<byte> rest = input;
        while (LogRecord.TryRead(rest, out _, out _, out _, out _, out var size) == LogRecordError.None && size > 0 && size <= rest.Length)
        {
            rest = rest[size..];
        }
    }

    private static FuzzTarget ConfigurationJson()
    {
        const string Json = """
            { "Id": 1, "ClusterId": 7, "DataDirectory": "/tmp/fuzz-never-created", "Insecure": true,
              "Backend": "Native", "Durability": "Durable",
              "Members": [ { "Id": 1, "Raft": "127.0.0.1:7001", "Client": "127.0.0.1:9001" },
                           { "Id": 2, "Raft": "127.0.0.1:7002", "Client": "127.0.0.1:9002" } ],
              "PeerRoutes": { "2": "127.0.0.1:7102" }, "SnapshotInterval": 2048, "LowerElectionTimeoutMs": 300,
              "Engine": { "BatchBytesMax": 1048576, "DefaultTimeout": "00:00:05" } }
            """;
        return new FuzzTarget(
            "config-json",
            [System.Text.Encoding.UTF8.GetBytes(Json)],
            input => JsonSerializer.Deserialize<ServerOptions>(input, ServerOptions.JsonOptions)?.Validate(),
            e => e is JsonException or ArgumentException
        );
    }
}
