using System.Net;
using FastSmr.Core;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Native;
using FastSmr.Raft;
using FastSmr.Simulation;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace FastSmr.Tests;

/// <summary>
/// The native replica's run-to-completion protocol under a controlled scheduler (<see cref="ControlledThreads"/>): real
/// threads — two proposers, a peer receive, the ticker — race for the core, one at a time, switching at the replica's
/// scheduling points (queues filled, the core taken and let go, the sync, the re-check) as each seed decides. Every
/// interleaving must leave nothing queued and every proposal decided; the lost-wake-up bug must be caught.
/// </summary>
public sealed class NativeConcurrencyTests(ITestOutputHelper output)
{
    private const int Seeds = 400;

    [Fact]
    public void EveryInterleaving_LeavesNoWorkBehind_AndDecidesEveryProposal()
    {
        var switches = 0;
        for (var seed = 1; seed <= Seeds; seed++)
        {
            var outcome = RunOnce((ulong)seed, NativeBug.None);
            Assert.True(outcome.Failure is null, $"seed {seed}: {outcome.Failure}\n{string.Join("\n", outcome.Trace)}");
            switches += outcome.Trace.Count(t => t.Contains("->", StringComparison.Ordinal));
        }

        output.WriteLine($"{Seeds} interleavings, {switches} thread switches, none left work behind");
        Assert.True(switches > Seeds, "the schedules hardly switched threads: the test explores nothing");
    }

    [Theory]
    [InlineData(NativeBug.LostWakeUp)]
    [InlineData(NativeBug.CheckThenLetGo)]
    internal void AWakeUpBug_IsCaught(NativeBug bug)
    {
        for (var seed = 1; seed <= Seeds; seed++)
        {
            var outcome = RunOnce((ulong)seed, bug);
            if (outcome.Failure is not null)
            {
                output.WriteLine($"{bug} caught at seed {seed}: {outcome.Failure}\n{string.Join("\n", outcome.Trace)}");
                return;
            }
        }

        Assert.Fail($"{bug} was not caught in {Seeds} interleavings");
    }

    [Fact]
    public void TheCheckThenLetGoBug_NeedsASecondThread()
    {
        // The race needs another thread between the look at the queues and the letting go: run alone, the same code
        // passes, which is why only a controlled scheduler (or luck under load) finds it.
        var outcome = RunOnce(1, NativeBug.CheckThenLetGo, threads: 1);
        Assert.True(outcome.Failure is null, outcome.Failure);
    }

    private static (string? Failure, IReadOnlyList<string> Trace) RunOnce(ulong seed, NativeBug bug, int threads = 4)
    {
        ControlledThreads? scheduler = null;
        var world = new SimWorld(new SimRandom(seed));
        var process = new SimProcess("r1");
        var time = new SimTime(new SimClock(world, 0, 1.0), process);
        var options = new NativeBackendOptions
        {
            ReplicaId = new ReplicaId(1),
            Members = [(new ReplicaId(1), new IPEndPoint(IPAddress.Loopback, 7001))],
            DataDirectory = "controlled",
            Time = time,
        };
        options.Validate();
        var host = new CountingHost();
        var replica = new NativeReplica(options, new SimDisk().Open(), "boot", NullLogger.Instance, static () => { }, static () => { })
        {
            Bug = bug,
            SchedulingPoint = where => scheduler?.Point(where),
        };
        replica.Start(host, new NullBus());
        for (var i = 0; i < 100 && replica.Leadership.Role != ReplicaRole.Leader; i++)
        {
            world.RunUntil(world.NowUs + 50_000); // time passes: the election timeout of a replica alone
            replica.TryDrive();
        }

        if (replica.Leadership.Role != ReplicaRole.Leader)
        {
            return ("the replica alone did not become leader", []);
        }

        var term = replica.Leadership.Term;
        replica.TryDrive(); // its own-term no-op, if any, settles before the race
        scheduler = new ControlledThreads(seed);
        var first = default(ValueTask<ProposeResult>);
        var second = default(ValueTask<ProposeResult>);
        if (threads == 1)
        {
            scheduler.Add("alone", () =>
            {
                first = replica.ProposeAsync(new byte[] { 1 }, term, CancellationToken.None);
                second = replica.ProposeAsync(new byte[] { 2 }, term, CancellationToken.None);
            });
        }
        else
        {
            scheduler.Add("proposer-1", () => first = replica.ProposeAsync(new byte[] { 1 }, term, CancellationToken.None));
            scheduler.Add("proposer-2", () => second = replica.ProposeAsync(new byte[] { 2 }, term, CancellationToken.None));
            scheduler.Add("ticker", replica.TryDrive);
            scheduler.Add("applier", replica.TryApply);
        }

        if (!scheduler.Run(TimeSpan.FromSeconds(30)))
        {
            return ("the threads did not finish (a thread blocked while holding the baton)", scheduler.Trace);
        }

        if (replica.HasQueuedWork)
        {
            return ("all threads are done, yet work is queued: a lost wake-up", scheduler.Trace);
        }

        if (!first.IsCompleted || !second.IsCompleted)
        {
            return ("a proposal is still undecided", scheduler.Trace);
        }

        var outcomes = (first.Result.Outcome, second.Result.Outcome);
        return outcomes == (ProposeOutcome.Committed, ProposeOutcome.Committed) && host.Applied >= 2
            ? (null, scheduler.Trace)
            : ($"proposals {outcomes}, {host.Applied} entries applied", scheduler.Trace);
    }

    private sealed class CountingHost : IReplicationHost
    {
        private long applied;

        public int Applied;

        public LogIndex AppliedIndex => new(Volatile.Read(ref applied));

        public ValueTask ApplyAsync(CommittedEntry entry, CancellationToken token)
        {
            Volatile.Write(ref applied, entry.Index.Value);
            if (!entry.Bytes.IsEmpty)
            {
                Interlocked.Increment(ref Applied);
            }

            return ValueTask.CompletedTask;
        }

        public void OnLeadershipChanged(LeadershipInfo leadership) { }

        public (LogIndex Index, Term Term) WriteSnapshot(Stream destination) => (AppliedIndex, default);

        public void RestoreSnapshot(Stream source, LogIndex index, Term term) => Volatile.Write(ref applied, index.Value);

        public void ValidateSnapshot(Stream source) { }
    }

    private sealed class NullBus : IMessageBus
    {
        public long Dropped => 0;

        public void Start() { }

        public void Send(Message message) { }

        public void SendSnapshot(Message message, SnapshotHeader snapshot) { }

        public void Flush() { }

        public void EnsureConnected() { }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
