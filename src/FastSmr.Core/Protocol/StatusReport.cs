using FastSmr.Core.StateMachines;

namespace FastSmr.Core.Protocol;

/// <summary>What a replica reports about itself. Convergence is judged by comparing digests at equal applied indexes.</summary>
/// <param name="ReplicaId">The replica's id.</param>
/// <param name="Role">Its role.</param>
/// <param name="Term">Its current term.</param>
/// <param name="CommitIndex">The highest index it knows to be committed.</param>
/// <param name="AppliedIndex">The highest index applied to its state machine.</param>
/// <param name="Digest">The state digest at <paramref name="AppliedIndex"/>.</param>
/// <param name="LeaderId">The leader it knows of (<see cref="ReplicaId.None"/> for none).</param>
/// <param name="ProcessAllocatedBytes">Bytes allocated by the replica's process so far
/// (<c>GC.GetTotalAllocatedBytes(true)</c>), for allocation budgets in benchmarks.</param>
public readonly record struct StatusReport(
    ReplicaId ReplicaId,
    ReplicaRole Role,
    Term Term,
    LogIndex CommitIndex,
    LogIndex AppliedIndex,
    StateDigest Digest,
    ReplicaId LeaderId,
    long ProcessAllocatedBytes = 0
);
