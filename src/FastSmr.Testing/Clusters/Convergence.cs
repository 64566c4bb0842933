using FastSmr.Core.Protocol;

namespace FastSmr.Testing.Clusters;

/// <summary>
/// The one definition of "converged" and of "a leader is known" that every cluster, the demo, the load generator and
/// the chaos verdict use. Both are judged from status frames (replica id, role, term, commit and applied index, digest
/// at the applied index), so they hold for a cluster in this process and for one in child processes alike.
/// </summary>
public static class Convergence
{
    /// <summary>
    /// True when all <paramref name="expected"/> replicas answered and report the same applied index and the same digest at
    /// it, each having applied everything it knows to be committed. Equal digests at unequal indexes mean nothing.
    /// </summary>
    public static bool IsConverged(IReadOnlyList<StatusReport> reports, int expected)
    {
        ArgumentNullException.ThrowIfNull(reports);
        if (reports.Count != expected || reports.Count == 0)
        {
            return false;
        }

        var first = reports[0];
        foreach (var report in reports)
        {
            if (report.AppliedIndex != first.AppliedIndex || report.Digest != first.Digest || report.AppliedIndex < report.CommitIndex)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// The leader's status when all <paramref name="expected"/> replicas answered, exactly one of them leads, and every one
    /// names it as leader; otherwise null.
    /// </summary>
    public static StatusReport? AgreedLeader(IReadOnlyList<StatusReport> reports, int expected)
    {
        ArgumentNullException.ThrowIfNull(reports);
        if (reports.Count != expected)
        {
            return null;
        }

        var leader = -1;
        for (var i = 0; i < reports.Count; i++)
        {
            if (reports[i].Role == ReplicaRole.Leader)
            {
                if (leader >= 0)
                {
                    return null;
                }

                leader = i;
            }
        }

        if (leader < 0)
        {
            return null;
        }

        foreach (var report in reports)
        {
            if (report.LeaderId != reports[leader].ReplicaId)
            {
                return null;
            }
        }

        return reports[leader];
    }
}
