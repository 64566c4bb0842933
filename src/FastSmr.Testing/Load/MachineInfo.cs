using System.Diagnostics;
using System.Runtime.InteropServices;

namespace FastSmr.Testing.Load;

/// <summary>Names the machine and the commit a figure was measured on.</summary>
internal static class MachineInfo
{
    public static Dictionary<string, object> Describe() =>
        new()
        {
            ["host"] = Environment.MachineName,
            ["cores"] = Environment.ProcessorCount,
            ["cpu"] = CpuModel(),
            ["memory_gib"] = Math.Round(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (double)(1L << 30), 1),
            ["os"] = RuntimeInformation.OSDescription,
            ["runtime"] = RuntimeInformation.FrameworkDescription,
        };

    public static string Commit()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable("FASTSMR_COMMIT");
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            return fromEnvironment;
        }

        var head = Git("rev-parse --short=12 HEAD");
        if (string.IsNullOrEmpty(head))
        {
            return "unknown";
        }

        // Result files being rewritten do not make the measured code dirty.
        return Git("status --porcelain --untracked-files=no -- :/ :(exclude,top)perf-results")?.Length > 0 ? head + "-dirty" : head;
    }

    /// <summary>Runs git in the program's directory; null when git is missing or fails.</summary>
    private static string? Git(string arguments)
    {
        try
        {
            using var git = Process.Start(
                new ProcessStartInfo("git", arguments)
                {
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                    UseShellExecute = false,
                    WorkingDirectory = AppContext.BaseDirectory,
                }
            );
            if (git is null)
            {
                return null;
            }

            var output = git.StandardOutput.ReadToEnd().Trim();
            return git.WaitForExit(5_000) && git.ExitCode == 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    private static string CpuModel()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                if (line.StartsWith("model name", StringComparison.Ordinal))
                {
                    return line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
                }
            }
        }
        catch (IOException) { }

        return RuntimeInformation.ProcessArchitecture.ToString();
    }
}
