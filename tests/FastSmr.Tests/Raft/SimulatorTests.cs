using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using FastSmr.Raft;
using FastSmr.Simulation;
using Xunit.Abstractions;

namespace FastSmr.Tests.Raft;

/// <summary>The seeded simulator in CI: thousands of seeds pass, every injected bug is caught, a seed replays exactly.</summary>
public sealed class SimulatorTests(ITestOutputHelper output)
{
    [Fact]
    public void CiSeeds_ThreeAndFiveReplicas_AllPass()
    {
        var watch = Stopwatch.StartNew();
        var (failures, totals) = Run(1, 4000, new SimSettings { Replicas = 3 }, stopAtFirst: false);
        var (failures5, totals5) = Run(1, 1000, new SimSettings { Replicas = 5 }, stopAtFirst: false);
        output.WriteLine($"3 replicas: {totals}");
        output.WriteLine($"5 replicas: {totals5}");
        output.WriteLine($"5,000 seeds in {watch.Elapsed.TotalSeconds:F1} s");
        failures.AddRange(failures5);
        Assert.True(failures.Count == 0, string.Join('\n', failures.Take(5).Select(f => $"seed {f.Seed} (replay: --seed {f.Seed}): step {f.FailureStep}: {f.Failure}")));
    }

    [Theory]
    [InlineData("commit-old-term")]
    [InlineData("ack-before-persist")]
    [InlineData("vote-inside-lease")]
    public void InjectedBug_IsCaughtWithinTheCiSeeds(string bug)
    {
        var (failures, totals) = Run(1, 3000, new SimSettings { Replicas = 3, Bug = FastSmr.Simulation.Program.ParseBug(bug) }, stopAtFirst: true);
        output.WriteLine(totals);
        Assert.NotEmpty(failures);
        var first = failures.MinBy(f => f.Seed)!;
        output.WriteLine($"caught at seed {first.Seed}, step {first.FailureStep}: {first.Failure}");
        Assert.StartsWith("SAFETY", first.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public void ASeed_ReplaysExactly_InSeparateProcesses()
    {
        foreach (var seed in new[] { 3, 77, 1032 })
        {
            var inProcess = new FastSmr.Simulation.Simulation(seed, new SimSettings()).Run().TraceHash.ToString("x16", CultureInfo.InvariantCulture);
            var first = RunProcess(seed);
            var second = RunProcess(seed);
            output.WriteLine($"seed {seed}: {inProcess} / {first} / {second}");
            Assert.Equal(inProcess, first);
            Assert.Equal(first, second);
        }
    }

    private static string RunProcess(int seed)
    {
        var info = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "FastSmr.Simulation.dll"));
        info.ArgumentList.Add("--seed");
        info.ArgumentList.Add(seed.ToString(CultureInfo.InvariantCulture));
        info.ArgumentList.Add("--trace-hash");
        using var process = Process.Start(info)!;
        var text = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(60_000))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("the simulator did not finish seed " + seed + " in 60 s");
        }

        Assert.Equal(0, process.ExitCode);
        return text.Result.Trim();
    }

    private static (List<SimResult> Failures, string Totals) Run(int first, int count, SimSettings settings, bool stopAtFirst)
    {
        var failures = new ConcurrentBag<SimResult>();
        long faults = 0, elections = 0, commits = 0, proposals = 0, run = 0;
        Parallel.For(first, first + count, (seed, state) =>
        {
            var result = new FastSmr.Simulation.Simulation(seed, settings).Run();
            Interlocked.Increment(ref run);
            Interlocked.Add(ref faults, result.Stats.Faults);
            Interlocked.Add(ref elections, result.Stats.Elections);
            Interlocked.Add(ref commits, result.Stats.Commits);
            Interlocked.Add(ref proposals, result.Stats.Proposals);
            if (!result.Passed)
            {
                failures.Add(result);
                if (stopAtFirst)
                {
                    state.Stop();
                }
            }
        });
        return ([.. failures], $"{run} seeds run: {faults} faults, {elections} elections, {commits} commits, {proposals} proposals");
    }
}
