using System.CommandLine;

namespace FastSmr.Cli;

/// <summary>The <c>fastsmr</c> command line: one file per command, over the harness in FastSmr.Testing.</summary>
public static class Program
{
    /// <summary>Entry point.</summary>
    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("FastSmr: state machine replication for latency-sensitive .NET back-ends")
        {
            ServeCommand.Build(),
            DemoCommand.Build(),
            LoadgenCommand.Build(),
            StatusCommand.Build(),
            BenchCommand.Build(),
            CheckCommand.Build(),
            ChaosCommand.Build(),
            LogCommand.Build(),
            FuzzCommand.Build(),
            CertsCommand.Build(),
        };

        // On Ctrl-C / SIGTERM the command's token is cancelled and the process waits for the command to clean up: the
        // demo and chaos runs stop every replica they started (SIGTERM, up to 10 s each, then SIGKILL) before exiting.
        var invocation = new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(60) };
        return await root.Parse(args).InvokeAsync(invocation).ConfigureAwait(false);
    }
}
