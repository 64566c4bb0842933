using System.CommandLine;
using FastSmr.Testing.Bench;

namespace FastSmr.Cli;

/// <summary><c>fastsmr bench</c>: stock DotNext against FastSmr's group commit, in one process (<see cref="InProcessBench"/>).</summary>
internal static class BenchCommand
{
    public static Command Build()
    {
        var seconds = new Option<int>("--seconds") { Description = "measured seconds per row", DefaultValueFactory = _ => 5 };
        var writers = new Option<int>("--writers") { Description = "concurrent writers in the loaded rows", DefaultValueFactory = _ => 64 };
        var json = new Option<FileInfo?>("--json") { Description = "write the figures as JSON to this file" };
        var command = new Command(
            "bench",
            "in-process 3-replica cluster: stock DotNext (one entry per command) "
                + "against FastSmr's group commit, both durability modes, in one run"
        )
        {
            seconds,
            writers,
            json,
        };
        command.SetAction(
            async (result, token) =>
            {
                if (result.GetValue(seconds) is < 1 or > 600 || result.GetValue(writers) is < 1 or > 4096)
                {
                    return await CommonOptions.UsageErrorAsync("bench", "--seconds 1..600, --writers 1..4096").ConfigureAwait(false);
                }

                return await InProcessBench
                    .RunAsync(result.GetValue(seconds), result.GetValue(writers), result.GetValue(json)?.FullName, token)
                    .ConfigureAwait(false);
            }
        );
        return command;
    }
}
