using System.Diagnostics;
using System.Globalization;

namespace FastSmr.Simulation;

/// <summary>
/// The whole-system mode of the simulator's command line: <c>--system --seeds N [--first-seed S] [--replicas 3|5]</c>
/// runs seeds on every core and ends with <c>sim: N seeds passed</c> (or the failing seed and its replay command);
/// <c>--system --seed S [--trace] [--trace-hash]</c> replays one seed exactly.
/// </summary>
public static class SystemSimulationRunner
{
    /// <summary>Runs the command line; returns the exit code (0 passed, 1 a seed failed, 2 usage).</summary>
    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var seeds = 20;
        var first = 1;
        int? single = null;
        var replicas = 3;
        var trace = false;
        var hashOnly = false;
        var bug = FastSmr.Native.NativeBug.None;
        var beyond = false;
        long? requestTimeoutMs = null;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--system": break;
                case "--seeds" when i + 1 < args.Length: seeds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--first-seed" when i + 1 < args.Length: first = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--seed" when i + 1 < args.Length: single = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--replicas" when i + 1 < args.Length: replicas = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--trace": trace = true; break;
                case "--trace-hash": hashOnly = true; break;
                case "--drift-beyond-bound": beyond = true; break;
                case "--request-timeout-ms" when i + 1 < args.Length: requestTimeoutMs = long.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--bug" when i + 1 < args.Length && ParseBug(args[i + 1]) is { } parsed: bug = parsed; i++; break;
                default:
                    Console.Error.WriteLine("usage: --system --seeds N [--first-seed S] [--replicas 3|5] | --system --seed S [--replicas 3|5] [--trace] [--trace-hash]; either with [--bug ack-before-fsync|lease-before-commit|apply-past-commit|lost-wake-up] [--drift-beyond-bound] [--request-timeout-ms T]");
                    return 2;
            }
        }

        if (replicas is not (3 or 5) || seeds < 1)
        {
            Console.Error.WriteLine("sim: --replicas must be 3 or 5 and --seeds at least 1");
            return 2;
        }

        var settings = new SimSystemSettings { Replicas = replicas, Bug = bug, DriftBeyondBound = beyond };
        if (requestTimeoutMs is { } ms || beyond)
        {
            // Beyond the bound, clients that give up on a cut-off leader sooner find the new one sooner: more reads race
            // the stale lease (150 ms unless given).
            settings = settings with { RequestTimeoutUs = (requestTimeoutMs ?? 150) * 1000 };
        }

        if (single is { } s)
        {
            var result = new SystemSimulation(s, settings with { Trace = trace ? Console.Out : null }).Run();
            if (hashOnly)
            {
                Console.WriteLine(result.TraceHash.ToString("x16", CultureInfo.InvariantCulture));
            }
            else
            {
                Report(result);
            }

            return result.Passed ? 0 : 1;
        }

        return RunMany(first, seeds, settings);
    }

    /// <summary>Runs seeds <paramref name="first"/> on, in parallel; prints totals and the verdict line.</summary>
    public static int RunMany(int first, int seeds, SimSystemSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var watch = Stopwatch.StartNew();
        SimSystemResult? failed = null;
        long steps = 0, operations = 0, ok = 0, unknown = 0, crashes = 0, faults = 0, storage = 0, simulatedUs = 0, wipes = 0;
        var done = 0;
        var gate = new object();
        Parallel.For(first, first + seeds, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, (seed, state) =>
        {
            var result = new SystemSimulation(seed, settings).Run();
            lock (gate)
            {
                done++;
                steps += result.Stats.Steps;
                operations += result.Stats.Operations;
                ok += result.Stats.Ok;
                unknown += result.Stats.Unknown;
                crashes += result.Stats.Crashes;
                faults += result.Stats.Faults;
                storage += result.Stats.StorageFaults;
                simulatedUs += result.Stats.SimulatedUs;
                wipes += result.Stats.Wipes;
                if (!result.Passed && (failed is null || result.Seed < failed.Seed))
                {
                    failed = result;
                    state.Stop();
                }

                if (done % 1_000 == 0)
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"sim: {done} seeds, {watch.Elapsed.TotalSeconds:F0} s, {done / watch.Elapsed.TotalSeconds:F1} seeds/s"));
                }
            }
        });
        var seconds = watch.Elapsed.TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"sim: {done} whole-system seeds ({settings.Replicas} replicas) in {seconds:F1} s ({done / seconds:F2} seeds/s, {simulatedUs / 1e6 / seconds:F0} simulated s per s): {faults} faults ({crashes} crashes, {storage} storage faults, {wipes} damaged disks wiped and rejoined), {operations} client operations ({ok} ok, {unknown} unknown), {steps} steps"));
        if (failed is not null)
        {
            Report(failed);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"sim: FAILED seed {failed.Seed} (replay: dotnet run -c Release --project tests/FastSmr.Simulation.Runner -- --system --seed {failed.Seed} --replicas {settings.Replicas}{(settings.Bug == FastSmr.Native.NativeBug.None ? "" : " --bug " + BugName(settings.Bug))}{(settings.DriftBeyondBound ? " --drift-beyond-bound" : "")}{(settings.RequestTimeoutUs != new SimSystemSettings().RequestTimeoutUs ? " --request-timeout-ms " + (settings.RequestTimeoutUs / 1000) : "")} --trace)"));
            return 1;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"sim: {done} seeds passed"));
        return 0;
    }

    private static void Report(SimSystemResult result)
    {
        var s = result.Stats;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"seed {result.Seed}: {(result.Passed ? "passed" : "FAILED " + result.Failure)}; faults {s.Faults} (crashes {s.Crashes}, storage {s.StorageFaults}, wiped {s.Wipes}), operations {s.Operations} (ok {s.Ok}, unknown {s.Unknown}), applied up to {s.AppliedIndex}, messages {s.Messages}, steps {s.Steps}, simulated {s.SimulatedUs / 1000} ms, trace {result.TraceHash:x16}"));
    }

    internal static string BugName(FastSmr.Native.NativeBug bug) => bug switch
    {
        FastSmr.Native.NativeBug.AcknowledgeBeforeFsync => "ack-before-fsync",
        FastSmr.Native.NativeBug.LeaseBeforeCommitIndex => "lease-before-commit",
        FastSmr.Native.NativeBug.ApplyPastCommit => "apply-past-commit",
        FastSmr.Native.NativeBug.LostWakeUp => "lost-wake-up",
        _ => "none",
    };

    internal static FastSmr.Native.NativeBug? ParseBug(string name) => name switch
    {
        "ack-before-fsync" => FastSmr.Native.NativeBug.AcknowledgeBeforeFsync,
        "lease-before-commit" => FastSmr.Native.NativeBug.LeaseBeforeCommitIndex,
        "apply-past-commit" => FastSmr.Native.NativeBug.ApplyPastCommit,
        "lost-wake-up" => FastSmr.Native.NativeBug.LostWakeUp,
        _ => null,
    };
}
