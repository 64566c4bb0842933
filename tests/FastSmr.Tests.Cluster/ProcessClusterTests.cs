using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using FastSmr.Testing;
using FastSmr.Client;
using FastSmr.Core.Kv;
using FastSmr.Core.Protocol;
using Xunit.Abstractions;

namespace FastSmr.Tests;

/// <summary>The demo end to end as a process, and a harness killed outright (kill -9 of replicas is in BackendSuite.Processes.cs).</summary>
[Collection(ClusterCollection.Name)]
public partial class ProcessClusterTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Demo_AsAProcess_ExitsZero_WritesSaneJson_AndCleansUp()
    {
        var json = Path.Combine(Path.GetTempPath(), "fastsmr-demo-test-" + Guid.NewGuid().ToString("N")[..8] + ".json");
        var (exitCode, text) = await RunFastsmrAsync("demo", "--seconds", "3", "--clients", "8", "--json", json);
        try
        {
            Assert.Equal(0, exitCode);
            var directory = DemoDirectory().Match(text).Groups[1].Value;
            Assert.False(string.IsNullOrEmpty(directory));
            Assert.False(Directory.Exists(directory), "the demo left its data directory behind");

            using var document = JsonDocument.Parse(await File.ReadAllTextAsync(json));
            var root = document.RootElement;
            Assert.Equal(1, root.GetProperty("schema_version").GetInt32());
            Assert.Equal("dotnext", root.GetProperty("backend").GetString());
            Assert.Equal("durable", root.GetProperty("durability").GetString());
            Assert.Equal(3, root.GetProperty("replicas").GetInt32());
            Assert.Equal(8, root.GetProperty("clients").GetInt32());
            Assert.True(root.GetProperty("replicas_converged").GetBoolean());
            var ops = root.GetProperty("ops").GetInt64();
            Assert.True(ops > 0);
            Assert.InRange(root.GetProperty("ops_per_sec").GetDouble(), ops / 3.0 * 0.99, ops / 3.0 * 1.01);
            var latency = root.GetProperty("latency_us");
            var p50 = latency.GetProperty("p50").GetInt64();
            var p99 = latency.GetProperty("p99").GetInt64();
            Assert.True(p50 > 0 && p50 <= latency.GetProperty("p90").GetInt64() && p99 <= latency.GetProperty("p999").GetInt64() && p99 <= latency.GetProperty("max").GetInt64());
            Assert.True(root.GetProperty("errors").GetInt64() >= 0);
            Assert.True(root.GetProperty("leader_alloc_bytes_per_cmd").GetDouble() > 0);
            Assert.False(string.IsNullOrEmpty(root.GetProperty("commit").GetString()));
            Assert.True(root.GetProperty("machine").GetProperty("cores").GetInt32() > 0);
        }
        finally
        {
            File.Delete(json);
        }
    }

    [Fact]
    public async Task Demo_OpenLoop_OffersTheRequestedRate()
    {
        var json = Path.Combine(Path.GetTempPath(), "fastsmr-demo-rate-" + Guid.NewGuid().ToString("N")[..8] + ".json");
        var (exitCode, _) = await RunFastsmrAsync("demo", "--seconds", "3", "--clients", "4", "--pipeline", "8", "--rate", "400", "--json", json);
        try
        {
            Assert.Equal(0, exitCode);
            using var document = JsonDocument.Parse(await File.ReadAllTextAsync(json));
            var root = document.RootElement;
            Assert.Equal(400, root.GetProperty("offered_rate").GetDouble());
            // Every request scheduled in the window is sent (late ones are charged their lateness), so committed
            // throughput tracks the offer: 1,200 requests in 3 s, minus any errors.
            var done = root.GetProperty("ops").GetInt64() + root.GetProperty("errors").GetInt64();
            Assert.InRange(done, 1_100, 1_210);
        }
        finally
        {
            File.Delete(json);
        }
    }

    [Fact]
    public async Task HarnessKilledWithSigkill_LeavesNoReplicaBehind()
    {
        // demo and chaos start replicas with --exit-with-parent: a replica stops once the process that started it is gone.
        var info = Programs.Fastsmr.StartInfo(["demo", "--seconds", "60", "--clients", "2"]);

        using var harness = Process.Start(info)!;
        var printed = new StringBuilder();
        harness.OutputDataReceived += (_, e) => Append(e.Data);
        harness.ErrorDataReceived += (_, e) => Append(e.Data);
        harness.BeginOutputReadLine();
        harness.BeginErrorReadLine();
        int[] replicas = [];
        try
        {
            await Wait.UntilAsync(() => (replicas = Children(harness.Id)).Length >= 3, TimeSpan.FromSeconds(60), "the demo started its 3 replicas");
            Assert.Equal(3, replicas.Length);
            await Wait.UntilAsync(() => Printed().Contains(" leads in term ", StringComparison.Ordinal), TimeSpan.FromSeconds(60), "the demo's replicas elected a leader");
        }
        finally
        {
            harness.Kill(entireProcessTree: false); // SIGKILL the harness only: no chance to stop its children
            await harness.WaitForExitAsync();
        }

        var line = Printed().Split('\n').FirstOrDefault(l => l.Contains(" in /", StringComparison.Ordinal));
        var directory = line is null ? "" : line[(line.LastIndexOf(" in ", StringComparison.Ordinal) + 4)..].Trim();
        var stopped = Stopwatch.StartNew();
        await Wait.TryUntilAsync(() => Task.FromResult(!replicas.Any(Alive)), TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(100));
        output.WriteLine($"replicas {string.Join(",", replicas)} stopped {stopped.ElapsedMilliseconds} ms after their harness was killed");
        foreach (var pid in replicas.Where(Alive))
        {
            Process.GetProcessById(pid).Kill(); // do not leave it running even when the test fails
        }

        Assert.DoesNotContain(replicas, Alive);
        if (directory.Length > 0 && Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true); // the killed harness could not delete it
        }

        void Append(string? text)
        {
            lock (printed)
            {
                printed.AppendLine(text);
            }
        }

        string Printed()
        {
            lock (printed)
            {
                return printed.ToString();
            }
        }

        static int[] Children(int pid) => Directory.EnumerateDirectories($"/proc/{pid}/task")
            .SelectMany(task => File.ReadAllText(Path.Combine(task, "children")).Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(int.Parse).Distinct().ToArray();

        static bool Alive(int pid) => File.Exists($"/proc/{pid}/stat") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal);
    }

    private Task<(int ExitCode, string Output)> RunFastsmrAsync(params string[] arguments) => FastsmrProcess.RunAsync(output, TimeSpan.FromMinutes(3), arguments);

    [GeneratedRegex(@"replicas \([^)]*\) in (\S+)")]
    private static partial Regex DemoDirectory();
}
