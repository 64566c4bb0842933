using System.Diagnostics;

namespace FastSmr.Tests.Raft;

/// <summary>Runs the simulator's command line as its own process (its garbage stays out of the test process).</summary>
internal static class SimulatorProcess
{
    private const int WaitMaxMs = 300_000;

    /// <summary>Runs it with <paramref name="arguments"/>; returns its exit code and everything it printed.</summary>
    public static (int ExitCode, string Output) Run(params string[] arguments)
    {
        using var process = Process.Start(Programs.Simulator.StartInfo(arguments))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(WaitMaxMs))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("the simulator did not finish in " + (WaitMaxMs / 1000) + " s: " + string.Join(' ', arguments));
        }

        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
