using System.Text.Json;
using FastSmr.Log;

namespace FastSmr.Server;

/// <summary>
/// The cluster a data directory belongs to, written at its first start (<c>membership.json</c>: cluster id, and every
/// member's id and peer endpoint) and checked at every later one. A replica restarted with another member list or
/// cluster id refuses to start: on d9a8542 one restarted with a one-member list formed a cluster of its own, and two
/// leaders acknowledged writes at the same time.
/// </summary>
/// <remarks>Membership is static for now; the membership changes of a later issue must update this record.</remarks>
internal static class MembershipRecord
{
    private const string FileName = "membership.json";

    /// <summary>Writes the record for a new data directory, or checks <paramref name="options"/> against the stored one.</summary>
    /// <exception cref="InvalidOperationException">The options disagree with the stored record (one line naming both).</exception>
    /// <exception cref="InvalidDataException">The stored record is damaged.</exception>
    public static void CheckOrCreate(ServerOptions options)
    {
        Directory.CreateDirectory(options.DataDirectory);
        var path = Path.Combine(options.DataDirectory, FileName);
        var current = Describe(options);
        if (!File.Exists(path))
        {
            WriteDurably(path, JsonSerializer.Serialize(current));
            return;
        }

        Stored? stored;
        try
        {
            stored = JsonSerializer.Deserialize<Stored>(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException(path + ": damaged membership record: " + e.Message, e);
        }

        if (stored is null || stored.ClusterId != current.ClusterId || !stored.Members.SequenceEqual(current.Members))
        {
            throw new InvalidOperationException(
                "this data directory belongs to cluster "
                    + (stored is null ? "?" : Text(stored))
                    + ", but the configuration says cluster "
                    + Text(current)
                    + " (fix --members/--cluster-id, or start from an empty data directory); "
                    + path
            );
        }
    }

    private static Stored Describe(ServerOptions options) =>
        new(
            options.ClusterId,
            [
                .. options
                    .Members.OrderBy(m => m.Id.Value)
                    .Select(m => new StoredMember(m.Id.Value, ServerOptions.ParseEndPoint(m.Raft).ToString())),
            ]
        );

    private static string Text(Stored record) =>
        record.ClusterId + " with members " + string.Join(",", record.Members.Select(m => m.Id + "=" + m.Raft));

    private static void WriteDurably(string path, string text)
    {
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, text);
        DurableFile.Commit(temporary, path); // file and rename both durable
    }

    /// <summary>What is stored.</summary>
    internal sealed record Stored(ulong ClusterId, StoredMember[] Members);

    /// <summary>One member as stored.</summary>
    internal sealed record StoredMember(uint Id, string Raft);
}
