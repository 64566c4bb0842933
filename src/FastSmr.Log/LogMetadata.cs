using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace FastSmr.Log;

/// <summary>
/// The state that must survive a crash with the log: current term, the vote in it, the commit index, and the index and
/// term of the last entry removed by compaction (0, 0 while nothing was compacted).
/// </summary>
public readonly record struct LogMetadataState(
    Term Term,
    ReplicaId VotedFor,
    LogIndex CommitIndex,
    LogIndex CompactedIndex = default,
    Term CompactedTerm = default
);

/// <summary>
/// Durable metadata with atomic update. The file has two 4 KiB slots; each update writes the slot that does *not*
/// hold the newest state — sequence number, state, CRC-32C — and fdatasyncs it before returning. A torn or lost
/// write can only damage the slot being written, so the other one still holds the previous state; on open the
/// valid slot with the higher sequence wins. A failed fdatasync makes the object refuse further updates (the kernel
/// may have dropped the dirty pages, so a retry could report a durability that is not there).
/// </summary>
public sealed class LogMetadata : IDisposable
{
    /// <summary>Bytes per slot (one page, so a slot write never shares a page with the other slot).</summary>
    public const int SlotSize = 4096;

    private const int PayloadSize = 8 + 8 + 4 + 8 + 8 + 8 + 4; // sequence, term, votedFor, commit, compacted index and term, crc
    private readonly SafeFileHandle file;
    private readonly byte[] buffer = new byte[PayloadSize];
    private long sequence;
    private string? failure;

    private LogMetadata(SafeFileHandle file, long sequence, LogMetadataState state)
    {
        this.file = file;
        this.sequence = sequence;
        State = state;
    }

    /// <summary>The newest durable state.</summary>
    public LogMetadataState State { get; private set; }

    /// <summary>
    /// Opens (or creates, with an all-zero state) the metadata file at <paramref name="path"/>. With
    /// <paramref name="mustExist"/> (the log already has records), a missing or never-written file is an error
    /// instead: starting over with a blank term and vote would let the node vote twice in a term.
    /// </summary>
    public static LogMetadata Open(string path, bool mustExist = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var created = !File.Exists(path);
        if (created && mustExist)
        {
            throw new InvalidDataException(path + ": missing while the log has segments; refusing to start with a blank term and vote");
        }

        var file = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        try
        {
            var length = RandomAccess.GetLength(file);
            if (length > 0 && length != 2 * SlotSize)
            {
                throw new InvalidDataException(
                    path
                        + ": "
                        + length.ToString(System.Globalization.CultureInfo.InvariantCulture)
                        + " bytes, not a metadata file ("
                        + (2 * SlotSize).ToString(System.Globalization.CultureInfo.InvariantCulture)
                        + "); refusing to start with a blank term and vote"
                );
            }

            if (mustExist && length == 0)
            {
                throw new InvalidDataException(path + ": empty while the log has segments; refusing to start with a blank term and vote");
            }

            if (created || length == 0)
            {
                RandomAccess.SetLength(file, 2 * SlotSize);
                var metadata = new LogMetadata(file, 0, default);
                metadata.Update(default);
                Syscalls.SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!); // the new name itself must survive a crash
                return metadata;
            }

            return OpenExisting(path, file, mustExist);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Reads both slots of an existing file and takes the newest intact one.</summary>
    private static LogMetadata OpenExisting(string path, SafeFileHandle file, bool mustExist)
    {
        Span<byte> slot = stackalloc byte[PayloadSize];
        (long Sequence, LogMetadataState State)? best = null;
        var neverWritten = true;
        for (var i = 0; i < 2; i++)
        {
            RandomAccess.Read(file, slot, i * (long)SlotSize);
            neverWritten &= !slot.ContainsAnyExcept((byte)0);
            if (TryDecode(slot, out var seq, out var state) && (best is null || seq > best.Value.Sequence))
            {
                best = (seq, state);
            }
        }

        if (best is null && neverWritten && mustExist)
        {
            throw new InvalidDataException(
                path + ": never written while the log has segments; refusing to start with a blank term and vote"
            );
        }

        if (best is null && neverWritten)
        {
            // Created, then a crash before the first update was durable: nothing was ever promised.
            var fresh = new LogMetadata(file, 0, default);
            fresh.Update(default);
            return fresh;
        }

        if (best is null)
        {
            throw new InvalidDataException(
                path + ": both metadata slots are corrupt (term, vote and commit index are lost; refusing to start with a blank state)"
            );
        }

        return new LogMetadata(file, best.Value.Sequence, best.Value.State);
    }

    /// <summary>Makes <paramref name="state"/> durable; when this returns, a crash at any later moment keeps it.</summary>
    public void Update(LogMetadataState state)
    {
        ObjectDisposedException.ThrowIf(file.IsClosed, this);
        if (failure is not null)
        {
            throw new IOException("the metadata file refuses writes after a failed sync: " + failure);
        }

        var next = sequence + 1;
        var span = buffer.AsSpan();
        BinaryPrimitives.WriteInt64LittleEndian(span, next);
        BinaryPrimitives.WriteInt64LittleEndian(span[8..], state.Term.Value);
        BinaryPrimitives.WriteUInt32LittleEndian(span[16..], state.VotedFor.Value);
        BinaryPrimitives.WriteInt64LittleEndian(span[20..], state.CommitIndex.Value);
        BinaryPrimitives.WriteInt64LittleEndian(span[28..], state.CompactedIndex.Value);
        BinaryPrimitives.WriteInt64LittleEndian(span[36..], state.CompactedTerm.Value);
        BinaryPrimitives.WriteUInt32LittleEndian(span[44..], Crc32C.Compute(span[..44]));

        // Slot by sequence parity: the newest state lives in the other slot until this write is durable.
        RandomAccess.Write(file, span, (next & 1) * (long)SlotSize);
        if (!Syscalls.Fdatasync(file))
        {
            failure = "fdatasync failed with errno " + Syscalls.LastError;
            throw new IOException("metadata update is not durable: " + failure);
        }

        sequence = next;
        State = state;
    }

    /// <inheritdoc />
    public void Dispose() => file.Dispose();

    private static bool TryDecode(ReadOnlySpan<byte> slot, out long sequence, out LogMetadataState state)
    {
        sequence = BinaryPrimitives.ReadInt64LittleEndian(slot);
        state = new LogMetadataState(
            new Term(BinaryPrimitives.ReadInt64LittleEndian(slot[8..])),
            new ReplicaId(BinaryPrimitives.ReadUInt32LittleEndian(slot[16..])),
            new LogIndex(BinaryPrimitives.ReadInt64LittleEndian(slot[20..])),
            new LogIndex(BinaryPrimitives.ReadInt64LittleEndian(slot[28..])),
            new Term(BinaryPrimitives.ReadInt64LittleEndian(slot[36..]))
        );
        return sequence > 0 && Crc32C.Compute(slot[..44]) == BinaryPrimitives.ReadUInt32LittleEndian(slot[44..]);
    }
}
