using System.Globalization;
using FastSmr.Core.Protocol;

namespace FastSmr.Testing.Clusters;

/// <summary>Waits on an <see cref="IReplicaCluster"/> that fail loudly, for tests.</summary>
public static class ReplicaClusterExtensions
{
    /// <summary>Waits until the running replicas have converged; throws with their last statuses if they did not in time.</summary>
    /// <exception cref="TimeoutException">They did not converge within <paramref name="timeout"/>.</exception>
    public static async Task<List<StatusReport>> ConvergeAsync(this IReplicaCluster cluster, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        if (await cluster.WaitForConvergenceAsync(timeout).ConfigureAwait(false) is { } converged)
        {
            return converged;
        }

        var last = await cluster.StatusesAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        throw new TimeoutException(
            string.Create(
                CultureInfo.InvariantCulture,
                $"replicas did not converge within {timeout.TotalSeconds} s: {string.Join("; ", last)}"
            )
        );
    }
}
