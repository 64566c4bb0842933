namespace FastSmr.Raft;

/// <summary>
/// Defence in depth against a peer that is authenticated but buggy (or a forger on a plaintext port): a message that
/// no correct replica can send is dropped and counted before it can change anything, never turned into an exception
/// that would stop this replica.
/// </summary>
public sealed partial class RaftNode
{
    /// <summary>
    /// Terms up to 2^62 are taken from any message; beyond that a message may move a replica on by at most
    /// <see cref="TermJumpMax"/> past the larger of its own term and 2^62. A correct cluster never gets near 2^62 (one
    /// election per nanosecond would take 146 years), so correct replicas never see the rule, however far one lags.
    /// What it stops is a forged or broken peer driving terms to overflow: one heartbeat with term 2^63 − 1 once left a
    /// cluster leaderless for good (a candidate's term + 1 wrapped). From 2^62 to overflow now takes a billion jumps,
    /// each a term change its receiver persists; and <see cref="FastSmr.Term.Next"/> is checked, so a replica that
    /// still got there would stop rather than wrap.
    /// </summary>
    public static readonly Term TermCeiling = new(1L << 62);

    /// <summary>How far past 2^62 (or past its own term, when that is larger) a message may move a replica: 2^32.</summary>
    public static readonly long TermJumpMax = 1L << 32;

    /// <summary>How many messages this replica dropped because no correct replica could have sent them.</summary>
    public long DroppedMessages { get; private set; }

    /// <summary>Why the last dropped message was dropped (null before the first), for logs and tests.</summary>
    public string? LastDropReason { get; private set; }

    /// <summary>Counts a dropped message and remembers why.</summary>
    private void Drop(string reason)
    {
        DroppedMessages++;
        LastDropReason = reason;
    }

    /// <summary>
    /// Why <paramref name="message"/> cannot come from a correct replica, judged from the message alone, or null when it
    /// might: terms and indexes in range, a log term no later than the message's term, and for an append, entries that
    /// follow its previous index one by one with terms that never go down and never pass the message's term.
    /// </summary>
    internal static string? Malformed(Message message)
    {
        if (message.Term.Value < 0)
        {
            return "negative term";
        }

        if (message.LogTerm.Value < 0 || message.LogTerm > message.Term)
        {
            return "log term out of range";
        }

        if (message.Index.Value < 0 || message.Commit.Value < 0 || message.RejectHint.Value < 0 || message.Round < 0)
        {
            return "negative index, commit or round";
        }

        return message.Type == MessageType.Append ? MalformedEntries(message) : null;
    }

    private static string? MalformedEntries(Message message)
    {
        var previousTerm = message.LogTerm;
        for (var i = 0; i < message.Entries.Count; i++)
        {
            var entry = message.Entries[i];
            if (entry.Index != message.Index + 1 + i)
            {
                return "entries do not follow the previous index one by one";
            }

            if (entry.Term < previousTerm || entry.Term > message.Term)
            {
                return "entry terms go down or pass the message's term";
            }

            if (entry.Type is not (EntryKind.Normal or EntryKind.NoOp or EntryKind.Config))
            {
                return "unknown entry kind";
            }

            if (entry.Type == EntryKind.Config && !IsConfiguration(entry.Data.Span))
            {
                return "a configuration entry that does not decode";
            }

            previousTerm = entry.Term;
        }

        return null;
    }

    private static bool IsConfiguration(ReadOnlySpan<byte> bytes)
    {
        try
        {
            _ = ClusterConfig.Decode(bytes);
            return true;
        }
        catch (InvalidDataException)
        {
            return false;
        }
    }

    /// <summary>Whether <paramref name="message"/>'s term is one this replica may move to (see <see cref="TermCeiling"/>).</summary>
    private bool TermInReach(Message message) => message.Term.Value - Math.Max(Term.Value, TermCeiling.Value) <= TermJumpMax;

    /// <summary>
    /// Whether a leader message (append, heartbeat, snapshot) of the current term comes from another replica than the
    /// leader already known in it: there is one leader per term, so that sender is lying (or broken).
    /// </summary>
    private bool FromSecondLeader(Message message)
    {
        if (Leader.IsSome && message.From != Leader)
        {
            Drop("a second leader in one term");
            return true;
        }

        return false;
    }
}
