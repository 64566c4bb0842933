using System.Net.Sockets;
using FastSmr.Client;
using FastSmr.Core.Protocol;
using FastSmr.Security;

namespace FastSmr.Testing.Clusters;

/// <summary>Asks replicas for their status frames: leader, convergence, the leader's allocation counter.</summary>
public static class ClusterProbe
{
    /// <summary>Asks every endpoint for its status (over TLS with <paramref name="tls"/>); unreachable replicas are left out.</summary>
    public static async Task<List<StatusReport>> StatusesAsync(
        IEnumerable<string> endPoints,
        ulong clusterId,
        TimeSpan timeout,
        TlsCredentials? tls
    )
    {
        ArgumentNullException.ThrowIfNull(endPoints);
        var reports = new List<StatusReport>();
        foreach (var endPoint in endPoints)
        {
            try
            {
                reports.Add(await FastSmrClient.GetStatusAsync(endPoint, clusterId, timeout, tls).ConfigureAwait(false));
            }
            catch (Exception e)
                when (e is IOException or SocketException or OperationCanceledException or TimeoutException or ProtocolException) { }
        }

        return reports;
    }

    /// <summary>
    /// Waits until every endpoint answers and they have converged (<see cref="Convergence.IsConverged"/>); returns those
    /// statuses, or null when that did not happen within <paramref name="timeout"/>.
    /// </summary>
    public static async Task<List<StatusReport>?> WaitForConvergenceAsync(
        Func<IReadOnlyList<string>> endPoints,
        ulong clusterId,
        TimeSpan timeout,
        TlsCredentials? tls
    )
    {
        ArgumentNullException.ThrowIfNull(endPoints);
        List<StatusReport>? converged = null;
        await Wait.TryUntilAsync(
                async () =>
                {
                    var expected = endPoints();
                    var reports = await StatusesAsync(expected, clusterId, TimeSpan.FromSeconds(2), tls).ConfigureAwait(false);
                    converged = Convergence.IsConverged(reports, expected.Count) ? reports : null;
                    return converged is not null;
                },
                timeout,
                TimeSpan.FromMilliseconds(100)
            )
            .ConfigureAwait(false);
        return converged;
    }

    /// <summary>The leader's id and its process's allocated-bytes counter, or null when no leader answers.</summary>
    public static async Task<(ReplicaId Id, long Bytes)?> LeaderAllocationAsync(
        IEnumerable<string> endPoints,
        ulong clusterId,
        TlsCredentials? tls
    )
    {
        foreach (var status in await StatusesAsync(endPoints, clusterId, TimeSpan.FromSeconds(2), tls).ConfigureAwait(false))
        {
            if (status.Role == ReplicaRole.Leader)
            {
                return (status.ReplicaId, status.ProcessAllocatedBytes);
            }
        }

        return null;
    }
}
