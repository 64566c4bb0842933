using System.Globalization;
using FastSmr.Log;

namespace FastSmr.Testing.Storage;

/// <summary>
/// The kill -9 crash tests' writer (<c>fastsmr log torture</c>): appends deterministic records and flushes in random-sized
/// groups until killed, printing each durable index, so a verifier can recompute every record it was promised.
/// </summary>
public static class LogTorture
{
    /// <summary>The torture writer's record <paramref name="at"/>: deterministic, so a verifier can recompute it.</summary>
    public static int ExpectedPayload(LogIndex at, Span<byte> destination)
    {
        var index = at.Value;
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
    public static Term ExpectedTerm(LogIndex index) => new(1 + (index.Value / 1000));

    /// <summary>
    /// Appends deterministic records and flushes in random-sized groups until cancelled, printing "durable N" after
    /// each flush.
    /// </summary>
    /// <param name="directory">The log directory.</param>
    /// <param name="seed">Seed of the group sizes.</param>
    /// <param name="segmentSize">Segment size in bytes.</param>
    /// <param name="output">Where "open N" and each "durable N" go.</param>
    /// <param name="token">Stops the writer.</param>
    public static async Task<int> RunAsync(string directory, int seed, long segmentSize, TextWriter output, CancellationToken token)
    {
        ArgumentNullException.ThrowIfNull(output);
        var rng = new Random(seed);
        using var log = SegmentedLog.Open(directory, new LogOptions { SegmentSize = segmentSize, WriteBufferSize = 16 * 1024 });
        var payload = new byte[512];
        await output.WriteLineAsync("open " + log.LastIndex).ConfigureAwait(false);
        while (!token.IsCancellationRequested)
        {
            var group = rng.Next(1, 64);
            var last = LogIndex.Zero;
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
            await output.WriteLineAsync("durable " + last).ConfigureAwait(false);
            await output.FlushAsync(token).ConfigureAwait(false);
            if (last.Value > 20_000 && rng.Next(50) == 0)
            {
                log.CompactPrefix(last - 10_000);
            }
        }

        return 0;
    }
}
