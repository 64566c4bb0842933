using System.Diagnostics;

namespace FastSmr.Verification;

/// <summary>
/// Checks a key-value history for linearizability: the history is split per key (every operation touches one key, so
/// by P-compositionality the whole is linearizable iff each key's sub-history is), and each sub-history is searched with
/// the Wing–Gong–Lowe algorithm (depth-first over the minimal calls, with a cache of (linearized set, state) pairs so no
/// configuration is explored twice).
/// </summary>
/// <remarks>
/// Failed operations are dropped (they did not happen). Unknown operations may be linearized anywhere after their
/// invocation, or not at all; unknown reads change nothing and are dropped. A check that runs out of its time budget is
/// <see cref="CheckVerdict.Inconclusive"/>, never a pass.
/// </remarks>
public static class LinearizabilityChecker
{
    /// <summary>Checks <paramref name="history"/> within <paramref name="budget"/>.</summary>
    public static CheckResult Check(IReadOnlyList<KvOperation> history, TimeSpan budget)
    {
        ArgumentNullException.ThrowIfNull(history);
        var watch = Stopwatch.StartNew();
        var deadline = Stopwatch.GetTimestamp() + (long)(budget.TotalSeconds * Stopwatch.Frequency);
        var byKey = new Dictionary<string, List<KvOperation>>(StringComparer.Ordinal);
        var operations = 0;
        foreach (var operation in history)
        {
            if (
                operation.Status == OperationStatus.Fail
                || (operation.Status == OperationStatus.Unknown && operation.Kind == KvOperationKind.Get)
            )
            {
                continue;
            }

            if (operation.Status == OperationStatus.Ok && operation.Return < operation.Invoke)
            {
                throw new ArgumentException("operation returns before it is invoked: " + operation.Describe(0), nameof(history));
            }

            operations++;
            if (!byKey.TryGetValue(operation.Key, out var list))
            {
                byKey[operation.Key] = list = [];
            }

            list.Add(operation);
        }

        string? failingKey = null;
        List<KvOperation> failing = [];
        var undecided = 0;
        // Smallest sub-histories first: cheap keys are decided even when a large one exhausts the budget.
        foreach (var (key, list) in byKey.OrderBy(p => p.Value.Count))
        {
            if (failingKey is not null && list.Count >= failing.Count)
            {
                continue; // a smaller failing key is already known
            }

            switch (CheckKey(list, deadline))
            {
                case CheckVerdict.NotLinearizable:
                    failingKey = key;
                    failing = list;
                    break;
                case CheckVerdict.Inconclusive:
                    undecided++;
                    break;
            }
        }

        var verdict =
            failingKey is not null ? CheckVerdict.NotLinearizable
            : undecided > 0 ? CheckVerdict.Inconclusive
            : CheckVerdict.Linearizable;
        return new CheckResult(
            verdict,
            operations,
            byKey.Count,
            watch.Elapsed,
            failingKey,
            failing.OrderBy(o => o.Invoke).ToList(),
            undecided
        );
    }

    /// <summary>Wing–Gong–Lowe search over one key's operations.</summary>
    private static CheckVerdict CheckKey(List<KvOperation> operations, long deadline)
    {
        if (Stopwatch.GetTimestamp() > deadline)
        {
            return CheckVerdict.Inconclusive;
        }

        // A read of a value that no operation on this key could have written refutes the history at once; the search
        // would otherwise have to exhaust every order of the other operations to find that out.
        if (ReadsAValueNeverWritten(operations))
        {
            return CheckVerdict.NotLinearizable;
        }

        return new KeySearch(operations, deadline).Run();
    }

    private static bool ReadsAValueNeverWritten(List<KvOperation> operations)
    {
        var written = new HashSet<string>(StringComparer.Ordinal);
        foreach (var op in operations)
        {
            if (op.Kind is KvOperationKind.Put or KvOperationKind.CompareAndSet && op.Value is not null)
            {
                written.Add(op.Value);
            }
        }

        foreach (var op in operations)
        {
            if (
                op.Kind == KvOperationKind.Get
                && op.Status == OperationStatus.Ok
                && op.OutputValue is not null
                && !written.Contains(op.OutputValue)
                && !operations.Exists(o => o.Kind == KvOperationKind.Increment)
            )
            {
                return true;
            }
        }

        return false;
    }
}
