using System.Buffers.Binary;
using System.Globalization;

namespace FastSmr.Engine;

/// <summary>The header of a state image: what the engine writes before the state machine's own bytes.</summary>
/// <param name="ClusterId">The cluster it belongs to; another cluster's image is refused.</param>
/// <param name="WrittenBy">The replica that wrote it (informational).</param>
/// <param name="Index">The last applied index it covers (0 on images that predate the field: the caller's index holds).</param>
/// <param name="Term">That entry's term (0 likewise).</param>
/// <param name="LeaderTimestampMicros">The applied leader timestamp, so time never goes backwards after a restore.</param>
public readonly record struct SnapshotImageHeader(
    ulong ClusterId,
    ReplicaId WrittenBy,
    LogIndex Index,
    Term Term,
    long LeaderTimestampMicros
);

/// <summary>The fixed header of a snapshot file (the native back-end's envelope around a state image).</summary>
/// <param name="Index">The last log index the snapshot covers.</param>
/// <param name="Term">That entry's term.</param>
/// <param name="StateLength">The length of the state image that follows the configuration.</param>
/// <param name="StateCrc">The checksum: version 2, CRC-32C of the state image, then of this header's other 36 bytes,
/// then of the configuration — every byte of the file; version 1 (still read), of the state image only.</param>
/// <param name="ConfigLength">The length of the encoded cluster configuration that follows this header.</param>
/// <param name="Version">The file format version (<see cref="SnapshotFormat.FileVersion"/> when written).</param>
public readonly record struct SnapshotFileHeader(
    LogIndex Index,
    Term Term,
    long StateLength,
    uint StateCrc,
    int ConfigLength,
    uint Version = SnapshotFormat.FileVersion
);

/// <summary>
/// The one owner of FastSmr's snapshot format, both of its layers; every byte of a snapshot is laid out here.
/// <list type="bullet">
/// <item><b>State image</b> — what <see cref="IReplicationHost.WriteSnapshot"/> writes and
/// <see cref="IReplicationHost.RestoreSnapshot"/> reads on every back-end (DotNext keeps it inside its own snapshot
/// record; the native back-end inside a snapshot file): 48 bytes, little-endian — magic "FSSN" u32, version u16 (1),
/// reserved u16, cluster id u64, writer's replica id u32, reserved u32, index i64, term i64, leader timestamp µs i64 —
/// then the state machine's own bytes.</item>
/// <item><b>Snapshot file</b> — the native back-end's self-describing file, which is also what travels to a follower
/// byte for byte: 40 bytes — magic "FSSN" u32, version u32 (2), index i64, term i64, state length i64, CRC-32C u32 (of
/// the state image, then of the header's other 36 bytes, then of the configuration: version 1 covered the state
/// only, which left a flipped term or configuration undetected), configuration length u32 — then the encoded
/// configuration, then the state image.</item>
/// </list>
/// Both layers begin with the same magic because they were first written by two components (see decision 76 in
/// native-notes/decisions.md). A reader always knows which layer it reads (a file from offset 0, an image from the
/// file's state offset or from a back-end's record), so the shared magic is never ambiguous; it is kept because
/// snapshots on disk and on the wire must stay readable. A new version of either layer takes a magic of its own.
/// </summary>
public static class SnapshotFormat
{
    /// <summary>"FSSN", the first four bytes of both layers.</summary>
    public const uint Magic = 0x4E535346;

    /// <summary>The size of a state image header.</summary>
    public const int ImageHeaderSize = 48;

    /// <summary>The size of a snapshot file's fixed header.</summary>
    public const int FileHeaderSize = 40;

    /// <summary>The largest encoded configuration a file header may announce (16,383 members; anything larger is damage).</summary>
    public const int ConfigBytesMax = 65_536;

    /// <summary>The smallest encoded configuration (its member count).</summary>
    public const int ConfigBytesMin = 4;

    private const ushort ImageVersion = 1;

    /// <summary>The snapshot file version written (2: the checksum covers every byte); 1 is still read.</summary>
    public const uint FileVersion = 2;

    /// <summary>Writes a state image header into the first <see cref="ImageHeaderSize"/> bytes of <paramref name="destination"/>.</summary>
    public static void WriteImageHeader(Span<byte> destination, in SnapshotImageHeader header)
    {
        var bytes = destination[..ImageHeaderSize];
        bytes.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes[4..], ImageVersion);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes[8..], header.ClusterId);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes[16..], header.WrittenBy.Value);
        BinaryPrimitives.WriteInt64LittleEndian(bytes[24..], header.Index.Value);
        BinaryPrimitives.WriteInt64LittleEndian(bytes[32..], header.Term.Value);
        BinaryPrimitives.WriteInt64LittleEndian(bytes[40..], header.LeaderTimestampMicros);
    }

    /// <summary>Reads a state image header; throws <see cref="InvalidDataException"/> on a wrong magic or version.</summary>
    public static SnapshotImageHeader ReadImageHeader(ReadOnlySpan<byte> source)
    {
        if (
            source.Length < ImageHeaderSize
            || BinaryPrimitives.ReadUInt32LittleEndian(source) != Magic
            || BinaryPrimitives.ReadUInt16LittleEndian(source[4..]) != ImageVersion
        )
        {
            throw new InvalidDataException("not a FastSmr snapshot, or an unsupported snapshot version");
        }

        return new SnapshotImageHeader(
            BinaryPrimitives.ReadUInt64LittleEndian(source[8..]),
            new ReplicaId(BinaryPrimitives.ReadUInt32LittleEndian(source[16..])),
            new LogIndex(BinaryPrimitives.ReadInt64LittleEndian(source[24..])),
            new Term(BinaryPrimitives.ReadInt64LittleEndian(source[32..])),
            BinaryPrimitives.ReadInt64LittleEndian(source[40..])
        );
    }

    /// <summary>Writes a snapshot file's fixed header into the first <see cref="FileHeaderSize"/> bytes of
    /// <paramref name="destination"/>.</summary>
    public static void WriteFileHeader(Span<byte> destination, in SnapshotFileHeader header)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], header.Version);
        BinaryPrimitives.WriteInt64LittleEndian(destination[8..], header.Index.Value);
        BinaryPrimitives.WriteInt64LittleEndian(destination[16..], header.Term.Value);
        BinaryPrimitives.WriteInt64LittleEndian(destination[24..], header.StateLength);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[32..], header.StateCrc);
        BinaryPrimitives.WriteInt32LittleEndian(destination[36..], header.ConfigLength);
    }

    /// <summary>
    /// Reads a snapshot file's fixed header and checks what it can on its own (magic, version, signs, the configuration
    /// length's bounds); throws <see cref="InvalidDataException"/> naming <paramref name="source"/>'s origin.
    /// </summary>
    public static SnapshotFileHeader ReadFileHeader(ReadOnlySpan<byte> source, string origin)
    {
        if (source.Length < FileHeaderSize)
        {
            throw new InvalidDataException(origin + ": shorter than a snapshot header");
        }

        var version = BinaryPrimitives.ReadUInt32LittleEndian(source[4..]);
        if (BinaryPrimitives.ReadUInt32LittleEndian(source) != Magic || version is not (1 or FileVersion))
        {
            throw new InvalidDataException(origin + ": not a FastSmr snapshot (magic or version)");
        }

        var header = new SnapshotFileHeader(
            new LogIndex(BinaryPrimitives.ReadInt64LittleEndian(source[8..])),
            new Term(BinaryPrimitives.ReadInt64LittleEndian(source[16..])),
            BinaryPrimitives.ReadInt64LittleEndian(source[24..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[32..]),
            BinaryPrimitives.ReadInt32LittleEndian(source[36..]),
            version
        );
        if (
            header.Index.Value < 0
            || header.Term.Value < 0
            || header.StateLength < 0
            || header.ConfigLength is < ConfigBytesMin or > ConfigBytesMax
        )
        {
            throw new InvalidDataException(
                origin + ": header fields out of range (config length " + header.ConfigLength.ToString(CultureInfo.InvariantCulture) + ")"
            );
        }

        return header;
    }

    /// <summary>The total length of a snapshot file with this header.</summary>
    public static long FileLength(in SnapshotFileHeader header) => FileHeaderSize + header.ConfigLength + header.StateLength;
}
