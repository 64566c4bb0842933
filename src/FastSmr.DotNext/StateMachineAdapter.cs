using System.Buffers;
using System.Globalization;
using DotNext.IO;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
using FastSmr.Core;
using FastSmr.Engine;

namespace FastSmr.DotNext;

/// <summary>
/// Feeds DotNext's apply loop into the engine (<see cref="IReplicationHost"/>) and maps DotNext's snapshot files onto the
/// engine's snapshot hooks.
/// </summary>
/// <remarks>
/// DotNext 6.12 calls <see cref="ApplyAsync"/> from one background loop, strictly in index order, on every replica after
/// commit; snapshot persistence runs between two applies and installation excludes apply, so the engine's rule that
/// apply and snapshots never overlap holds. A snapshot is requested every
/// <see cref="SnapshotPolicy.EntriesInterval"/> entries, which keeps the WAL (and its file descriptors) bounded. The
/// policy's bytes criterion is the native core's (it bounds the entries the core holds in memory); this reference
/// back-end does not apply it, so that it stays the baseline it was measured as (decision 72).
/// </remarks>
internal sealed class StateMachineAdapter : SimpleStateMachine
{
    private readonly IReplicationHost host;
    private readonly SnapshotPolicy policy;
    private long lastSnapshotIndex;

    public StateMachineAdapter(DirectoryInfo location, IReplicationHost host, SnapshotPolicy policy)
        : base(location)
    {
        this.host = host;
        this.policy = policy;
    }

    protected override async ValueTask<bool> ApplyAsync(LogEntry entry, CancellationToken token)
    {
        var index = new LogIndex(entry.Index);
        var term = new Term(entry.Term);
        if (!entry.TryGetPayload(out var payload) || payload.IsEmpty)
        {
            // DotNext's own no-op and configuration entries: nothing for the state machine, but the index advances.
            await host.ApplyAsync(new CommittedEntry(index, term, ReadOnlyMemory<byte>.Empty), token).ConfigureAwait(false);
        }
        else if (payload.IsSingleSegment)
        {
            await host.ApplyAsync(new CommittedEntry(index, term, payload.First), token).ConfigureAwait(false);
        }
        else
        {
            // Only entries larger than a WAL chunk straddle chunks; the chunk size is set well above the batch limit.
            var length = checked((int)payload.Length);
            var buffer = ArrayPool<byte>.Shared.Rent(length);
            try
            {
                payload.CopyTo(buffer);
                await host.ApplyAsync(new CommittedEntry(index, term, buffer.AsMemory(0, length)), token).ConfigureAwait(false);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        if (entry.Index - lastSnapshotIndex >= policy.EntriesInterval)
        {
            lastSnapshotIndex = entry.Index;
            return true;
        }

        return false;
    }

    protected override async ValueTask PersistAsync(IAsyncBinaryWriter writer, CancellationToken token)
    {
        using var buffer = new MemoryStream();
        host.WriteSnapshot(buffer);
        await writer.Invoke(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), token).ConfigureAwait(false);
    }

    protected override async ValueTask RestoreAsync(FileInfo snapshotFile, CancellationToken token)
    {
        // DotNext names snapshot files "{index}-{term}"; the engine's own snapshot header carries both as well.
        var (index, term) = ParseName(snapshotFile.Name);
        var stream = snapshotFile.OpenRead();
        await using (stream.ConfigureAwait(false))
        {
            host.RestoreSnapshot(stream, index, term);
        }

        lastSnapshotIndex = Math.Max(lastSnapshotIndex, host.AppliedIndex.Value);
    }

    private static (LogIndex Index, Term Term) ParseName(string name)
    {
        var dash = name.IndexOf('-', StringComparison.Ordinal);
        if (
            dash > 0
            && long.TryParse(name.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out var index)
            && long.TryParse(name.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var term)
        )
        {
            return (new LogIndex(index), new Term(term));
        }

        return default;
    }
}
