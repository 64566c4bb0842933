using System.Diagnostics;
using Xunit.Abstractions;

namespace FastSmr.Tests;

/// <summary>Runs the <c>fastsmr</c> program as a child process, bounded in time, stopped (with its children) by id.</summary>
internal static class FastsmrProcess
{
    /// <summary>Runs <c>fastsmr</c> with <paramref name="arguments"/> to completion, logging its output; kills its process tree past <paramref name="limit"/>.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(ITestOutputHelper output, TimeSpan limit, params string[] arguments)
    {
        var (exitCode, text, _) = await RunWithErrorsAsync(output, limit, arguments);
        return (exitCode, text);
    }

    /// <summary>As <see cref="RunAsync"/>, also returning what the program wrote to standard error.</summary>
    public static async Task<(int ExitCode, string Output, string Errors)> RunWithErrorsAsync(ITestOutputHelper output, TimeSpan limit, params string[] arguments)
    {
        var info = Programs.Fastsmr.StartInfo(arguments);

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            output.WriteLine(await stdout);
            throw;
        }

        var text = await stdout;
        var errors = await stderr;
        output.WriteLine(text);
        output.WriteLine(errors);
        return (process.ExitCode, text, errors);
    }
}
