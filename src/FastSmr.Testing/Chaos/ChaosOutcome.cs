using System.Globalization;
using System.Text.Json;
using FastSmr.Core.Protocol;
using FastSmr.Testing.Load;
using FastSmr.Verification;

namespace FastSmr.Testing.Chaos;

/// <summary>What one chaos run found: the reasons it fails (none: PASS), the verdict line and <c>report.json</c>.</summary>
internal sealed class ChaosOutcome(ChaosSettings settings, int registerClients, long startedNs)
{
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    public ChaosSettings Settings { get; } = settings;

    /// <summary>Why the run fails; empty when it passes.</summary>
    public List<string> Reasons { get; } = [];

    public List<StatusReport>? Converged { get; set; }

    public List<string> Missing { get; set; } = [];

    public int Unreadable { get; set; }

    public CheckResult? Check { get; set; }

    public bool Pass => Reasons.Count == 0;

    /// <summary>The run tested something: enough operations succeeded, and none outlived its deadline by much.</summary>
    public void JudgeWorkload(ChaosWorkload workload)
    {
        var total = Total(workload);
        var okShare = total == 0 ? 0 : workload.Ok / (double)total;
        if (okShare < Settings.MinOkShare)
        {
            Reasons.Add(
                FormattableString.Invariant(
                    $"only {okShare:P0} of {total} operations succeeded (at least {Settings.MinOkShare:P0} needed to count as a test)"
                )
            );
        }

        if (workload.DeadlineOverruns > 0)
        {
            Reasons.Add(
                FormattableString.Invariant($"{workload.DeadlineOverruns} operations outlived their deadline by more ")
                    + FormattableString.Invariant($"than 1 s (worst by {workload.WorstOverrun.TotalMilliseconds:F0} ms)")
            );
        }
    }

    /// <summary>Every scheduled fault was injected and the cluster recovered after each heal.</summary>
    public void JudgeNemesis(ChaosNemesis nemesis)
    {
        Reasons.AddRange(nemesis.Problems);
        foreach (var kind in nemesis.Planned.Where(k => !nemesis.Injected.ContainsKey(k)))
        {
            Reasons.Add("scheduled fault " + kind.Name() + " was never injected");
        }
    }

    /// <summary><c>chaos: PASS seed=… ops=… unknown=… faults=… ok=…</c>, or FAIL with the reasons.</summary>
    public string VerdictLine(ChaosWorkload workload, ChaosNemesis nemesis)
    {
        var verdict =
            FormattableString.Invariant($"chaos: {(Pass ? "PASS" : "FAIL")} seed={Settings.Seed} ops={Total(workload)} ")
            + FormattableString.Invariant($"unknown={workload.Unknown} faults={Faults(nemesis)} ok={workload.Ok}");
        return Pass ? verdict : verdict + " reasons: " + string.Join(" | ", Reasons);
    }

    /// <summary>Writes <c>report.json</c>.</summary>
    public async Task WriteReportAsync(string path, ChaosWorkload workload, ChaosNemesis nemesis)
    {
        var report = new Dictionary<string, object?>
        {
            ["verdict"] = Pass ? "PASS" : "FAIL",
            ["reasons"] = Reasons,
            ["seed"] = Settings.Seed,
            ["seconds"] = Settings.Seconds,
            ["replicas"] = Settings.Replicas,
            ["backend"] = Names.Of(Settings.Backend),
            ["durability"] = Names.Of(Settings.Durability),
            ["injectedBug"] = Settings.InjectBug,
            ["settings"] = SettingsSection(),
            ["operations"] = OperationsSection(workload),
            ["setWrites"] = new Dictionary<string, object>
            {
                ["acknowledged"] = workload.AckedSetWrites,
                ["unknown"] = workload.UnknownSetWrites,
                ["missing"] = Missing,
                ["unreadable"] = Unreadable,
            },
            ["faults"] = nemesis.Injected.ToDictionary(p => p.Key.Name(), p => p.Value),
            ["heals"] = nemesis.Heals,
            ["check"] = CheckSection(),
            ["converged"] = Converged is null
                ? null
                : new Dictionary<string, object>
                {
                    ["appliedIndex"] = Converged[0].AppliedIndex.Value,
                    ["digest"] = Converged[0].Digest.ToString(),
                },
            ["wallSeconds"] = Math.Round((ChaosWorkload.Now() - startedNs) / 1e9, 1),
            ["note"] =
                "kill -9 leaves the page cache intact, so these runs cannot show a missing fsync; power-loss durability needs another test",
            ["machine"] = MachineInfo.Describe(),
            ["commit"] = MachineInfo.Commit(),
            ["measuredAt"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
        };
        var stream = File.Create(path);
        await using (stream.ConfigureAwait(false))
        {
            await JsonSerializer.SerializeAsync(stream, report, JsonOptions, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static long Total(ChaosWorkload workload) => workload.Ok + workload.Failed + workload.Unknown;

    private static string Faults(ChaosNemesis nemesis) =>
        string.Join(
            ',',
            nemesis.Injected.OrderBy(p => p.Key).Select(p => p.Key.Name() + ":" + p.Value.ToString(CultureInfo.InvariantCulture))
        );

    private Dictionary<string, object> SettingsSection() =>
        new()
        {
            ["electionTimeoutMs"] = Settings.ElectionTimeoutMs,
            ["operationTimeoutMs"] = Settings.OperationTimeout.TotalMilliseconds,
            ["registerClients"] = registerClients,
            ["setClients"] = Settings.SetClients,
            ["keySlots"] = Settings.KeySlots,
            ["operationsPerKey"] = Settings.OperationsPerKey,
            ["minOkShare"] = Settings.MinOkShare,
        };

    private static Dictionary<string, object> OperationsSection(ChaosWorkload workload) =>
        new()
        {
            ["total"] = Total(workload),
            ["ok"] = workload.Ok,
            ["fail"] = workload.Failed,
            ["unknown"] = workload.Unknown,
            ["byClientStatus"] = workload.Statuses,
            ["deadlineOverruns"] = workload.DeadlineOverruns,
        };

    private Dictionary<string, object?>? CheckSection() =>
        Check is not { } check
            ? null
            : new Dictionary<string, object?>
            {
                ["verdict"] = check.Verdict.ToString(),
                ["operations"] = check.Operations,
                ["keys"] = check.Keys,
                ["elapsedMs"] = Math.Round(check.Elapsed.TotalMilliseconds),
                ["failingKey"] = check.FailingKey,
            };
}
