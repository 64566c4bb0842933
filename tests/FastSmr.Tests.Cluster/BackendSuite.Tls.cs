using System.Buffers;
using FastSmr.Core;
using FastSmr.Core.Kv;
using FastSmr.Core.Protocol;
using FastSmr.Native;
using FastSmr.Raft;
using FastSmr.Security;
using FastSmr.Testing.Clusters;

namespace FastSmr.Tests;

/// <summary>The suite's TLS checks: on either back-end, the peer port takes only this cluster's member certificates.</summary>
public abstract partial class BackendSuite
{
    [Fact]
    public async Task WithTls_ThePeerPort_RefusesWhoeverHoldsNoMemberCertificateOfThisCluster_AndTheClusterCarriesOn()
    {
        // Issue 13: any process that reached the peer port could forge messages. With TLS, a forged heartbeat that claims
        // the leader's id and a term of 2^63 - 1 must not even reach the core: without a certificate, with a client's, or
        // with a member certificate of another authority.
        await using var cluster = new InProcessCluster(3, backend: Backend);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderServerAsync(TimeSpan.FromSeconds(30));
        var term = leader.Engine.Leadership.Term;
        var follower = cluster.Running.First(s => s != leader);
        var target = EndPointParser.Parse(follower.Options.Self.Raft);
        var otherAuthority = ClusterCertificates.Create(Path.Combine(cluster.Directory, "other-ca"), 3);
        using var stranger = TlsCredentials.Load(otherAuthority, CertificateIdentity.Member(leader.Options.Id));
        var client = ClusterCertificates.Client(cluster.Certificates);
        var forged = ForgedHeartbeat(follower.Options.ClusterId, leader.Options.Id, follower.Options.Id);
        var patience = TimeSpan.FromSeconds(5);
        Assert.True(await TlsProbe.IsRefusedAsync(target, null, forged, patience), "a plaintext connection was kept open");
        Assert.True(await TlsProbe.IsRefusedAsync(target, client, forged, patience), "a client certificate was taken on the peer port");
        Assert.True(await TlsProbe.IsRefusedAsync(target, stranger, forged, patience), "another authority's member certificate was taken");

        await using var writer = cluster.NewClient();
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(SubmitStatus.Ok, (await writer.SubmitAsync(KvCommand.Put(Kv.Key("t" + i), Kv.Key("v")))).Status);
        }

        Assert.Equal(term, follower.Engine.Leadership.Term);
        Assert.Equal(ReplicaRole.Leader, leader.Engine.Leadership.Role);
        await cluster.ConvergeAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>A native hello claiming <paramref name="from"/>, then a heartbeat with the highest term.</summary>
    private static byte[] ForgedHeartbeat(ulong clusterId, ReplicaId from, ReplicaId to)
    {
        var writer = new ArrayBufferWriter<byte>();
        var hello = new byte[WireFormat.HelloSize];
        WireFormat.WriteHello(hello, WireFormat.KindMessages, clusterId, (int)from.Value);
        writer.Write(hello);
        WireFormat.Write(writer, new Message { Type = MessageType.Heartbeat, From = from, To = to, Term = new Term(long.MaxValue) });
        return writer.WrittenSpan.ToArray();
    }
}
