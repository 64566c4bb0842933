using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using FastSmr.Client;
using FastSmr.Core;
using FastSmr.Core.Batching;
using FastSmr.Core.Kv;
using FastSmr.Core.Protocol;
using FastSmr.Core.StateMachines;
using FastSmr.Native;
using FastSmr.Security;
using FastSmr.Server;
using FastSmr.Testing;
using FastSmr.Testing.Clusters;
using Xunit.Abstractions;

namespace FastSmr.Tests;

/// <summary>
/// Mutual TLS where identities matter: a member certificate binds the id a native peer may claim, impersonation
/// neither evicts a member nor slows writes, and the client port takes client certificates only and checks the owner
/// every record carries.
/// </summary>
[Collection(ClusterCollection.Name)]
public class TlsTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ImpersonatingAMember_IsRefused_EvictsNoConnection_AndWritesGoOn()
    {
        // Issue 13 on d9a8542: connections claiming members' ids ("newer connection replaces older") cut write throughput
        // to 1 %. With TLS: a hello claiming replica 2 on replica 3's own certificate, plaintext hellos and handshakes
        // without a certificate, all while a client writes.
        await using var cluster = new InProcessCluster(3, backend: BackendKind.Native);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderServerAsync(TimeSpan.FromSeconds(30));
        var term = leader.Engine.Leadership.Term;
        var followers = cluster.Running.Where(s => s != leader).ToArray();
        var (victim, holder) = (followers[0].Options.Id, followers[1].Options.Id);
        var target = EndPointParser.Parse(leader.Options.Self.Raft);
        using var holderCredentials = TlsCredentials.Load(cluster.Certificates!, CertificateIdentity.Member(holder));
        var claim = Hello(leader.Options.ClusterId, victim);
        var patience = TimeSpan.FromSeconds(5);
        Assert.True(await TlsProbe.IsRefusedAsync(target, holderCredentials, claim, patience), "replica " + holder + "'s certificate claimed " + victim);

        using var stop = new CancellationTokenSource();
        var attacks = Task.Run(async () =>
        {
            var attempts = 0;
            while (!stop.IsCancellationRequested && attempts < 200)
            {
                attempts++;
                Assert.True(await TlsProbe.IsRefusedAsync(target, null, claim, patience), "a plaintext hello was kept");
            }

            return attempts;
        });
        await using var client = cluster.NewClient();
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < 300; i++)
        {
            Assert.Equal(SubmitStatus.Ok, (await client.SubmitAsync(KvCommand.Put(Kv.Key("i" + i), Kv.Key("v")))).Status);
        }

        var elapsed = watch.Elapsed;
        await stop.CancelAsync();
        var attempts = await attacks;
        output.WriteLine($"300 sequential writes in {elapsed.TotalMilliseconds:F0} ms during {attempts} impersonation attempts");
        Assert.Equal(term, leader.Engine.Leadership.Term);
        Assert.Equal(ReplicaRole.Leader, leader.Engine.Leadership.Role);
        await cluster.ConvergeAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task TheClientPort_TakesClientCertificatesOfThisClusterOnly()
    {
        await using var cluster = new InProcessCluster(1);
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        var target = EndPointParser.Parse(cluster.ClientEndPoints[0]);
        using var member = TlsCredentials.Load(cluster.Certificates!, CertificateIdentity.Member(new ReplicaId(1)));
        var otherAuthority = ClusterCertificates.Create(Path.Combine(cluster.Directory, "other-ca"), 1);
        var stranger = ClusterCertificates.Client(otherAuthority);
        var status = StatusFrame();
        Assert.Null(await TlsProbe.ClientExchangeAsync(target, member, status, 1));
        Assert.Null(await TlsProbe.ClientExchangeAsync(target, stranger!, status, 1));
        Assert.True(await TlsProbe.IsRefusedAsync(target, null, RawClientFrames.Hello(cluster.ClusterId), TimeSpan.FromSeconds(10)), "a plaintext client was served");
        Assert.Equal([SubmitStatus.Ok], await TlsProbe.ClientExchangeAsync(target, ClusterCertificates.Client(cluster.Certificates)!, status, 1));

        // The client library: a plaintext client finds no replica it can talk to; a TLS client is served.
        await using var plaintext = new FastSmrClient(new FastSmrClientOptions { EndPoints = cluster.ClientEndPoints, Insecure = true, DefaultTimeout = TimeSpan.FromSeconds(2) });
        Assert.NotEqual(SubmitStatus.Ok, (await plaintext.SubmitAsync(KvCommand.Put(Kv.Key("p"), Kv.Key("v")))).Status);
        await using var secured = cluster.NewClient();
        Assert.Equal(SubmitStatus.Ok, (await secured.SubmitAsync(KvCommand.Put(Kv.Key("p"), Kv.Key("v")))).Status);
    }

    [Fact]
    public async Task TheStateMachine_SeesTheCertificatesClientNumber_AndNoClientWritesAsAnother()
    {
        var directory = Directory.CreateTempSubdirectory("fastsmr-owner-").FullName;
        try
        {
            var certificates = ClusterCertificates.Create(Path.Combine(directory, "certs"), 1);
            var options = new ServerOptions
            {
                Id = new ReplicaId(1),
                Members = ServerOptions.ParseMembers($"1=127.0.0.1:{FreePorts.Next()}/127.0.0.1:{FreePorts.Next()}"),
                DataDirectory = Path.Combine(directory, "data"),
                Certificates = certificates,
            };
            await using var replica = new ReplicaServer(options, new OwnerEcho(), newStateMachine: () => new OwnerEcho());
            await replica.StartAsync();
            await Wait.UntilAsync(() => replica.Engine.Leadership.Role == ReplicaRole.Leader, TimeSpan.FromSeconds(30), "the replica leads");
            foreach (var number in new uint[] { 1, 2 })
            {
                await using var client = new FastSmrClient(
                    new FastSmrClientOptions { EndPoints = [options.Self.Client], ClientId = 77 }.Secured(ClusterCertificates.Client(certificates, number))
                );
                var result = await client.SubmitAsync(new byte[] { 1 });
                Assert.Equal(SubmitStatus.Ok, result.Status);
                Assert.Equal(number, BinaryPrimitives.ReadUInt32LittleEndian(result.Output));
            }

            // Client 2 writing a record that claims owner 1 is refused; its own owner passes.
            var target = EndPointParser.Parse(options.Self.Client);
            var two = ClusterCertificates.Client(certificates, 2)!;
            Assert.Equal([SubmitStatus.Rejected], await TlsProbe.ClientExchangeAsync(target, two, Submit((1UL << 32) | 5), 1));
            Assert.Equal([SubmitStatus.Ok], await TlsProbe.ClientExchangeAsync(target, two, Submit((2UL << 32) | 5), 1));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task ADataDirectory_RemembersTheClusterIdItsAuthorityMade_AndRefusesAnotherAuthority()
    {
        // Issue 13, item 4: the cluster id is random, made at bootstrap (with the authority), and stored with the data.
        var directory = Directory.CreateTempSubdirectory("fastsmr-cluster-id-").FullName;
        try
        {
            var members = ServerOptions.ParseMembers($"1=127.0.0.1:{FreePorts.Next()}/127.0.0.1:{FreePorts.Next()}");
            ServerOptions Options(string certificates) =>
                new() { Id = new ReplicaId(1), Members = members, DataDirectory = Path.Combine(directory, "data"), Certificates = certificates };
            var first = ClusterCertificates.Create(Path.Combine(directory, "first"), 1);
            var second = ClusterCertificates.Create(Path.Combine(directory, "second"), 1);
            ulong made;
            await using (var replica = new ReplicaServer(Options(first)))
            {
                await replica.StartAsync();
                made = replica.Options.ClusterId;
                Assert.Equal(ClusterCertificates.Client(first)!.ClusterId, made);
            }

            await using (var again = new ReplicaServer(Options(first)))
            {
                await again.StartAsync(); // the same authority: the same cluster
            }

            await using var other = new ReplicaServer(Options(second));
            var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => other.StartAsync());
            Assert.Contains("belongs to cluster " + made, refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static byte[] Hello(ulong clusterId, ReplicaId from)
    {
        var hello = new byte[WireFormat.HelloSize];
        WireFormat.WriteHello(hello, WireFormat.KindMessages, clusterId, (int)from.Value);
        return hello;
    }

    private static byte[] StatusFrame()
    {
        var writer = new ArrayBufferWriter<byte>();
        FrameCodec.WriteFrame(writer, FrameType.Status, 0, SubmitStatus.Ok, 1, 0, []);
        return writer.WrittenSpan.ToArray();
    }

    private static byte[] Submit(ulong clientId)
    {
        var record = new byte[BatchFormat.RecordHeaderSize + 1];
        BatchFormat.WriteRecordHeader(record, 1, CommandOptions.None, clientId, 1);
        var writer = new ArrayBufferWriter<byte>();
        FrameCodec.WriteFrame(writer, FrameType.Submit, 0, SubmitStatus.Ok, 1, 0, record);
        return writer.WrittenSpan.ToArray();
    }

    /// <summary>Answers every command with the owner the engine passed it.</summary>
    private sealed class OwnerEcho : IStateMachine
    {
        public void Apply(in ApplyContext context, ReadOnlySpan<byte> command, IBufferWriter<byte> output)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(output.GetSpan(4), context.Owner);
            output.Advance(4);
        }

        public void Query(ReadOnlySpan<byte> query, IBufferWriter<byte> output) { }

        public void WriteSnapshot(Stream destination) { }

        public void RestoreSnapshot(Stream source) { }

        public StateDigest GetDigest() => default;
    }
}
