using DotNext.IO.Log;
using DotNext.Net.Cluster.Consensus.Raft;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;

namespace FastSmr.DotNext;

/// <summary>
/// A <see cref="WriteAheadLog"/> whose follower appends are flushed before the follower answers AppendEntries.
/// </summary>
/// <remarks>
/// Stock DotNext 6.12 (read from the package, not the 6.4 public source): <c>RaftCluster.AppendEntriesAsync</c> calls
/// <c>IAuditTrail&lt;IRaftLogEntry&gt;.AppendAsync(producer, startIndex, skipCommitted, token)</c> through the interface,
/// and <see cref="WriteAheadLog"/> implements it implicitly and non-virtually: it writes the pages and only signals
/// the background flusher. The follower then acknowledges entries that are not durable, and after a crash the WAL
/// recovers only up to its last completed flush (its checkpoint file), so it can forget acknowledged entries even on
/// a plain kill -9. Re-implementing that one interface member here makes the follower await <c>FlushAsync</c> (which
/// waits for data, metadata and the checkpoint to be written) before the answer goes out; concurrent flush waiters
/// share one flusher round. Heartbeats (no entries) skip the flush. The leader needs no change: its
/// <c>CommitAsync</c> already waits for its own flush up to the commit index before publishing it.
/// </remarks>
public sealed class DurableWriteAheadLog : WriteAheadLog, IAuditTrail<IRaftLogEntry>
{
    /// <summary>Creates the log.</summary>
    public DurableWriteAheadLog(Options configuration, IStateMachine stateMachine)
        : base(configuration, stateMachine) { }

    /// <inheritdoc />
    async ValueTask IAuditTrail<IRaftLogEntry>.AppendAsync<TEntry>(
        ILogEntryProducer<TEntry> entries,
        long startIndex,
        bool skipCommitted,
        CancellationToken token
    )
    {
        var hasEntries = entries.RemainingCount > 0;
        await AppendAsync(entries, startIndex, skipCommitted, token).ConfigureAwait(false);
        if (hasEntries)
        {
            await FlushAsync(token).ConfigureAwait(false);
        }
    }
}
