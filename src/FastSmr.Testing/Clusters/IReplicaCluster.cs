using FastSmr.Core.Protocol;

namespace FastSmr.Testing.Clusters;

/// <summary>
/// A cluster of replicas on 127.0.0.1 that a test, the demo or the chaos harness drives, whether the replicas run in this
/// process (<see cref="InProcessCluster"/>) or as child processes (<see cref="ProcessCluster"/>). Both judge leadership and
/// convergence from status frames by <see cref="Convergence"/>, so "converged" means one thing everywhere.
/// </summary>
public interface IReplicaCluster : IAsyncDisposable
{
    /// <summary>The replica ids, in order.</summary>
    IReadOnlyList<ReplicaId> Ids { get; }

    /// <summary>The cluster id every replica and client uses.</summary>
    ulong ClusterId { get; }

    /// <summary>Where clients reach the replicas, in id order.</summary>
    IReadOnlyList<string> ClientEndPoints { get; }

    /// <summary>
    /// The certificates directory the replicas run mutual TLS with (inside <see cref="Directory"/>), or null when they run
    /// <c>--insecure</c>.
    /// </summary>
    string? Certificates { get; }

    /// <summary>The credentials of client 1 for <see cref="Certificates"/> (null when insecure): what the harness's clients use.</summary>
    FastSmr.Security.TlsCredentials? ClientTls => ClusterCertificates.Client(Certificates);

    /// <summary>The temporary directory holding every replica's data; deleted on disposal.</summary>
    string Directory { get; }

    /// <summary>Starts every replica.</summary>
    Task StartAllAsync();

    /// <summary>Starts (or restarts) one replica; its data directory is kept across restarts.</summary>
    Task StartAsync(ReplicaId id);

    /// <summary>Stops one replica cleanly (a process gets SIGTERM, then SIGKILL after a grace period).</summary>
    Task StopAsync(ReplicaId id);

    /// <summary>The status of every running replica; unreachable replicas are left out.</summary>
    Task<List<StatusReport>> StatusesAsync(TimeSpan timeout);

    /// <summary>Waits until one running replica leads and every running replica knows it; returns the leader's status.</summary>
    /// <exception cref="TimeoutException">No such leader within <paramref name="timeout"/>.</exception>
    Task<StatusReport> WaitForLeaderAsync(TimeSpan timeout);

    /// <summary>
    /// Waits until every running replica has converged (<see cref="Convergence.IsConverged"/>); returns their statuses, or
    /// null when that did not happen within <paramref name="timeout"/>.
    /// </summary>
    Task<List<StatusReport>?> WaitForConvergenceAsync(TimeSpan timeout);
}
