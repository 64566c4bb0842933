// The embedding sample shown in README.md. ReadmeSampleTests checks that the README shows exactly this code and runs it.
// README-SAMPLE-BEGIN
using FastSmr;
using FastSmr.Client;
using FastSmr.Core.Kv;
using FastSmr.Security;
using FastSmr.Server;

public static class EmbeddingSample
{
    /// <summary>Runs one replica inside this process and writes then reads a key through the cluster.</summary>
    /// <param name="id">This replica's id, e.g. 1.</param>
    /// <param name="members">Every replica: "1=127.0.0.1:7001/127.0.0.1:9001,2=...,3=..." (id=peer endpoint/client endpoint).</param>
    /// <param name="dataDirectory">Where this replica keeps its log and snapshots.</param>
    /// <param name="certificates">Made by `fastsmr certs create --out DIR --members 1,2,3 --clients 1`.</param>
    public static async Task<byte[]> PutThenGetAsync(uint id, string members, string dataDirectory, string certificates)
    {
        var options = new ServerOptions
        {
            Id = new ReplicaId(id),
            Members = ServerOptions.ParseMembers(members),
            DataDirectory = dataDirectory,   // durable by default: acknowledged once flushed on a majority
            Certificates = certificates,     // mutual TLS on both ports (or Insecure = true for plaintext)
        };

        // Your deterministic state machine goes here; KvStateMachine is the built-in key-value store.
        await using var replica = new ReplicaServer(options, new KvStateMachine());
        await replica.StartAsync();

        // The client finds the leader, pipelines, and retries only what cannot have been applied.
        await using var client = new FastSmrClient(new FastSmrClientOptions
        {
            EndPoints = options.Members.Select(m => m.Client).ToList(),
            DefaultTimeout = TimeSpan.FromSeconds(5),
            Tls = TlsCredentials.Load(certificates, CertificateIdentity.Client(1)), // the state machine sees owner 1
        });
        var put = await client.SubmitAsync(KvCommand.Put("greeting"u8, "hello"u8));
        if (put.Status != FastSmr.Core.Protocol.SubmitStatus.Ok)
        {
            throw new InvalidOperationException("put: " + put.Status);
        }

        var get = await client.ReadAsync(KvCommand.Get("greeting"u8)); // linearizable by default
        return get.Output; // [KvResult.Ok, 'h', 'e', 'l', 'l', 'o']
    }
}
// README-SAMPLE-END
