using System.Diagnostics;
using FastSmr.Verification;
using Xunit.Abstractions;

namespace FastSmr.Tests;

public class LinearizabilityCheckerTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(30);

    private static KvOperation Put(int client, long invoke, long ret, string key, string value, OperationStatus status = OperationStatus.Ok) =>
        new() { Client = client, Invoke = invoke, Return = ret, Kind = KvOperationKind.Put, Key = key, Value = value, Status = status };

    private static KvOperation Get(int client, long invoke, long ret, string key, string? read) =>
        new() { Client = client, Invoke = invoke, Return = ret, Kind = KvOperationKind.Get, Key = key, OutputValue = read, Status = OperationStatus.Ok };

    private static KvOperation Cas(int client, long invoke, long ret, string key, string? expected, string value, bool swapped, OperationStatus status = OperationStatus.Ok) =>
        new() { Client = client, Invoke = invoke, Return = ret, Kind = KvOperationKind.CompareAndSet, Key = key, Expected = expected, Value = value, OutputFlag = swapped, Status = status };

    private static KvOperation Incr(int client, long invoke, long ret, string key, long delta, string? result, OperationStatus status = OperationStatus.Ok) =>
        new() { Client = client, Invoke = invoke, Return = ret, Kind = KvOperationKind.Increment, Key = key, Delta = delta, OutputValue = result, Status = status };

    private static KvOperation Delete(int client, long invoke, long ret, string key, bool found) =>
        new() { Client = client, Invoke = invoke, Return = ret, Kind = KvOperationKind.Delete, Key = key, OutputFlag = found, Status = OperationStatus.Ok };

    public static TheoryData<string, KvOperation[], CheckVerdict> HandBuilt() => new()
    {
        { "sequential put then get", [Put(1, 0, 10, "x", "1"), Get(2, 20, 30, "x", "1")], CheckVerdict.Linearizable },
        { "stale read", [Put(1, 0, 10, "x", "1"), Put(1, 20, 30, "x", "2"), Get(2, 40, 50, "x", "1")], CheckVerdict.NotLinearizable },
        { "lost write", [Put(1, 0, 10, "x", "1"), Get(2, 20, 30, "x", null)], CheckVerdict.NotLinearizable },
        { "read of a value never written", [Put(1, 0, 10, "x", "1"), Get(2, 20, 30, "x", "zzz")], CheckVerdict.NotLinearizable },
        { "cas succeeds against the wrong value", [Put(1, 0, 10, "x", "1"), Cas(2, 20, 30, "x", "2", "3", swapped: true)], CheckVerdict.NotLinearizable },
        { "cas fails against the right value", [Put(1, 0, 10, "x", "1"), Cas(2, 20, 30, "x", "1", "3", swapped: false)], CheckVerdict.NotLinearizable },
        { "cas on absent key", [Cas(1, 0, 10, "x", null, "1", swapped: true), Get(2, 20, 30, "x", "1")], CheckVerdict.Linearizable },
        { "concurrent write seen early", [Put(1, 0, 100, "x", "1"), Get(2, 10, 20, "x", null), Get(3, 30, 40, "x", "1")], CheckVerdict.Linearizable },
        { "concurrent write seen, then unseen", [Put(1, 0, 100, "x", "1"), Get(2, 10, 20, "x", "1"), Get(3, 30, 40, "x", null)], CheckVerdict.NotLinearizable },
        { "unknown write that must have happened", [Put(1, 0, 0, "x", "1", OperationStatus.Unknown), Get(2, 20, 30, "x", "1")], CheckVerdict.Linearizable },
        { "unknown write that must not have happened", [Put(1, 0, 0, "x", "1", OperationStatus.Unknown), Get(2, 20, 30, "x", null), Get(2, 40, 50, "x", null)], CheckVerdict.Linearizable },
        { "unknown write that happened late", [Put(1, 0, 0, "x", "1", OperationStatus.Unknown), Get(2, 20, 30, "x", null), Get(2, 40, 50, "x", "1")], CheckVerdict.Linearizable },
        { "unknown write that happened, then vanished", [Put(1, 0, 0, "x", "1", OperationStatus.Unknown), Get(2, 20, 30, "x", "1"), Get(2, 40, 50, "x", null)], CheckVerdict.NotLinearizable },
        { "unknown write cannot take effect before its invocation", [Get(2, 0, 10, "x", "1"), Put(1, 20, 0, "x", "1", OperationStatus.Unknown)], CheckVerdict.NotLinearizable },
        { "failed write never happened", [Put(1, 0, 10, "x", "1", OperationStatus.Fail), Get(2, 20, 30, "x", "1")], CheckVerdict.NotLinearizable },
        { "concurrent increments", [Incr(1, 0, 10, "c", 1, "2"), Incr(2, 0, 10, "c", 1, "1")], CheckVerdict.Linearizable },
        { "increment result impossible", [Incr(1, 0, 10, "c", 1, "1"), Incr(2, 20, 30, "c", 1, "1")], CheckVerdict.NotLinearizable },
        { "increment on a non-integer", [Put(1, 0, 10, "c", "abc"), Incr(2, 20, 30, "c", 1, null), Get(1, 40, 50, "c", "abc")], CheckVerdict.Linearizable },
        { "delete then read", [Put(1, 0, 10, "x", "1"), Delete(2, 20, 30, "x", found: true), Get(1, 40, 50, "x", null)], CheckVerdict.Linearizable },
        { "delete of a missing key reports found", [Delete(2, 20, 30, "x", found: true)], CheckVerdict.NotLinearizable },
        { "keys are independent", [Put(1, 0, 10, "a", "1"), Put(2, 0, 10, "b", "2"), Get(3, 20, 30, "a", "1"), Get(3, 40, 50, "b", "2")], CheckVerdict.Linearizable },
    };

    [Theory]
    [MemberData(nameof(HandBuilt))]
    public void HandBuiltHistory_GetsTheExpectedVerdict(string name, KvOperation[] history, CheckVerdict expected)
    {
        var result = LinearizabilityChecker.Check(history, Budget);
        output.WriteLine(name);
        output.WriteLine(result.Describe());
        Assert.Equal(expected, result.Verdict);
    }

    [Fact]
    public void Violation_ReportsTheSmallestFailingKey()
    {
        var history = new List<KvOperation>
        {
            // key "big": three writes and a stale read (4 operations); key "small": a lost write (2 operations)
            Put(1, 0, 10, "big", "1"), Put(1, 20, 30, "big", "2"), Put(1, 40, 50, "big", "3"), Get(2, 60, 70, "big", "1"),
            Put(3, 0, 10, "small", "1"), Get(4, 20, 30, "small", null),
            Put(5, 0, 10, "fine", "1"), Get(5, 20, 30, "fine", "1"),
        };
        var result = LinearizabilityChecker.Check(history, Budget);
        Assert.Equal(CheckVerdict.NotLinearizable, result.Verdict);
        Assert.Equal("small", result.FailingKey);
        Assert.Equal(2, result.FailingSubHistory.Count);
        var text = result.Describe();
        Assert.Contains("no linearization for key 'small'", text, StringComparison.Ordinal);
        Assert.Contains("get(small)  => <absent>", text, StringComparison.Ordinal);
    }

    [Fact]
    public void ExhaustedBudget_IsInconclusive_NeverAPass()
    {
        var history = Generate(new Random(3), operations: 2_000, keys: 1, clients: 32, maxSpan: 5_000, unknownShare: 0.3).History;
        var result = LinearizabilityChecker.Check(history, TimeSpan.Zero);
        Assert.Equal(CheckVerdict.Inconclusive, result.Verdict);
        Assert.True(result.UndecidedKeys > 0);
    }

    [Fact]
    public void History_RoundTripsThroughJsonLines()
    {
        var history = Generate(new Random(11), operations: 300, keys: 5, clients: 4, maxSpan: 50, unknownShare: 0.2).History;
        var path = Path.Combine(Path.GetTempPath(), "fastsmr-history-" + Guid.NewGuid().ToString("N")[..8] + ".jsonl");
        try
        {
            HistoryFile.Write(path, history);
            var read = HistoryFile.Read(path);
            Assert.Equal(history.Count, read.Count);
            for (var i = 0; i < history.Count; i++)
            {
                var expected = history[i].Status == OperationStatus.Unknown ? history[i] with { Return = long.MaxValue } : history[i];
                Assert.Equal(expected, read[i]);
            }

            File.WriteAllText(path, "{\"client\":1,\"invoke\":5,\"op\":\"frobnicate\",\"key\":\"k\",\"status\":\"ok\"}\n");
            var error = Assert.Throws<InvalidDataException>(() => HistoryFile.Read(path));
            Assert.Contains(":1:", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void RandomValidHistories_Pass_AndCorruptedOnesAreCaught(int seed)
    {
        var random = new Random(seed);
        var (history, readIndexes, incrementIndexes) = Generate(random, operations: 600, keys: 6, clients: 8, maxSpan: 200, unknownShare: 0.1);
        Assert.Equal(CheckVerdict.Linearizable, LinearizabilityChecker.Check(history, Budget).Verdict);

        // A read of a value nobody wrote can never be linearized.
        var read = readIndexes[random.Next(readIndexes.Count)];
        var corrupted = history.ToList();
        corrupted[read] = corrupted[read] with { OutputValue = "never-written" };
        var result = LinearizabilityChecker.Check(corrupted, Budget);
        Assert.Equal(CheckVerdict.NotLinearizable, result.Verdict);
        Assert.Equal(corrupted[read].Key, result.FailingKey);

        // An increment result no order of the increments can produce.
        var increment = incrementIndexes[random.Next(incrementIndexes.Count)];
        corrupted = history.ToList();
        corrupted[increment] = corrupted[increment] with { OutputValue = "-987654321" };
        Assert.Equal(CheckVerdict.NotLinearizable, LinearizabilityChecker.Check(corrupted, Budget).Verdict);
    }

    [Fact]
    public void LargeHistory_10kOperations_100Keys_32Clients_IsCheckedInSeconds()
    {
        var (history, _, _) = Generate(new Random(42), operations: 10_000, keys: 100, clients: 32, maxSpan: 2_000, unknownShare: 0.05);
        var watch = Stopwatch.StartNew();
        var result = LinearizabilityChecker.Check(history, TimeSpan.FromSeconds(60));
        output.WriteLine($"{result.Operations} operations over {result.Keys} keys checked in {watch.ElapsedMilliseconds} ms");
        Assert.Equal(CheckVerdict.Linearizable, result.Verdict);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"took {watch.Elapsed}");
    }

    [Fact]
    public void HighContention_2kOperations_On4Keys_32Clients_IsDecided()
    {
        // Every operation overlaps many others on the same key: the search space that the (linearized set, state) cache
        // keeps tractable.
        var (history, reads, _) = Generate(new Random(7), operations: 2_000, keys: 2, clients: 32, maxSpan: 400, unknownShare: 0.05);
        var watch = Stopwatch.StartNew();
        var result = LinearizabilityChecker.Check(history, TimeSpan.FromSeconds(60));
        output.WriteLine($"valid: {result.Verdict} in {watch.ElapsedMilliseconds} ms");
        Assert.Equal(CheckVerdict.Linearizable, result.Verdict);

        var corrupted = history.ToList();
        corrupted[reads[^1]] = corrupted[reads[^1]] with { OutputValue = "never-written" };
        watch.Restart();
        result = LinearizabilityChecker.Check(corrupted, TimeSpan.FromSeconds(60));
        output.WriteLine($"corrupted: {result.Verdict} in {watch.ElapsedMilliseconds} ms");
        Assert.Equal(CheckVerdict.NotLinearizable, result.Verdict);
    }

    /// <summary>
    /// Generates a valid history: every client runs operations one at a time; each takes effect at a random point inside
    /// its interval, and outputs come from applying the sequential model in the order of those points. Unknown operations
    /// take effect or not at random; written values are unique.
    /// </summary>
    internal static (List<KvOperation> History, List<int> OkReads, List<int> OkIncrements) Generate(Random random, int operations, int keys, int clients, int maxSpan, double unknownShare)
    {
        var planned = new List<(KvOperation Op, long Point, bool Happens)>();
        var clock = new long[clients];
        var written = 0;
        for (var i = 0; i < operations; i++)
        {
            var client = random.Next(clients);
            var invoke = clock[client] + random.Next(1, maxSpan);
            var point = invoke + random.Next(0, maxSpan);
            var ret = point + random.Next(0, maxSpan);
            clock[client] = ret;
            var key = "k" + random.Next(keys);
            var unknown = random.NextDouble() < unknownShare;
            var op = (random.Next(5)) switch
            {
                0 or 1 => new KvOperation { Kind = KvOperationKind.Get, Key = key },
                2 => new KvOperation { Kind = KvOperationKind.Put, Key = key, Value = "v" + (++written) },
                3 => new KvOperation { Kind = KvOperationKind.CompareAndSet, Key = key, Expected = random.Next(3) == 0 ? null : "v" + random.Next(1, written + 2), Value = "v" + (++written) },
                _ => new KvOperation { Kind = KvOperationKind.Increment, Key = "c" + random.Next(keys), Delta = random.Next(1, 4) },
            };
            op = op with { Client = client, Invoke = invoke, Return = ret, Status = unknown ? OperationStatus.Unknown : OperationStatus.Ok };
            planned.Add((op, point, !unknown || random.Next(2) == 0));
        }

        var state = new Dictionary<string, string?>();
        var outputs = new KvOperation[planned.Count];
        foreach (var index in Enumerable.Range(0, planned.Count).OrderBy(i => planned[i].Point))
        {
            var (op, _, happens) = planned[index];
            var before = state.GetValueOrDefault(op.Key);
            if (!happens)
            {
                outputs[index] = op;
                continue;
            }

            // Compute the true output, then let the model apply it.
            var withOutput = op.Kind switch
            {
                KvOperationKind.Get => op with { OutputValue = before },
                KvOperationKind.Delete => op with { OutputFlag = before is not null },
                KvOperationKind.CompareAndSet => op with { OutputFlag = op.Expected is null ? before is null : before == op.Expected },
                KvOperationKind.Increment => op with { OutputValue = (long.Parse(before ?? "0", System.Globalization.CultureInfo.InvariantCulture) + op.Delta).ToString(System.Globalization.CultureInfo.InvariantCulture) },
                _ => op,
            };
            Assert.True(KvModel.Step(before, withOutput, out var after));
            state[op.Key] = after;
            outputs[index] = withOutput.Status == OperationStatus.Unknown ? op : withOutput;
        }

        var history = outputs.ToList();
        var reads = Enumerable.Range(0, history.Count).Where(i => history[i].Kind == KvOperationKind.Get && history[i].Status == OperationStatus.Ok).ToList();
        var increments = Enumerable.Range(0, history.Count).Where(i => history[i].Kind == KvOperationKind.Increment && history[i].Status == OperationStatus.Ok).ToList();
        return (history, reads, increments);
    }
}
