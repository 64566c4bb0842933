using FastSmr.Security;

namespace FastSmr.Client;

/// <summary>Settings of a <see cref="FastSmrClient"/>.</summary>
public sealed class FastSmrClientOptions
{
    /// <summary>The client endpoints ("host:port") of the replicas; any one is enough to find the leader.</summary>
    public IReadOnlyList<string> EndPoints { get; set; } = [];

    /// <summary>The cluster id; a server of another cluster refuses the handshake.</summary>
    public ulong ClusterId { get; set; }

    /// <summary>The deadline of a request that does not give one.</summary>
    public TimeSpan DefaultTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long one connection attempt may take.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The most requests in flight on the connection; beyond it a request waits for a free slot (within its deadline).</summary>
    public int InFlightMax { get; set; } = 1_024;

    /// <summary>The largest reply body accepted from a server.</summary>
    public int ReplyBytesMax { get; set; } = 16 << 20;

    /// <summary>
    /// The client session id written into each command record (reserved for exactly-once sessions; 0 for none). With
    /// <see cref="Tls"/> it must fit in 32 bits: the upper half of the id written is the certificate's client number, the
    /// owner the server checks and the state machine sees.
    /// </summary>
    public ulong ClientId { get; set; }

    /// <summary>
    /// This client's certificate and the cluster's authority (<c>TlsCredentials.Load(dir, CertificateIdentity.Client(n))</c>
    /// on a directory made by <c>fastsmr certs create</c>): every connection is mutual TLS and the replica must present a
    /// member certificate. Required unless <see cref="Insecure"/>.
    /// </summary>
    public TlsCredentials? Tls { get; set; }

    /// <summary>Connects in plaintext (to replicas started with <c>--insecure</c>).</summary>
    public bool Insecure { get; set; }

    /// <summary>The clock of deadlines, back-offs and liveness checks (monotonic timestamps); the system clock by default.</summary>
    public TimeProvider Time { get; set; } = TimeProvider.System;
}
