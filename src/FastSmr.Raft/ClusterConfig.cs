using System.Buffers.Binary;

namespace FastSmr.Raft;

/// <summary>
/// Who is in the cluster: voters (they elect and count towards every majority) and learners (they receive the log and
/// can be promoted, but never vote or count). Encoded in <see cref="EntryKind.Config"/> entries and carried by snapshots.
/// </summary>
public sealed record ClusterConfig
{
    /// <summary>Creates a configuration; ids must be in [1, 2^31) and appear once.</summary>
    public ClusterConfig(IReadOnlyList<ReplicaId> voters, IReadOnlyList<ReplicaId>? learners = null)
    {
        ArgumentNullException.ThrowIfNull(voters);
        learners ??= [];
        var all = voters.Concat(learners).ToList();
        if (voters.Count == 0 || all.Any(id => !id.IsSome || id.Value > int.MaxValue) || all.Distinct().Count() != all.Count)
        {
            throw new ArgumentException("a configuration needs at least one voter, and positive ids that appear once");
        }

        Voters = [.. voters.Order()];
        Learners = [.. learners.Order()];
    }

    /// <summary>Voting members, sorted.</summary>
    public IReadOnlyList<ReplicaId> Voters { get; }

    /// <summary>Non-voting members, sorted.</summary>
    public IReadOnlyList<ReplicaId> Learners { get; }

    /// <summary>Votes (or acknowledgements) that make a majority of the voters.</summary>
    public int Quorum => (Voters.Count / 2) + 1;

    /// <summary>Whether <paramref name="id"/> votes.</summary>
    public bool IsVoter(ReplicaId id) => Voters.Contains(id);

    /// <summary>Whether <paramref name="id"/> is a voter or a learner.</summary>
    public bool IsMember(ReplicaId id) => Voters.Contains(id) || Learners.Contains(id);

    /// <summary>Every member, voters first.</summary>
    public IEnumerable<ReplicaId> Members => Voters.Concat(Learners);

    /// <summary>Little-endian: voter count (u16), learner count (u16), then the ids (i32 each).</summary>
    public byte[] Encode()
    {
        var bytes = new byte[4 + (4 * (Voters.Count + Learners.Count))];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, (ushort)Voters.Count);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2), (ushort)Learners.Count);
        var offset = 4;
        foreach (var id in Members)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(offset), (int)id.Value);
            offset += 4;
        }

        return bytes;
    }

    /// <summary>Reads what <see cref="Encode"/> wrote; throws <see cref="InvalidDataException"/> on anything else.</summary>
    public static ClusterConfig Decode(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 4)
        {
            throw new InvalidDataException("configuration entry shorter than its header");
        }

        int voters = BinaryPrimitives.ReadUInt16LittleEndian(bytes),
            learners = BinaryPrimitives.ReadUInt16LittleEndian(bytes[2..]);
        if (bytes.Length != 4 + (4 * (voters + learners)))
        {
            throw new InvalidDataException("configuration entry length does not match its member counts");
        }

        var ids = new ReplicaId[voters + learners];
        for (var i = 0; i < ids.Length; i++)
        {
            var id = BinaryPrimitives.ReadInt32LittleEndian(bytes[(4 + (4 * i))..]);
            if (id <= 0)
            {
                throw new InvalidDataException(
                    "invalid configuration entry: member id " + id.ToString(System.Globalization.CultureInfo.InvariantCulture)
                );
            }

            ids[i] = new ReplicaId((uint)id);
        }

        try
        {
            return new ClusterConfig(ids[..voters], ids[voters..]);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException("invalid configuration entry: " + e.Message, e);
        }
    }

    /// <inheritdoc />
    public override string ToString() => "voters [" + string.Join(',', Voters) + "] learners [" + string.Join(',', Learners) + "]";

    /// <inheritdoc />
    public bool Equals(ClusterConfig? other) =>
        other is not null && Voters.SequenceEqual(other.Voters) && Learners.SequenceEqual(other.Learners);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Voters.Count, Learners.Count, Voters.Count > 0 ? Voters[0] : ReplicaId.None);
}

/// <summary>One membership change: the single-server kind (thesis §4.1), so old and new majorities always overlap.</summary>
public enum ConfigChange
{
    /// <summary>Add a non-voting member; it receives the log.</summary>
    AddLearner,

    /// <summary>Make a learner (once caught up) a voter.</summary>
    PromoteLearner,

    /// <summary>Remove a voter or a learner.</summary>
    Remove,
}
