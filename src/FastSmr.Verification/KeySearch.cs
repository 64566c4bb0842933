using System.Diagnostics;

namespace FastSmr.Verification;

/// <summary>
/// The Wing–Gong–Lowe search over one key's operations (Lowe, "Testing for linearizability", 2017): calls and returns in
/// one time-ordered linked list; linearize the first call whose model step succeeds by lifting it and its return out of
/// the list, backtrack when a return is reached with its call not yet linearized. A cache of (linearized set, state)
/// pairs prunes configurations already explored. Operations with an Unknown outcome never return, so they may take effect
/// at any later point or not at all; only Ok operations must all be linearized.
/// </summary>
internal sealed class KeySearch
{
    private readonly List<KvOperation> operations;
    private readonly long deadline;
    private readonly HistoryEvent head;
    private readonly ulong[] linearized;
    private readonly HashSet<CacheKey> cache = [];
    private readonly Stack<(HistoryEvent Call, string? State)> stack = new();
    private string? state;
    private HistoryEvent? current;
    private int remainingOk;

    public KeySearch(List<KvOperation> operations, long deadline)
    {
        this.operations = operations;
        this.deadline = deadline;
        head = BuildEvents(operations);
        linearized = new ulong[(operations.Count + 63) / 64];
        foreach (var op in operations)
        {
            if (op.Status == OperationStatus.Ok)
            {
                remainingOk++;
            }
        }
    }

    public CheckVerdict Run()
    {
        current = head.Next;
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
            }
            else if (current.IsCall)
            {
                current = TryLinearize(current) ? head.Next : current.Next;
            }
            else if (!Backtrack())
            {
                return CheckVerdict.NotLinearizable;
            }
        }

        return CheckVerdict.Linearizable;
    }

    /// <summary>
    /// Events: a call per operation at its invocation, a return at its return time (Unknown: never). Calls sort before
    /// returns at equal times, so touching intervals count as concurrent (the permissive reading). Returns the list's head.
    /// </summary>
    private static HistoryEvent BuildEvents(List<KvOperation> operations)
    {
        var events = new List<HistoryEvent>(2 * operations.Count);
        for (var i = 0; i < operations.Count; i++)
        {
            var op = operations[i];
            var call = new HistoryEvent(i, op.Invoke, isCall: true);
            var ret = new HistoryEvent(i, op.Status == OperationStatus.Unknown ? long.MaxValue : op.Return, isCall: false);
            call.Match = ret;
            events.Add(call);
            events.Add(ret);
        }

        events.Sort(
            static (a, b) =>
                a.Time != b.Time ? a.Time.CompareTo(b.Time)
                : a.IsCall == b.IsCall ? 0
                : a.IsCall ? -1
                : 1
        );
        var head = new HistoryEvent(-1, long.MinValue, isCall: false);
        var previous = head;
        foreach (var entry in events)
        {
            previous.Next = entry;
            entry.Previous = previous;
            previous = entry;
        }

        return head;
    }

    /// <summary>Linearizes <paramref name="call"/> here if the model allows it and the configuration is new.</summary>
    private bool TryLinearize(HistoryEvent call)
    {
        var op = operations[call.Operation];
        if (!KvModel.Step(state, op, out var next))
        {
            return false;
        }

        Set(linearized, call.Operation, true);
        if (!cache.Add(new CacheKey((ulong[])linearized.Clone(), next)))
        {
            Set(linearized, call.Operation, false);
            return false;
        }

        stack.Push((call, state));
        state = next;
        Lift(call);
        if (op.Status == OperationStatus.Ok)
        {
            remainingOk--;
        }

        return true;
    }

    /// <summary>Undoes the most recent linearization and moves to the next candidate after it; false when none is left.</summary>
    private bool Backtrack()
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

    private static void Lift(HistoryEvent call)
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

    private static void Unlift(HistoryEvent call)
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

    private sealed class HistoryEvent(int operation, long time, bool isCall)
    {
        public int Operation { get; } = operation;

        public long Time { get; } = time;

        public bool IsCall { get; } = isCall;

        public HistoryEvent? Match { get; set; }

        public HistoryEvent? Previous { get; set; }

        public HistoryEvent? Next { get; set; }
    }

    private readonly struct CacheKey(ulong[] linearized, string? state) : IEquatable<CacheKey>
    {
        private readonly ulong[] linearized = linearized;
        private readonly string? state = state;
        private readonly int hash = Hash(linearized, state);

        public bool Equals(CacheKey other) =>
            hash == other.hash
            && string.Equals(state, other.state, StringComparison.Ordinal)
            && linearized.AsSpan().SequenceEqual(other.linearized);

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
