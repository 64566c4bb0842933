namespace FastSmr.Core.Batching;

/// <summary>The parsed header of a batch (see <see cref="BatchFormat"/>).</summary>
/// <param name="EntryType">What the entry carries.</param>
/// <param name="CommandCount">How many command records follow.</param>
/// <param name="BatchId">Unique per proposer; with the entry's term it identifies the proposal.</param>
/// <param name="LeaderTimestampMicros">The leader's timestamp (µs since the Unix epoch), never going backwards.</param>
/// <param name="ProposerId">The replica id of the leader that built the batch.</param>
/// <param name="Version">The format version.</param>
public readonly record struct BatchHeader(
    EntryType EntryType,
    int CommandCount,
    ulong BatchId,
    long LeaderTimestampMicros,
    ReplicaId ProposerId,
    byte Version = BatchFormat.Version
);
