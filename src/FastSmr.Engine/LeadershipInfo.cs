using FastSmr.Core;
using FastSmr.Core.Protocol;

namespace FastSmr.Engine;

/// <summary>A replica's view of leadership.</summary>
/// <param name="Role">This replica's role.</param>
/// <param name="Term">The current term.</param>
/// <param name="LeaderId">The leader's replica id, <see cref="ReplicaId.None"/> when none is known.</param>
public readonly record struct LeadershipInfo(ReplicaRole Role, Term Term, ReplicaId LeaderId);
