using System.Diagnostics;
using FastSmr.Testing.Storage;
using FastSmr.Log;
using Xunit.Abstractions;

using static FastSmr.Tests.Units;

namespace FastSmr.Tests;

/// <summary>
/// Kill -9 crash tests: a child process appends and flushes (<c>fastsmr log torture</c>), printing each index whose
/// flush returned; it is killed at a random moment, then the log is reopened and checked: every record up to the last
/// printed durable index is present and intact, every record present is intact, and the next writer continues it.
/// </summary>
public sealed class LogCrashTests(ITestOutputHelper output) : IDisposable
{
    private const long SegmentSize = 64 * 1024; // small, so the run crosses segment roll-overs and compactions
    private readonly string directory = Directory.CreateTempSubdirectory("fastsmr-logcrash-").FullName;

    [Fact]
    public async Task KilledWhileAppendingAndFlushing_KeepsEveryFlushedRecord()
    {
        var rng = new Random(4242);
        long previousDurable = 0;
        for (var round = 0; round < 6; round++)
        {
            var durable = await RunAndKillAsync(round, TimeSpan.FromMilliseconds(rng.Next(50, 700)));
            using var log = SegmentedLog.Open(directory, new LogOptions { SegmentSize = SegmentSize });
            output.WriteLine($"round {round}: last printed durable {durable}, reopened [{log.FirstIndex.Value}, {log.LastIndex.Value}] in {log.SegmentCount} segments");
            Assert.True(durable > previousDurable, "the writer made no progress in round " + round);
            Assert.True(log.LastIndex.Value >= durable, $"flushed up to {durable} but the log ends at {log.LastIndex.Value}");
            var expected = new byte[512];
            var index = log.FirstIndex.Value;
            foreach (var entry in log.Read(I(log.FirstIndex.Value), I(log.LastIndex.Value)))
            {
                var length = LogTorture.ExpectedPayload(I(index), expected);
                Assert.Equal(index, entry.Index.Value);
                Assert.Equal(LogTorture.ExpectedTerm(I(index)), entry.Term);
                Assert.True(entry.Payload.SequenceEqual(expected.AsSpan(0, length)), "record " + index + " is not what was appended");
                index++;
            }

            Assert.Equal(log.LastIndex.Value + 1, index);
            previousDurable = log.LastIndex.Value;
        }
    }

    public void Dispose() => Directory.Delete(directory, recursive: true);

    /// <summary>Starts the writer, kills it with SIGKILL <paramref name="after"/> its first durable line, returns the last durable index it printed.</summary>
    private async Task<long> RunAndKillAsync(int round, TimeSpan after)
    {
        var info = Programs.Fastsmr.StartInfo(["log", "torture", "--dir", directory, "--seed", round.ToString(System.Globalization.CultureInfo.InvariantCulture), "--segment-size", SegmentSize.ToString(System.Globalization.CultureInfo.InvariantCulture)]);

        using var process = Process.Start(info)!;
        long durable = 0;
        var firstDurable = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reader = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                if (line.StartsWith("durable ", StringComparison.Ordinal))
                {
                    Volatile.Write(ref durable, long.Parse(line.AsSpan(8), System.Globalization.CultureInfo.InvariantCulture));
                    firstDurable.TrySetResult();
                }
            }
        });
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await firstDurable.Task.WaitAsync(TimeSpan.FromSeconds(60));
            await Task.Delay(after);
        }
        finally
        {
            process.Kill(entireProcessTree: true); // SIGKILL
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }

        await reader.WaitAsync(TimeSpan.FromSeconds(30)); // every line printed before the kill is read
        var errors = await stderr;
        Assert.True(errors.Length == 0, "the writer failed: " + errors);
        return Volatile.Read(ref durable);
    }
}
