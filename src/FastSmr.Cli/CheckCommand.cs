using System.CommandLine;
using FastSmr.Verification;

namespace FastSmr.Cli;

/// <summary><c>fastsmr check</c>: the linearizability checker over a JSON Lines history.</summary>
internal static class CheckCommand
{
    public static Command Build()
    {
        var history = new Option<FileInfo>("--history")
        {
            Description = "history as JSON Lines (see FastSmr.Verification.HistoryFile)",
            Required = true,
        };
        var budget = new Option<int>("--budget-seconds")
        {
            Description = "time budget; running out is inconclusive, never a pass",
            DefaultValueFactory = _ => 60,
        };
        var report = new Option<FileInfo?>("--report") { Description = "where to write the report (default: next to the history)" };
        var command = new Command("check", "check a key-value history for linearizability (exit 0 linearizable, 1 not, 3 inconclusive)")
        {
            history,
            budget,
            report,
        };
        command.SetAction(
            async (result, token) =>
            {
                var path = result.GetValue(history)!.FullName;
                List<KvOperation> operations;
                try
                {
                    operations = HistoryFile.Read(path);
                }
                catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
                {
                    return await CommonOptions.UsageErrorAsync("check", e.Message).ConfigureAwait(false);
                }

                var check = LinearizabilityChecker.Check(operations, TimeSpan.FromSeconds(Math.Max(1, result.GetValue(budget))));
                var text = check.Describe();
                await Console.Out.WriteAsync(text).ConfigureAwait(false);
                var reportPath = result.GetValue(report)?.FullName ?? path + ".report.txt";
                await File.WriteAllTextAsync(reportPath, text, token).ConfigureAwait(false);
                await Console.Out.WriteLineAsync("fastsmr check: wrote " + reportPath).ConfigureAwait(false);
                return check.Verdict switch
                {
                    CheckVerdict.Linearizable => 0,
                    CheckVerdict.NotLinearizable => 1,
                    _ => 3,
                };
            }
        );
        return command;
    }
}
