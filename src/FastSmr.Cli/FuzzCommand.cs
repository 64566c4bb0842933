using System.CommandLine;
using FastSmr.Testing.Fuzz;

namespace FastSmr.Cli;

/// <summary><c>fastsmr fuzz</c>: mutated inputs through every decoder that reads bytes from outside (exit 1 on a crash).</summary>
internal static class FuzzCommand
{
    public static Command Build()
    {
        var names = string.Join(", ", FuzzTargets.All.Select(t => t.Name));
        var target = new Option<string>("--target") { Description = "one of " + names + ", or all", DefaultValueFactory = _ => "all" };
        var inputs = new Option<long>("--inputs") { Description = "inputs per target", DefaultValueFactory = _ => 1_000_000 };
        var seed = new Option<ulong>("--seed") { Description = "the mutations' seed", DefaultValueFactory = _ => 1 };
        var json = new Option<FileInfo?>("--json") { Description = "write the results (and up to 10 crashing inputs per target) here" };
        var command = new Command("fuzz", "fuzz the decoders: client and peer frames, batches, snapshots, log records, configuration")
        {
            target,
            inputs,
            seed,
            json,
        };
        command.SetAction(
            async (result, token) =>
            {
                var chosen = result.GetValue(target)!;
                var targets = FuzzTargets.All.Where(t => chosen == "all" || t.Name == chosen).ToList();
                if (targets.Count == 0 || result.GetValue(inputs) < 1)
                {
                    return await CommonOptions
                        .UsageErrorAsync("fuzz", "--target must be one of " + names + " or all; --inputs >= 1")
                        .ConfigureAwait(false);
                }

                var reports = new List<FuzzReport>();
                foreach (var t in targets)
                {
                    reports.Add(
                        Fuzzer.Run(t, result.GetValue(inputs), result.GetValue(seed), n => Console.Error.Write($"\r{t.Name}: {n:N0}"))
                    );
                    await Console.Out.WriteLineAsync("\r" + reports[^1].Describe()).ConfigureAwait(false);
                }

                if (result.GetValue(json) is { } file)
                {
                    await FuzzReport.WriteJsonAsync(file.FullName, reports, result.GetValue(seed), token).ConfigureAwait(false);
                }

                return reports.Any(r => r.CrashCount > 0) ? 1 : 0;
            }
        );
        return command;
    }
}
