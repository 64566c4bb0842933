using System.Globalization;
using FastSmr.Log;

namespace FastSmr.Cli;

/// <summary>
/// <c>fastsmr log verify</c> opens a FastSmr.Log directory as a replica would (recovering a torn tail) and reads every
/// record, checking every CRC; <c>fastsmr log torture</c> (hidden) appends and flushes until killed, printing each
/// durable index, for the kill -9 crash tests.
/// </summary>
public static class LogCommand
{
    /// <summary>The torture writer's record <paramref name="index"/>: deterministic, so a verifier can recompute it.</summary>
    public static int ExpectedPayload(long index, Span<byte> destination)
    {
        var length = 1 + (int)((index * 2654435761L) % 300);
        var state = (ulong)index * 0x9E3779B97F4A7C15UL;
        for (var i = 0; i < length; i++)
        {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            destination[i] = (byte)state;
        }

        return length;
    }

    /// <summary>The torture writer's term for record <paramref name="index"/> (rises every 1,000 records).</summary>
    public static long ExpectedTerm(long index) => 1 + (index / 1000);

    /// <summary>Opens, reads every record, prints a summary; 0 when intact, 1 when corrupt, 2 on a usage error.</summary>
    public static int Verify(string directory, ulong clusterId, uint nodeId, long segmentSize, TextWriter output)
    {
        if (!Directory.Exists(directory))
        {
            output.WriteLine("fastsmr log verify: no such directory " + directory);
            return 2;
        }

        try
        {
            using var log = SegmentedLog.Open(directory, new LogOptions { ClusterId = clusterId, NodeId = nodeId, SegmentSize = segmentSize });
            long records = 0, bytes = 0;
            if (log.LastIndex >= log.FirstIndex)
            {
                foreach (var entry in log.Read(log.FirstIndex, log.LastIndex))
                {
                    records++;
                    bytes += entry.Payload.Length;
                }
            }

            var m = log.Metadata;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"fastsmr log verify: OK {directory}: records [{log.FirstIndex}, {log.LastIndex}] ({records} records, {bytes} payload bytes) in {log.SegmentCount} segments; last term {log.LastTerm}; term {m.Term}, voted for {m.VotedFor}, commit {m.CommitIndex}, compacted up to {m.CompactedIndex} (term {m.CompactedTerm})"));
            return 0;
        }
        catch (InvalidDataException e)
        {
            output.WriteLine("fastsmr log verify: CORRUPT " + e.Message);
            return 1;
        }
    }

    /// <summary>Appends deterministic records and flushes in random-sized groups until cancelled, printing "durable N" after each flush.</summary>
    public static async Task<int> TortureAsync(string directory, int seed, long segmentSize, CancellationToken token)
    {
        var rng = new Random(seed);
        using var log = SegmentedLog.Open(directory, new LogOptions { SegmentSize = segmentSize, WriteBufferSize = 16 * 1024 });
        var payload = new byte[512];
        await Console.Out.WriteLineAsync("open " + log.LastIndex.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
        while (!token.IsCancellationRequested)
        {
            var group = rng.Next(1, 64);
            long last = 0;
            for (var i = 0; i < group; i++)
            {
                var index = log.LastIndex + 1;
                var length = ExpectedPayload(index, payload);
                last = log.Append(ExpectedTerm(index), payload.AsSpan(0, length));
            }

            // Two flushes at once, as Raft's replication and the client path would ask: they share one sync.
            var a = log.FlushAsync(last - (group / 2), CancellationToken.None);
            var b = log.FlushAsync(last, CancellationToken.None);
            await a.ConfigureAwait(false);
            await b.ConfigureAwait(false);
            await Console.Out.WriteLineAsync("durable " + last.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
            await Console.Out.FlushAsync(token).ConfigureAwait(false);
            if (last > 20_000 && rng.Next(50) == 0)
            {
                log.CompactPrefix(last - 10_000);
            }
        }

        return 0;
    }
}
