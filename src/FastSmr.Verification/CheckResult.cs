using System.Globalization;
using System.Text;

namespace FastSmr.Verification;

/// <summary>What a check found.</summary>
/// <param name="Verdict">Linearizable, not, or inconclusive.</param>
/// <param name="Operations">Operations considered (failed ones excluded).</param>
/// <param name="Keys">Keys (independent sub-histories) considered.</param>
/// <param name="Elapsed">How long the check took.</param>
/// <param name="FailingKey">For a violation: the failing key with the fewest operations.</param>
/// <param name="FailingSubHistory">That key's operations, by invocation time.</param>
/// <param name="UndecidedKeys">Keys left undecided when the budget ran out.</param>
public sealed record CheckResult(
    CheckVerdict Verdict,
    int Operations,
    int Keys,
    TimeSpan Elapsed,
    string? FailingKey,
    IReadOnlyList<KvOperation> FailingSubHistory,
    int UndecidedKeys
)
{
    /// <summary>A readable report: the verdict line and, for a violation, the smallest failing key's sub-history.</summary>
    public string Describe()
    {
        var builder = new StringBuilder();
        builder.Append(
            CultureInfo.InvariantCulture,
            $"linearizability: {Verdict} ({Operations} operations over {Keys} keys, {Elapsed.TotalMilliseconds:F0} ms"
        );
        builder.Append(UndecidedKeys > 0 ? string.Create(CultureInfo.InvariantCulture, $", {UndecidedKeys} keys undecided)") : ")");
        builder.AppendLine();
        if (FailingKey is not null)
        {
            builder.AppendLine(
                CultureInfo.InvariantCulture,
                $"no linearization for key '{FailingKey}' ({FailingSubHistory.Count} operations):"
            );
            var origin = FailingSubHistory.Count == 0 ? 0 : FailingSubHistory.Min(o => o.Invoke);
            foreach (var operation in FailingSubHistory)
            {
                builder.Append("  ").AppendLine(operation.Describe(origin));
            }
        }

        return builder.ToString();
    }
}
