using System.Buffers;
using BenchmarkDotNet.Attributes;
using FastSmr.Core;
using FastSmr.Core.Batching;
using FastSmr.Core.Kv;
using FastSmr.Core.StateMachines;

namespace FastSmr.Bench;

/// <summary>
/// The per-command work on the hot path outside the network and the disk: building a batch from client records,
/// validating it, and applying it to the key-value store. Allocated bytes are the gate: building and parsing must stay at 0.
/// </summary>
[MemoryDiagnoser]
public class BatchBenchmarks
{
    private readonly BatchWriter writer = new(1 << 20);
    private readonly ArrayBufferWriter<byte> output = new(1024);
    private readonly KvStateMachine kv = new();
    private byte[][] records = [];
    private byte[] batch = [];

    [Params(1, 64, 1024)]
    public int Commands { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        records = new byte[Commands][];
        for (var i = 0; i < Commands; i++)
        {
            var key = BitConverter.GetBytes(random.Next(10_000));
            var value = new byte[64];
            random.NextBytes(value);
            var command = KvCommand.Put(key, value);
            var record = new byte[BatchFormat.RecordHeaderSize + command.Length];
            BatchFormat.WriteRecordHeader(record, command.Length, CommandOptions.None, 1, (ulong)i);
            command.CopyTo(record, BatchFormat.RecordHeaderSize);
            records[i] = record;
        }

        batch = Build().ToArray();
        ApplyBatch(); // the keys exist afterwards, so measured puts overwrite in place
    }

    [Benchmark]
    public ReadOnlyMemory<byte> Build()
    {
        writer.Reset();
        foreach (var record in records)
        {
            writer.TryAppendRecord(record);
        }

        return writer.Complete(1, 1, new ReplicaId(1));
    }

    [Benchmark]
    public int Parse()
    {
        if (!BatchFormat.TryParse(batch, out var header, out var error))
        {
            throw new InvalidOperationException(error);
        }

        var total = 0;
        foreach (var record in BatchFormat.EnumerateRecords(batch))
        {
            total += record.Command.Length;
        }

        return total + header.CommandCount;
    }

    [Benchmark]
    public int ApplyBatch()
    {
        if (!BatchFormat.TryParse(batch, out var header, out var error))
        {
            throw new InvalidOperationException(error);
        }

        var ordinal = 0;
        foreach (var record in BatchFormat.EnumerateRecords(batch))
        {
            output.ResetWrittenCount();
            kv.Apply(new ApplyContext(new LogIndex(1), ordinal++, header.LeaderTimestampMicros, record.ClientId, record.Sequence), record.Command, output);
        }

        return ordinal;
    }
}
