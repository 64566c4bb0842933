using DotNext.IO.Log;
using DotNext.Net.Cluster.Consensus.Raft;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;

namespace FastSmr.DotNext;

/// <summary>
/// A <see cref="WriteAheadLog"/> whose follower appends are flushed before the follower answers AppendEntries (in
/// durable mode), and whose storage failures are reported instead of repeated (both modes).
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
/// Storage failures: when the WAL or the snapshot writer fails (a full disk, a directory it may not write), DotNext's
/// applier stops for good and every later append fails with the same cause, while the replica runs on. The first such
/// failure is handed to <c>onFailure</c> (the back-end's <c>Failure</c>), so that the process stops and says why.
/// </remarks>
public sealed class DurableWriteAheadLog : WriteAheadLog, IAuditTrail<IRaftLogEntry>
{
    private readonly bool flushAppends;
    private readonly Action<Exception> onFailure;

    /// <summary>Creates the log.</summary>
    /// <param name="configuration">DotNext's WAL options.</param>
    /// <param name="stateMachine">The state machine the WAL applies to.</param>
    /// <param name="flushAppends">Flush follower appends before answering (durable mode).</param>
    /// <param name="onFailure">Told about a storage failure (the first; later ones are the same).</param>
    public DurableWriteAheadLog(Options configuration, IStateMachine stateMachine, bool flushAppends, Action<Exception> onFailure)
        : base(configuration, stateMachine)
    {
        this.flushAppends = flushAppends;
        this.onFailure = onFailure;
    }

    /// <summary>
    /// Whether <paramref name="e"/> (or what it wraps) is a storage failure rather than a stop, a lost race or the
    /// network: a permission refused, or an I/O error the file system reports (EIO, EFBIG, ENOSPC, EROFS, EDQUOT: .NET
    /// carries the errno in <see cref="Exception.HResult"/>). A snapshot arrives through the same append, so a connection
    /// reset, a TLS failure or an early end of the stream must not count (a chaos run found exactly that).
    /// </summary>
    public static bool IsStorageFailure(Exception? e)
    {
        var storage = false;
        for (; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case System.Net.Sockets.SocketException or System.Security.Authentication.AuthenticationException:
                    return false;
                case UnauthorizedAccessException:
                case IOException when e.HResult is Eio or Efbig or Enospc or Erofs or Edquot:
                    storage = true;
                    break;
            }
        }

        return storage;
    }

    private const int Eio = 5;
    private const int Efbig = 27;
    private const int Enospc = 28;
    private const int Erofs = 30;
    private const int Edquot = 122;

    /// <inheritdoc />
    async ValueTask IAuditTrail<IRaftLogEntry>.AppendAsync<TEntry>(
        ILogEntryProducer<TEntry> entries,
        long startIndex,
        bool skipCommitted,
        CancellationToken token
    )
    {
        var hasEntries = entries.RemainingCount > 0;
        try
        {
            await AppendAsync(entries, startIndex, skipCommitted, token).ConfigureAwait(false);
            if (hasEntries && flushAppends)
            {
                await FlushAsync(token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (IsStorageFailure(e))
        {
            onFailure(e);
            throw;
        }
    }

    /// <inheritdoc />
    /// <remarks>A follower installing a snapshot comes through here; only the failure report is added.</remarks>
    async ValueTask IAuditTrail<IRaftLogEntry>.AppendAsync<TEntry>(TEntry entry, long startIndex, CancellationToken token)
    {
        try
        {
            await AppendAsync(entry, startIndex, token).ConfigureAwait(false);
        }
        catch (Exception e) when (IsStorageFailure(e))
        {
            onFailure(e);
            throw;
        }
    }
}
