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
            if (operation.Status == OperationStatus.Fail || (operation.Status == OperationStatus.Unknown && operation.Kind == KvOperationKind.Get))
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

        var verdict = failingKey is not null ? CheckVerdict.NotLinearizable : undecided > 0 ? CheckVerdict.Inconclusive : CheckVerdict.Linearizable;
        return new CheckResult(verdict, operations, byKey.Count, watch.Elapsed, failingKey, failing.OrderBy(o => o.Invoke).ToList(), undecided);
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

        // Entries: a call per operation at its invocation, a return at its return time (Unknown: never). Calls sort before
        // returns at equal times, so touching intervals count as concurrent (the permissive reading).
        var count = operations.Count;
        var entries = new List<Entry>(2 * count);
        for (var i = 0; i < count; i++)
        {
            var op = operations[i];
            var call = new Entry(i, op.Invoke, isCall: true);
            var ret = new Entry(i, op.Status == OperationStatus.Unknown ? long.MaxValue : op.Return, isCall: false);
            call.Match = ret;
            entries.Add(call);
            entries.Add(ret);
        }

        entries.Sort(static (a, b) => a.Time != b.Time ? a.Time.CompareTo(b.Time) : a.IsCall == b.IsCall ? 0 : a.IsCall ? -1 : 1);
        var head = new Entry(-1, long.MinValue, isCall: false);
        var previous = head;
        foreach (var entry in entries)
        {
            previous.Next = entry;
            entry.Previous = previous;
            previous = entry;
        }

        var remainingOk = 0;
        foreach (var op in operations)
        {
            if (op.Status == OperationStatus.Ok)
            {
                remainingOk++;
            }
        }

        var linearized = new ulong[(count + 63) / 64];
        var cache = new HashSet<CacheKey>();
        var stack = new Stack<(Entry Call, string? State)>();
        string? state = null;
        var current = head.Next;
        var steps = 0;
        while (remainingOk > 0)
        {
            if ((++steps & 1023) == 0 && Stopwatch.GetTimestamp() > deadline)
            {
                return CheckVerdict.Inconclusive;
            }

            if (current is null)
            {
                // Only Unknown operations are left unlinearized here, yet some Ok operation is not linearized: backtrack.
                if (!Backtrack())
                {
                    return CheckVerdict.NotLinearizable;
                }

                continue;
            }

            if (current.IsCall)
            {
                var op = operations[current.Operation];
                if (KvModel.Step(state, op, out var next))
                {
                    Set(linearized, current.Operation, true);
                    if (cache.Add(new CacheKey((ulong[])linearized.Clone(), next)))
                    {
                        stack.Push((current, state));
                        state = next;
                        Lift(current);
                        if (op.Status == OperationStatus.Ok)
                        {
                            remainingOk--;
                        }

                        current = head.Next;
                        continue;
                    }

                    Set(linearized, current.Operation, false);
                }

                current = current.Next;
            }
            else if (!Backtrack())
            {
                return CheckVerdict.NotLinearizable;
            }
        }

        return CheckVerdict.Linearizable;

        // Undo the most recent linearization and try the next candidate after it.
        bool Backtrack()
        {
            if (stack.Count == 0)
            {
                return false;
            }

            var (call, before) = stack.Pop();
            state = before;
            Unlift(call);
            Set(linearized, call.Operation, false);
            if (operations[call.Operation].Status == OperationStatus.Ok)
            {
                remainingOk++;
            }

            current = call.Next;
            return true;
        }
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
            if (op.Kind == KvOperationKind.Get && op.Status == OperationStatus.Ok && op.OutputValue is not null && !written.Contains(op.OutputValue)
                && !operations.Exists(o => o.Kind == KvOperationKind.Increment))
            {
                return true;
            }
        }

        return false;
    }

    private static void Lift(Entry call)
    {
        call.Previous!.Next = call.Next;
        if (call.Next is not null)
        {
            call.Next.Previous = call.Previous;
        }

        var ret = call.Match!;
        ret.Previous!.Next = ret.Next;
        if (ret.Next is not null)
        {
            ret.Next.Previous = ret.Previous;
        }
    }

    private static void Unlift(Entry call)
    {
        var ret = call.Match!;
        ret.Previous!.Next = ret;
        if (ret.Next is not null)
        {
            ret.Next.Previous = ret;
        }

        call.Previous!.Next = call;
        if (call.Next is not null)
        {
            call.Next.Previous = call;
        }
    }

    private static void Set(ulong[] bits, int index, bool value)
    {
        if (value)
        {
            bits[index >> 6] |= 1UL << (index & 63);
        }
        else
        {
            bits[index >> 6] &= ~(1UL << (index & 63));
        }
    }

    private sealed class Entry(int operation, long time, bool isCall)
    {
        public int Operation { get; } = operation;

        public long Time { get; } = time;

        public bool IsCall { get; } = isCall;

        public Entry? Match { get; set; }

        public Entry? Previous { get; set; }

        public Entry? Next { get; set; }
    }

    private readonly struct CacheKey(ulong[] linearized, string? state) : IEquatable<CacheKey>
    {
        private readonly ulong[] linearized = linearized;
        private readonly string? state = state;
        private readonly int hash = Hash(linearized, state);

        public bool Equals(CacheKey other) =>
            hash == other.hash && string.Equals(state, other.state, StringComparison.Ordinal) && linearized.AsSpan().SequenceEqual(other.linearized);

        public override bool Equals(object? obj) => obj is CacheKey other && Equals(other);

        public override int GetHashCode() => hash;

        private static int Hash(ulong[] bits, string? state)
        {
            var hash = new HashCode();
            foreach (var word in bits)
            {
                hash.Add(word);
            }

            hash.Add(state, StringComparer.Ordinal);
            return hash.ToHashCode();
        }
    }
}
