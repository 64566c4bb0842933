using System.Buffers.Binary;
using FastSmr.Core;
using FastSmr.Core.Batching;
using FastSmr.Core.Kv;
using FastSmr.Core.Protocol;
using FastSmr.Core.StateMachines;
using FastSmr.Engine;
using FastSmr.Testing;

namespace FastSmr.Tests;

/// <summary>The engine against a scripted back-end: completion rule, deadlines, group commit.</summary>
public class EngineTests
{
    /// <summary>A back-end that leads in term 1 and commits or holds proposals as the test says.</summary>
    private sealed class ScriptedBackend : IReplicationBackend
    {
        private readonly Lock log = new();
        private IReplicationHost? host;
        private long lastIndex;

        public Func<ReadOnlyMemory<byte>, Term, Term>? CommitAs { get; set; } = (_, term) => term;

        private TaskCompletionSource gate = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>While true, proposals wait (uncommitted) until <see cref="Release"/>.</summary>
        public bool Hold { get; set; }

        /// <summary>Whether the back-end reports the entry's index (DotNext does not).</summary>
        public bool ReportIndex { get; set; } = true;

        /// <summary>While true, proposals are appended (an index is given) but their outcome stays unknown, as after a leadership loss.</summary>
        public bool AppendOnly { get; set; }

        /// <summary>The log continues after <paramref name="index"/> (a snapshot was installed there).</summary>
        public void ContinueAfter(long index) => Volatile.Write(ref lastIndex, index);

        public void Release()
        {
            Hold = false;
            gate.TrySetResult();
        }

        public List<byte[]> Proposed { get; } = [];

        /// <summary>The proposed entries that carry client commands (the engine's per-term no-op left out).</summary>
        public List<byte[]> CommandBatches
        {
            get
            {
                lock (log)
                {
                    return Proposed.Where(b => BatchFormat.TryParse(b, out var h, out _) && h.EntryType == EntryType.Commands).ToList();
                }
            }
        }

        public LeadershipInfo Leadership { get; } = new(ReplicaRole.Leader, new Term(1), new ReplicaId(1));

        public LogIndex CommitIndex => new(Volatile.Read(ref lastIndex));

        public Task StartAsync(IReplicationHost replicationHost, CancellationToken token)
        {
            host = replicationHost;
            host.OnLeadershipChanged(Leadership);
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken token) => Task.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        public async ValueTask<ProposeResult> ProposeAsync(ReadOnlyMemory<byte> batch, Term term, CancellationToken token)
        {
            var copy = batch.ToArray();
            var commitAs = CommitAs!; // read before the proposal becomes visible to the test
            lock (log)
            {
                Proposed.Add(copy);
            }

            if (Hold)
            {
                await gate.Task.WaitAsync(token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                if (token.IsCancellationRequested)
                {
                    return new ProposeResult(ProposeOutcome.Unknown, term, default);
                }
            }

            if (AppendOnly)
            {
                return new ProposeResult(ProposeOutcome.Unknown, term, new LogIndex(Interlocked.Increment(ref lastIndex)));
            }

            var entryTerm = commitAs(copy, term);
            LogIndex index;
            lock (log)
            {
                index = new LogIndex(++lastIndex);
                host!.ApplyAsync(new CommittedEntry(index, entryTerm, copy), token).AsTask().GetAwaiter().GetResult();
            }

            return new ProposeResult(ProposeOutcome.Committed, term, ReportIndex ? index : default);
        }

        public ValueTask<LogIndex?> ReadBarrierAsync(CancellationToken token) => new(CommitIndex);
    }

    private static async Task<(ReplicaEngine Engine, ScriptedBackend Backend)> StartAsync(Action<EngineOptions>? configure = null)
    {
        var backend = new ScriptedBackend();
        var options = new EngineOptions { ReplicaId = new ReplicaId(1), ClusterId = 1 };
        configure?.Invoke(options);
        var engine = new ReplicaEngine(options, new KvStateMachine(), backend);
        await engine.StartAsync();
        return (engine, backend);
    }

    [Fact]
    public async Task Submit_CompletesWithTheOutputOfItsOwnAppliedCommand()
    {
        var (engine, _) = await StartAsync();
        await using var owned = engine;
        using var first = await engine.SubmitAsync(KvCommand.Increment(Kv.Key("n"), 5), TimeSpan.FromSeconds(5));
        using var second = await engine.SubmitAsync(KvCommand.Increment(Kv.Key("n"), 2), TimeSpan.FromSeconds(5));
        Assert.Equal(SubmitStatus.Ok, first.Status);
        Assert.Equal(5, BinaryPrimitives.ReadInt64LittleEndian(first.Output.Span[1..]));
        Assert.Equal(7, BinaryPrimitives.ReadInt64LittleEndian(second.Output.Span[1..]));
    }

    [Theory]
    [InlineData(false, SubmitStatus.Unknown)]
    [InlineData(true, SubmitStatus.NotLeader)]
    public async Task CommittedEntryWithTheSameBatchIdButAnotherTerm_NeverCompletesTheRequestOk(bool indexKnown, SubmitStatus expected)
    {
        // The committed entry carries the request's batch id but another term, so it is not the request's own entry:
        // the request must not be answered Ok from it. Without the index the engine cannot tell, and answers Unknown at
        // the deadline; with the index it knows its own entry can never commit there, and answers NotLeader.
        var (engine, backend) = await StartAsync();
        await using var owned = engine;
        // The term's no-op goes first, committed and applied under its own term.
        await Wait.UntilAsync(() => engine.AppliedIndex.Value >= 1, TimeSpan.FromSeconds(5), "the term's no-op is applied");
        backend.ReportIndex = indexKnown;
        backend.CommitAs = (_, term) => new Term(term.Value + 1);
        // A deadline long enough to be proposed before it passes even on a loaded machine.
        var pending = engine.SubmitAsync(KvCommand.Put(Kv.Key("k"), Kv.Key("v")), TimeSpan.FromSeconds(2));
        await Wait.UntilAsync(() => backend.CommandBatches.Count > 0, TimeSpan.FromSeconds(2), "the command is proposed");
        Assert.Single(backend.CommandBatches);
        backend.CommitAs = (_, term) => term;
        using (await engine.SubmitAsync(KvCommand.Put(Kv.Key("later"), Kv.Key("v")), TimeSpan.FromSeconds(5)))
        {
        }

        using var result = await pending;
        Assert.Equal(expected, result.Status);
    }

    [Fact]
    public async Task ACommandAppendedBelowAnInstalledSnapshot_IsAnsweredUnknown_NeverNotLeader()
    {
        // A leader cut off appends a command; its successor commits it from the copy it received, and the old leader
        // installs the successor's snapshot. Whether the command is inside that snapshot cannot be told here, so a retry
        // is not safe: the answer must be Unknown (NotLeader let a client apply a put twice: the whole-system simulator,
        // 5 replicas, seed 42).
        var (engine, backend) = await StartAsync();
        await using var owned = engine;
        await Wait.UntilAsync(() => engine.AppliedIndex.Value >= 1, TimeSpan.FromSeconds(5), "the term's no-op is applied");
        backend.AppendOnly = true;
        var pending = engine.SubmitAsync(KvCommand.Put(Kv.Key("k"), Kv.Key("once")), TimeSpan.FromSeconds(30));
        await Wait.UntilAsync(() => backend.CommandBatches.Count == 1, TimeSpan.FromSeconds(5), "the command is appended at index 2");

        // The successor's state at index 3, which (as far as this replica can tell) may hold the command.
        var (successor, successorBackend) = await StartAsync();
        await using var ownedSuccessor = successor;
        await Wait.UntilAsync(() => successor.AppliedIndex.Value >= 1, TimeSpan.FromSeconds(5), "the successor's no-op is applied");
        using (await successor.SubmitAsync(KvCommand.Put(Kv.Key("k"), Kv.Key("once")), TimeSpan.FromSeconds(5))) { }
        using (await successor.SubmitAsync(KvCommand.Put(Kv.Key("x"), Kv.Key("y")), TimeSpan.FromSeconds(5))) { }
        using var image = new MemoryStream();
        var (index, term) = ((IReplicationHost)successor).WriteSnapshot(image);
        Assert.Equal(3, index.Value);
        image.Position = 0;
        ((IReplicationHost)engine).RestoreSnapshot(image, index, term);
        backend.AppendOnly = false;
        backend.ContinueAfter(index.Value);
        using (await engine.SubmitAsync(KvCommand.Put(Kv.Key("after"), Kv.Key("v")), TimeSpan.FromSeconds(5))) { } // applied at 4

        using var result = await pending;
        Assert.Equal(SubmitStatus.Unknown, result.Status);
    }

    [Fact]
    public async Task WhileEveryProposalSlotIsStuck_QueuedCommandsExpireAsTimeout()
    {
        var (engine, backend) = await StartAsync(o => o.ProposalsInFlightMax = 1);
        await using var owned = engine;
        backend.Hold = true;
        var stuck = engine.SubmitAsync(KvCommand.Put(Kv.Key("a"), Kv.Key("1")), TimeSpan.FromMilliseconds(300));
        await Wait.UntilAsync(() => backend.CommandBatches.Count == 1, TimeSpan.FromSeconds(5), "the first command holds the only proposal slot");
        using var queued = await engine.SubmitAsync(KvCommand.Put(Kv.Key("b"), Kv.Key("2")), TimeSpan.FromMilliseconds(200));
        Assert.Equal(SubmitStatus.Timeout, queued.Status); // never proposed: safe to retry
        using var proposed = await stuck;
        Assert.Equal(SubmitStatus.Unknown, proposed.Status); // proposed, never answered: may or may not happen
        Assert.Single(backend.CommandBatches);
    }

    [Fact]
    public async Task CommandsArrivingDuringARound_GoOutTogetherAsOneEntry()
    {
        var (engine, backend) = await StartAsync(o => o.ProposalsInFlightMax = 1);
        await using var owned = engine;
        backend.Hold = true;
        var first = engine.SubmitAsync(KvCommand.Put(Kv.Key("first"), Kv.Key("1")), TimeSpan.FromSeconds(1));
        await Wait.UntilAsync(() => backend.CommandBatches.Count == 1, TimeSpan.FromSeconds(5), "the first command holds the only proposal slot");
        var rest = Enumerable.Range(0, 20).Select(i => engine.SubmitAsync(KvCommand.Put(Kv.Key("k" + i), Kv.Key("v")), TimeSpan.FromSeconds(5)).AsTask()).ToList();
        await Wait.UntilAsync(() => engine.QueuedCommands == 20, TimeSpan.FromSeconds(5), "the 20 commands wait behind it");
        backend.Release();
        using (await first)
        {
        }

        var results = await Task.WhenAll(rest);
        Assert.All(results, r => Assert.Equal(SubmitStatus.Ok, r.Status));
        foreach (var r in results)
        {
            r.Dispose();
        }

        var batches = backend.CommandBatches;
        Assert.Equal(2, batches.Count);
        Assert.True(BatchFormat.TryParse(batches[1], out var header, out _));
        Assert.Equal(20, header.CommandCount);
    }

    [Fact]
    public async Task QueueBeyondItsByteBudget_IsAnsweredBusy()
    {
        var (engine, backend) = await StartAsync(o =>
        {
            o.ProposalsInFlightMax = 1;
            o.CommandBytesMax = 1024;
            o.QueuedBytesMax = 4 * 1024;
        });
        await using var owned = engine;
        backend.Hold = true;
        var value = new byte[900];
        var pending = Enumerable.Range(0, 10).Select(i => engine.SubmitAsync(KvCommand.Put(Kv.Key("k" + i), value), TimeSpan.FromMilliseconds(300)).AsTask()).ToList();
        var results = await Task.WhenAll(pending);
        Assert.Contains(results, r => r.Status == SubmitStatus.Busy);
        foreach (var r in results)
        {
            r.Dispose();
        }
    }

    /// <summary>A key-value store that throws when it applies a put of the key "boom".</summary>
    private sealed class ThrowingStateMachine : IStateMachine
    {
        private readonly KvStateMachine inner = new();

        public void Apply(in ApplyContext context, ReadOnlySpan<byte> command, System.Buffers.IBufferWriter<byte> output)
        {
            if (KvCommand.TryParse(command, out var op, out var key, out _) && op == KvOp.Put && key.SequenceEqual("boom"u8))
            {
                throw new InvalidOperationException("boom");
            }

            inner.Apply(context, command, output);
        }

        public void Query(ReadOnlySpan<byte> query, System.Buffers.IBufferWriter<byte> output) => inner.Query(query, output);

        public void WriteSnapshot(Stream destination) => inner.WriteSnapshot(destination);

        public void RestoreSnapshot(Stream source) => inner.RestoreSnapshot(source);

        public StateDigest GetDigest() => inner.GetDigest();
    }

    [Fact]
    public async Task AStateMachineThatThrows_StopsApplying_NamesTheEntry_AndAnswersUnknown()
    {
        // The policy (ReplicaEngine.StateMachineFailed): no FailFast (which crash-looped with exit 134) and no skipping
        // (the state may be half-changed); the replica stops applying and reports why, and its host stops it.
        var backend = new ScriptedBackend();
        await using var engine = new ReplicaEngine(new EngineOptions { ReplicaId = new ReplicaId(1), ClusterId = 1 }, new ThrowingStateMachine(), backend);
        await engine.StartAsync();
        using (var fine = await engine.SubmitAsync(KvCommand.Put(Kv.Key("fine"), Kv.Key("v")), TimeSpan.FromSeconds(5)))
        {
            Assert.Equal(SubmitStatus.Ok, fine.Status);
        }

        Assert.False(engine.Failure.IsCompleted);
        using (var boom = await engine.SubmitAsync(KvCommand.Put(Kv.Key("boom"), Kv.Key("v")), TimeSpan.FromSeconds(5)))
        {
            Assert.Equal(SubmitStatus.Unknown, boom.Status);
        }

        var cause = await engine.Failure.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Contains("the state machine threw applying entry", cause.Message, StringComparison.Ordinal);
        Assert.Contains("boom", cause.Message, StringComparison.Ordinal);
        using var later = await engine.SubmitAsync(KvCommand.Put(Kv.Key("later"), Kv.Key("v")), TimeSpan.FromSeconds(1));
        Assert.NotEqual(SubmitStatus.Ok, later.Status);
    }
}
