using System.Buffers;
using System.Buffers.Binary;
using FastSmr.Core;
using FastSmr.Core.Batching;
using FastSmr.Core.Protocol;
using FastSmr.Core.StateMachines;

namespace FastSmr.Tests;

public class BatchFormatTests
{
    private static byte[] Record(byte[] command, CommandOptions options, ulong clientId, ulong sequence)
    {
        var record = new byte[BatchFormat.RecordHeaderSize + command.Length];
        BatchFormat.WriteRecordHeader(record, command.Length, options, clientId, sequence);
        command.CopyTo(record, BatchFormat.RecordHeaderSize);
        return record;
    }

    [Fact]
    public void Batch_WrittenThenParsed_RoundTripsEveryField()
    {
        var writer = new BatchWriter(4096);
        var commands = new[] { new byte[] { 1, 2, 3 }, Array.Empty<byte>(), new byte[200] };
        for (var i = 0; i < commands.Length; i++)
        {
            Assert.True(writer.TryAppendRecord(Record(commands[i], i == 1 ? CommandOptions.Idempotent : CommandOptions.None, 7, (ulong)(100 + i))));
        }

        var batch = writer.Complete(batchId: 42, leaderTimestampMicros: 1_700_000_000_000_000, proposerId: new ReplicaId(3)).ToArray();

        Assert.True(BatchFormat.TryParse(batch, out var header, out var error), error);
        Assert.Equal(EntryType.Commands, header.EntryType);
        Assert.Equal(3, header.CommandCount);
        Assert.Equal(42UL, header.BatchId);
        Assert.Equal(1_700_000_000_000_000, header.LeaderTimestampMicros);
        Assert.Equal(new ReplicaId(3), header.ProposerId);
        var i2 = 0;
        foreach (var record in BatchFormat.EnumerateRecords(batch))
        {
            Assert.Equal(commands[i2], record.Command.ToArray());
            Assert.Equal(7UL, record.ClientId);
            Assert.Equal((ulong)(100 + i2), record.Sequence);
            Assert.Equal(i2 == 1 ? CommandOptions.Idempotent : CommandOptions.None, record.Flags);
            i2++;
        }

        Assert.Equal(3, i2);
    }

    [Fact]
    public void BatchWriter_RecordBeyondCapacity_IsRefusedAndBatchStaysValid()
    {
        var writer = new BatchWriter(BatchFormat.HeaderSize + BatchFormat.RecordHeaderSize + 10);
        Assert.True(writer.TryAppendRecord(Record(new byte[10], CommandOptions.None, 0, 0)));
        Assert.False(writer.TryAppendRecord(Record(new byte[1], CommandOptions.None, 0, 0)));
        var batch = writer.Complete(1, 0, new ReplicaId(1)).ToArray();
        Assert.True(BatchFormat.TryParse(batch, out var header, out _));
        Assert.Equal(1, header.CommandCount);
    }

    [Fact]
    public void NoOp_RoundTrips()
    {
        var bytes = new byte[BatchFormat.HeaderSize];
        BatchFormat.WriteNoOp(bytes, 9, 5, new ReplicaId(2));
        Assert.True(BatchFormat.TryParse(bytes, out var header, out _));
        Assert.Equal(EntryType.NoOp, header.EntryType);
        Assert.Equal(0, header.CommandCount);
    }

    public static TheoryData<string> MalformedCases() => ["short", "magic", "version", "type", "negativeCount", "countTooHigh", "truncatedRecord", "trailing", "hugeLength"];

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void Parse_MalformedBatch_ReturnsFalseWithReason(string corruption)
    {
        var writer = new BatchWriter(1024);
        writer.TryAppendRecord(Record([1, 2, 3, 4], CommandOptions.None, 1, 1));
        var batch = writer.Complete(1, 1, new ReplicaId(1)).ToArray();
        switch (corruption)
        {
            case "short": batch = batch[..10]; break;
            case "magic": batch[0] ^= 0xFF; break;
            case "version": batch[2] = 99; break;
            case "type": batch[3] = 77; break;
            case "negativeCount": BinaryPrimitives.WriteInt32LittleEndian(batch.AsSpan(4), -1); break;
            case "countTooHigh": BinaryPrimitives.WriteInt32LittleEndian(batch.AsSpan(4), 2); break;
            case "truncatedRecord": batch = batch[..^2]; break;
            case "trailing": batch = [.. batch, 0]; break;
            case "hugeLength": BinaryPrimitives.WriteInt32LittleEndian(batch.AsSpan(BatchFormat.HeaderSize), int.MaxValue); break;
        }

        Assert.False(BatchFormat.TryParse(batch, out _, out var error));
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void Parse_RandomGarbage_NeverThrows()
    {
        var random = new Random(1234);
        for (var i = 0; i < 20_000; i++)
        {
            var bytes = new byte[random.Next(0, 128)];
            random.NextBytes(bytes);
            if (bytes.Length >= 4 && random.Next(2) == 0)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(bytes, BatchFormat.Magic);
                bytes[2] = BatchFormat.Version;
                bytes[3] = (byte)EntryType.Commands;
            }

            _ = BatchFormat.TryParse(bytes, out _, out _);
        }
    }

    [Fact]
    public void FrameHeader_RoundTrips()
    {
        var bytes = new byte[FrameCodec.HeaderSize];
        var header = new FrameHeader(123, FrameType.SubmitReply, 1, SubmitStatus.NotLeader, ulong.MaxValue - 1, 5_000_000);
        FrameCodec.WriteHeader(bytes, header);
        Assert.Equal(header, FrameCodec.ReadHeader(bytes, 1000));
    }

    [Fact]
    public void Frame_OversizedBodyLength_IsAProtocolError()
    {
        var bytes = new byte[FrameCodec.HeaderSize];
        FrameCodec.WriteHeader(bytes, new FrameHeader(100_000, FrameType.Submit, 0, SubmitStatus.Ok, 1, 0));
        var sequence = new ReadOnlySequence<byte>(bytes);
        Assert.Throws<ProtocolException>(() => FrameCodec.TryReadFrame(ref sequence, 1024, out _, out _));
    }

    [Fact]
    public void Frame_UnknownType_IsAProtocolError()
    {
        var bytes = new byte[FrameCodec.HeaderSize];
        FrameCodec.WriteHeader(bytes, new FrameHeader(0, FrameType.Submit, 0, SubmitStatus.Ok, 1, 0));
        bytes[4] = 200;
        Assert.Throws<ProtocolException>(() => FrameCodec.ReadHeader(bytes, 1024));
    }

    [Fact]
    public void Frame_SplitAcrossSegments_NeedsMoreBytesThenParses()
    {
        var writer = new ArrayBufferWriter<byte>();
        FrameCodec.WriteFrame(writer, FrameType.Submit, 0, SubmitStatus.Ok, 77, 0, [1, 2, 3, 4, 5]);
        var all = writer.WrittenMemory.ToArray();
        for (var cut = 0; cut < all.Length; cut++)
        {
            var partial = new ReadOnlySequence<byte>(all, 0, cut);
            Assert.False(FrameCodec.TryReadFrame(ref partial, 1024, out _, out _));
        }

        var whole = Segments(all, 3);
        Assert.True(FrameCodec.TryReadFrame(ref whole, 1024, out var header, out var body));
        Assert.Equal(77UL, header.RequestId);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5 }, body.ToArray());
        Assert.True(whole.IsEmpty);
    }

    [Fact]
    public void Hello_Status_NotLeader_RoundTrip()
    {
        var hello = new byte[FrameCodec.HelloSize];
        FrameCodec.WriteHello(hello, 0xABCDEF);
        Assert.Equal((FrameCodec.ProtocolVersion, 0xABCDEFUL), FrameCodec.ReadHello(hello));
        hello[0] ^= 1;
        Assert.Throws<ProtocolException>(() => FrameCodec.ReadHello(hello));

        var status = new StatusReport(new ReplicaId(3), ReplicaRole.Leader, new Term(7), new LogIndex(100), new LogIndex(99), new StateDigest(1, 2), new ReplicaId(3), 12345);
        var bytes = new byte[FrameCodec.StatusReplySize];
        FrameCodec.WriteStatus(bytes, status);
        Assert.Equal(status, FrameCodec.ReadStatus(bytes));

        var notLeader = new byte[FrameCodec.NotLeaderSizeMax];
        var length = FrameCodec.WriteNotLeader(notLeader, new ReplicaId(2), "127.0.0.1:9000");
        Assert.Equal((new ReplicaId(2), "127.0.0.1:9000"), FrameCodec.ReadNotLeader(notLeader.AsSpan(0, length)));
    }

    private static ReadOnlySequence<byte> Segments(byte[] bytes, int size)
    {
        Segment? first = null;
        Segment? last = null;
        for (var offset = 0; offset < bytes.Length; offset += size)
        {
            var segment = new Segment(bytes.AsMemory(offset, Math.Min(size, bytes.Length - offset)));
            if (first is null)
            {
                first = segment;
            }
            else
            {
                last!.Append(segment);
            }

            last = segment;
        }

        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public void Append(Segment next)
        {
            next.RunningIndex = RunningIndex + Memory.Length;
            Next = next;
        }
    }
}
