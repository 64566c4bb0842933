using System.Net;
using FastSmr.Engine;

namespace FastSmr.Server;

/// <summary>The rules a replica's configuration must meet, each failing with one line naming the field.</summary>
public sealed partial class ServerOptions
{
    /// <summary>
    /// Checks the options and throws an <see cref="ArgumentException"/> whose message is one line naming the field and
    /// the rule, on anything that cannot work: a replica refuses to start rather than start and not serve.
    /// </summary>
    public void Validate()
    {
        ValidateMembers();
        ValidateStorage();
        OptionRules.That(
            Certificates is not null || Insecure,
            nameof(Certificates),
            "is required (a directory made by `fastsmr certs create`), or set Insecure to run both ports in plaintext"
        );
        OptionRules.That(Certificates is null || !Insecure, nameof(Insecure), "cannot be set together with Certificates");
        OptionRules.That(
            Certificates is null || Directory.Exists(Certificates),
            nameof(Certificates),
            Certificates + " is not a directory"
        );
        OptionRules.Range(nameof(ConnectionsMax), ConnectionsMax, 1, 100_000);
        OptionRules.Range(nameof(InFlightPerConnectionMax), InFlightPerConnectionMax, 1, 1 << 20);
        OptionRules.Range(nameof(ConnectionOutputBytesMax), ConnectionOutputBytesMax, 1L << 20, 1L << 34);
        OptionRules.Range(nameof(ClientHelloTimeoutMs), ClientHelloTimeoutMs, 100, 600_000);
        OptionRules.Range(nameof(StatusPerSecondMax), StatusPerSecondMax, 1, 1_000_000);
        OptionRules.That(
            ClientIdleTimeoutMs == 0 || ClientIdleTimeoutMs >= 1_000,
            nameof(ClientIdleTimeoutMs),
            "must be 0 (never) or at least 1000"
        );
        OptionRules.Range(nameof(SpinIterations), SpinIterations, 0, 1_000_000);
        new ElectionTiming(LowerElectionTimeoutMs, UpperElectionTimeoutMs).Validate();
        new SnapshotPolicy { EntriesInterval = SnapshotInterval }.Validate();
        OptionRules.Range(nameof(WalChunkBytes), WalChunkBytes, 1 << 20, 1 << 30);
        OptionRules.That(Engine is not null, nameof(Engine), "is required");
        Engine!.ValidateLimits(nameof(Engine) + ".");
        if (ClientListen is not null)
        {
            ParseField(nameof(ClientListen), ClientListen);
        }

        foreach (var (peer, route) in PeerRoutes)
        {
            OptionRules.That(peer != Id && Members.Exists(m => m.Id == peer), "PeerRoutes." + peer, "not another member");
            ParseField("PeerRoutes." + peer, route);
        }

        OptionRules.That(
            InjectBug is null || InjectedBugs.Contains(InjectBug),
            nameof(InjectBug),
            "unknown '" + InjectBug + "' (available: " + string.Join(", ", InjectedBugs) + ")"
        );
    }

    private void ValidateMembers()
    {
        OptionRules.That(Members is { Count: > 0 }, nameof(Members), "at least one member is required");
        var ids = new HashSet<ReplicaId>();
        var raft = new HashSet<IPEndPoint>();
        var clients = new HashSet<IPEndPoint>();
        foreach (var member in Members)
        {
            var field = "Members[" + member.Id + "]";
            OptionRules.Range(field + ".Id", member.Id.Value, 1, int.MaxValue);
            OptionRules.That(ids.Add(member.Id), field + ".Id", "appears twice");
            OptionRules.That(raft.Add(ParseField(field + ".Raft", member.Raft)), field + ".Raft", "another member has this endpoint");
            OptionRules.That(
                clients.Add(ParseField(field + ".Client", member.Client)),
                field + ".Client",
                "another member has this endpoint"
            );
        }

        OptionRules.That(Id.IsSome, nameof(Id), "must be non-zero");
        OptionRules.That(ids.Contains(Id), nameof(Id), "replica " + Id + " is not among the members");
        OptionRules.That(Enum.IsDefined(Backend), nameof(Backend), "unknown back-end (available: native, dotnext)");
        OptionRules.That(Enum.IsDefined(Durability), nameof(Durability), "unknown durability (available: durable, memory)");
    }

    private void ValidateStorage()
    {
        OptionRules.That(!string.IsNullOrWhiteSpace(DataDirectory), nameof(DataDirectory), "is required");
        OptionRules.That(!File.Exists(DataDirectory), nameof(DataDirectory), DataDirectory + " is a file, not a directory");
    }

    private static IPEndPoint ParseField(string field, string text)
    {
        try
        {
            return ParseEndPoint(text);
        }
        catch (FormatException e)
        {
            throw new ArgumentException(field + ": " + e.Message, field, e);
        }
    }
}
