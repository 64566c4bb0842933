using System.Diagnostics;
using System.Globalization;
using FastSmr.Raft;

namespace FastSmr.Simulation;

/// <summary>
/// The simulator's command line, run by <c>dotnet run -c Release --project tests/FastSmr.Simulation.Runner -- --seeds N
/// [--first-seed S] [--replicas 3|5]</c>, or <c>--seed S [--trace]</c> to replay one seed exactly. Prints totals and, last,
/// <c>sim: N seeds passed</c> or the failing seed.
/// </summary>
public static class SimulationRunner
{
    /// <summary>Runs the command line <paramref name="args"/>; returns the exit code (0 passed, 1 a seed failed, 2 usage).</summary>
    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Contains("--system"))
        {
            return SystemSimulationRunner.Run(args); // whole replicas: engine, native replica, state machine, client codec
        }

        var seeds = 100;
        var first = 1;
        int? single = null;
        var replicas = 3;
        var traceOut = false;
        var bug = RaftBug.None;
        var hashOnly = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--seeds": seeds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--first-seed": first = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--seed": single = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--replicas": replicas = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--trace": traceOut = true; break;
                case "--trace-hash": hashOnly = true; break;
                case "--bug": bug = ParseBug(args[++i]); break;
                default:
                    Console.Error.WriteLine("usage: --seeds N [--first-seed S] [--replicas 3|5] [--bug commit-old-term|ack-before-persist|vote-inside-lease] | --seed S [--trace] [--trace-hash]");
                    return 2;
            }
        }

        if (replicas is not (3 or 5))
        {
            Console.Error.WriteLine("sim: --replicas must be 3 or 5");
            return 2;
        }

        var settings = new SimSettings { Replicas = replicas, Bug = bug };
        if (single is { } s)
        {
            var result = new Simulation(s, settings with { Trace = traceOut ? Console.Out : null }).Run();
            if (hashOnly)
            {
                Console.WriteLine(result.TraceHash.ToString("x16", CultureInfo.InvariantCulture));
                return result.Passed ? 0 : 1;
            }

            Report(result);
            return result.Passed ? 0 : 1;
        }

        return RunMany(first, seeds, settings);
    }

    internal static int RunMany(int first, int seeds, SimSettings settings)
    {
        var watch = Stopwatch.StartNew();
        SimResult? failed = null;
        long faults = 0, elections = 0, commits = 0, proposals = 0, steps = 0, crashes = 0, compactions = 0, installs = 0, configChanges = 0;
        var done = 0;
        var gate = new object();
        Parallel.For(first, first + seeds, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, (seed, state) =>
        {
            var result = new Simulation(seed, settings).Run();
            lock (gate)
            {
                done++;
                faults += result.Stats.Faults;
                elections += result.Stats.Elections;
                commits += result.Stats.Commits;
                proposals += result.Stats.Proposals;
                steps += result.Stats.Steps;
                crashes += result.Stats.Crashes;
                compactions += result.Stats.Compactions;
                installs += result.Stats.Installs;
                configChanges += result.Stats.ConfigChanges;
                if (!result.Passed && (failed is null || result.Seed < failed.Seed))
                {
                    failed = result;
                    state.Stop();
                }

                if (done % 10_000 == 0)
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"sim: {done} seeds, {watch.Elapsed.TotalSeconds:F0} s"));
                }
            }
        });
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"sim: {done} seeds in {watch.Elapsed.TotalSeconds:F1} s: {faults} faults ({crashes} crashes), {elections} elections, {commits} commits, {proposals} proposals, {configChanges} membership changes committed, {compactions} compactions, {installs} snapshots installed, {steps} steps"));
        if (failed is not null)
        {
            Report(failed);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"sim: FAILED seed {failed.Seed} (replay: --seed {failed.Seed} --replicas {settings.Replicas}{(settings.Bug != RaftBug.None ? " --bug " + BugName(settings.Bug) : "")})"));
            return 1;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"sim: {done} seeds passed"));
        return 0;
    }

    private static void Report(SimResult result)
    {
        var s = result.Stats;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"seed {result.Seed}: {(result.Passed ? "passed" : "FAILED at step " + result.FailureStep + ": " + result.Failure)}; faults {s.Faults} (crashes {s.Crashes}), elections {s.Elections}, commits {s.Commits}, proposals {s.Proposals} (acknowledged {s.Acknowledged}, dropped {s.Dropped}), membership changes {s.ConfigChanges}, compactions {s.Compactions}, installs {s.Installs}, steps {s.Steps}, trace {result.TraceHash:x16}"));
    }

    internal static string BugName(RaftBug bug) => bug switch
    {
        RaftBug.CommitOldTermByCounting => "commit-old-term",
        RaftBug.AcknowledgeBeforePersist => "ack-before-persist",
        RaftBug.VoteInsideLease => "vote-inside-lease",
        _ => "none",
    };

    internal static RaftBug ParseBug(string name) => name switch
    {
        "commit-old-term" => RaftBug.CommitOldTermByCounting,
        "ack-before-persist" => RaftBug.AcknowledgeBeforePersist,
        "vote-inside-lease" => RaftBug.VoteInsideLease,
        _ => throw new ArgumentException("unknown bug " + name),
    };
}
