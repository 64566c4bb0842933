using System.Globalization;
using FastSmr.Core;
using FastSmr.Testing.Clusters;

namespace FastSmr.Testing.Chaos;

/// <summary>
/// The proxies of a chaos run: one <see cref="ChaosLink"/> per ordered pair of replicas (replica A dials B through link
/// A→B, routed from inside A's transport while every member list keeps the canonical endpoints) and one per replica on
/// the client path (the member list advertises it, so clients and leader hints go through it).
/// </summary>
internal sealed class ChaosTopology : IAsyncDisposable
{
    private readonly Dictionary<(ReplicaId From, ReplicaId To), ChaosLink> peers = [];
    private readonly Dictionary<ReplicaId, ChaosLink> clients = [];
    private readonly ReplicaId[] ids;

    private ChaosTopology(ReplicaId[] ids) => this.ids = ids;

    /// <summary>The replica ids.</summary>
    public IReadOnlyList<ReplicaId> Ids => ids;

    /// <summary>Creates and starts every link and points <paramref name="cluster"/>'s replicas at them (before they start).</summary>
    public static ChaosTopology Create(ProcessCluster cluster)
    {
        var topology = new ChaosTopology([.. cluster.Ids]);
        try
        {
            foreach (var from in topology.ids)
            {
                var routes = new List<string>();
                foreach (var to in topology.ids)
                {
                    if (from == to)
                    {
                        continue;
                    }

                    var link = new ChaosLink(EndPointParser.Parse(cluster.RaftEndPoint(to)));
                    topology.peers[(from, to)] = link;
                    link.Start();
                    routes.Add(to.ToString() + "=" + link.EndPoint);
                }

                cluster.SetReplicaArguments(from, ["--peer-routes", string.Join(',', routes)]);
                var clientLink = new ChaosLink(EndPointParser.Parse(cluster.ClientEndPoint(from)));
                topology.clients[from] = clientLink;
                clientLink.Start();
                cluster.AdvertiseClientEndPoint(from, clientLink.EndPoint.ToString());
            }
        }
        catch
        {
            topology.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }

        return topology;
    }

    /// <summary>Loses every byte between <paramref name="a"/> and <paramref name="b"/>, both ways.</summary>
    public void Cut(ReplicaId a, ReplicaId b)
    {
        peers[(a, b)].Partition();
        peers[(b, a)].Partition();
    }

    /// <summary>Cuts every pair with one side in <paramref name="side"/> and the other not.</summary>
    public void Separate(IReadOnlyCollection<ReplicaId> side)
    {
        foreach (var a in side)
        {
            foreach (var b in ids.Where(i => !side.Contains(i)))
            {
                Cut(a, b);
            }
        }
    }

    /// <summary>
    /// Loses what <paramref name="from"/> sends to <paramref name="to"/> but not the other way: requests on from's own
    /// connections to to, and replies on to's connections to from.
    /// </summary>
    public void LoseOneWay(ReplicaId from, ReplicaId to)
    {
        peers[(from, to)].DropForward = true;
        peers[(to, from)].DropBackward = true;
    }

    /// <summary>Adds <paramref name="delay"/> to every chunk forwarded on every peer link (open connections included).</summary>
    public void SlowPeers(TimeSpan delay)
    {
        foreach (var link in peers.Values)
        {
            link.Delay = delay;
        }
    }

    /// <summary>Closes every client connection; clients reconnect.</summary>
    public void CutClients()
    {
        foreach (var link in clients.Values)
        {
            link.CutConnections();
        }
    }

    /// <summary>Heals every link: no loss, no delay, no cap (connections that lost bytes are cut).</summary>
    public void HealAll()
    {
        foreach (var link in peers.Values.Concat(clients.Values))
        {
            link.Heal();
            link.Delay = TimeSpan.Zero;
            link.BandwidthBytesPerSecond = 0;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var link in peers.Values.Concat(clients.Values))
        {
            await link.DisposeAsync().ConfigureAwait(false);
        }
    }
}
