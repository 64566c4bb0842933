using BenchmarkDotNet.Attributes;
using FastSmr.Log;

namespace FastSmr.Bench;

/// <summary>
/// FastSmr.Log's hot path without the sync: appending a record (into the write buffer, a pwrite when it fills) and
/// reading records through the mapping. Allocated bytes must be 0 for both; durable throughput is the <c>log</c> command.
/// </summary>
[MemoryDiagnoser]
public class LogBenchmarks
{
    private const int ReadBatch = 256;
    private string directory = "";
    private SegmentedLog log = null!;
    private byte[] payload = [];
    private long readFrom;

    [Params(64, 4096)]
    public int PayloadBytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        directory = Directory.CreateTempSubdirectory("fastsmr-logbdn-").FullName;
        log = SegmentedLog.Open(directory);
        payload = new byte[PayloadBytes];
        new Random(PayloadBytes).NextBytes(payload);
        for (var i = 0; i < 10_000; i++)
        {
            log.Append(new Term(1), payload);
        }

        log.Flush();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        log.Dispose();
        Directory.Delete(directory, recursive: true);
    }

    [Benchmark(Description = "Append one record (buffered; no sync)")]
    public LogIndex Append() => log.Append(new Term(1), payload);

    [Benchmark(Description = "Read 256 records (zero-copy)", OperationsPerInvoke = ReadBatch)]
    public long Read()
    {
        readFrom = readFrom + (2 * ReadBatch) - 1 > 10_000 ? 1 : readFrom + ReadBatch;
        long sum = 0;
        foreach (var entry in log.Read(new LogIndex(readFrom), new LogIndex(readFrom + ReadBatch - 1)))
        {
            sum += entry.Payload.Length;
        }

        return sum;
    }
}
