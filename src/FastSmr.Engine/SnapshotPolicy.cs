namespace FastSmr.Engine;

/// <summary>
/// When a back-end takes a snapshot and compacts its log behind it: once <see cref="EntriesInterval"/> entries or
/// <see cref="BytesInterval"/> bytes of entries were applied since the last snapshot, whichever comes first. By entries
/// bounds the log's length; by bytes bounds its size (and the native core's memory, which holds every entry since the last
/// compaction): 2,048 entries of 1 MiB would otherwise be 2 GiB. Both back-ends take this one policy; the DotNext
/// reference back-end applies its entry count only (decision 72).
/// </summary>
public sealed record SnapshotPolicy
{
    /// <summary>Entries applied since the last snapshot that call for the next one.</summary>
    public long EntriesInterval { get; init; } = 2_048;

    /// <summary>Bytes of entries applied since the last snapshot that call for the next one.</summary>
    public long BytesInterval { get; init; } = 64L << 20;

    /// <summary>Whether a snapshot is due after applying up to <paramref name="appliedIndex"/>.</summary>
    /// <param name="appliedIndex">The index just applied.</param>
    /// <param name="lastSnapshotIndex">The index the last snapshot covers.</param>
    /// <param name="bytesSinceSnapshot">Bytes of entries applied since that snapshot.</param>
    public bool IsDue(long appliedIndex, long lastSnapshotIndex, long bytesSinceSnapshot) =>
        appliedIndex - lastSnapshotIndex >= EntriesInterval || bytesSinceSnapshot >= BytesInterval;

    /// <summary>Throws with the reason when the policy cannot work.</summary>
    public void Validate()
    {
        OptionRules.Range("SnapshotInterval", EntriesInterval, 1, 1L << 30);
        OptionRules.Range("SnapshotBytesInterval", BytesInterval, 1L << 20, 1L << 40);
    }
}
