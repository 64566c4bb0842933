namespace FastSmr.Core.Batching;

/// <summary>
/// Builds a command batch in a buffer whose size is fixed up front (the batch size limit), so a batch never
/// grows past its maximum. Records are copied in as the client framed them; nothing is re-encoded.
/// </summary>
public sealed class BatchWriter
{
    private readonly byte[] buffer;
    private int position;
    private int count;

    /// <summary>Creates a writer that builds batches of at most <paramref name="capacityBytes"/> bytes.</summary>
    public BatchWriter(int capacityBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacityBytes, BatchFormat.HeaderSize + BatchFormat.RecordHeaderSize);
        buffer = new byte[capacityBytes];
        Reset();
    }

    /// <summary>How many commands the current batch holds.</summary>
    public int Count => count;

    /// <summary>The current batch size in bytes, header included.</summary>
    public int Length => position;

    /// <summary>The maximum batch size in bytes.</summary>
    public int Capacity => buffer.Length;

    /// <summary>Starts a new, empty batch.</summary>
    public void Reset()
    {
        position = BatchFormat.HeaderSize;
        count = 0;
    }

    /// <summary>Appends one whole command record (header and command bytes) if it fits.</summary>
    /// <returns>False when the record would take the batch past its capacity.</returns>
    public bool TryAppendRecord(ReadOnlySpan<byte> record)
    {
        if (record.Length > buffer.Length - position)
        {
            return false;
        }

        record.CopyTo(buffer.AsSpan(position));
        position += record.Length;
        count++;
        return true;
    }

    /// <summary>Writes the header and returns the finished batch. The memory stays valid until the next <see cref="Reset"/>.</summary>
    public ReadOnlyMemory<byte> Complete(ulong batchId, long leaderTimestampMicros, ReplicaId proposerId)
    {
        BatchFormat.WriteHeader(buffer, new BatchHeader(EntryType.Commands, count, batchId, leaderTimestampMicros, proposerId));
        return buffer.AsMemory(0, position);
    }
}
