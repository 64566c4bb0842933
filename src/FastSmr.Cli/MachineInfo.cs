using System.Diagnostics;
using System.Runtime.InteropServices;

namespace FastSmr.Cli;

/// <summary>Names the machine and the commit a figure was measured on.</summary>
internal static class MachineInfo
{
    public static Dictionary<string, object> Describe() => new()
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

        try
        {
            using var git = Process.Start(new ProcessStartInfo("git", "rev-parse --short=12 HEAD")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = AppContext.BaseDirectory,
            });
            if (git is null)
            {
                return "unknown";
            }

            var output = git.StandardOutput.ReadToEnd().Trim();
            git.WaitForExit(5_000);
            var dirty = DirtySuffix();
            return git.ExitCode == 0 && output.Length > 0 ? output + dirty : "unknown";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "unknown";
        }
    }

    private static string DirtySuffix()
    {
        using var git = Process.Start(new ProcessStartInfo("git", "status --porcelain --untracked-files=no")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        });
        if (git is null)
        {
            return "";
        }

        var output = git.StandardOutput.ReadToEnd();
        git.WaitForExit(5_000);
        return output.Trim().Length > 0 ? "-dirty" : "";
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
        catch (IOException)
        {
        }

        return RuntimeInformation.ProcessArchitecture.ToString();
    }
}
