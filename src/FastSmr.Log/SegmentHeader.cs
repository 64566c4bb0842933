using System.Buffers.Binary;

namespace FastSmr.Log;

/// <summary>
/// The 64-byte header at the start of every segment file: magic "FSMRLOG1", format version (u16), 2 reserved bytes,
/// CRC-32C (u32) of the header with this field zeroed, cluster id (u64), node id (u32), 4 reserved bytes, first index
/// (i64), then reserved zeros up to 64 bytes. Records follow from byte 64.
/// </summary>
public readonly record struct SegmentHeader(ulong ClusterId, uint NodeId, long FirstIndex)
{
    /// <summary>Bytes of the header; the first record starts here.</summary>
    public const int Size = 64;

    /// <summary>The format version this code writes and reads.</summary>
    public const ushort FormatVersion = 1;

    private static ReadOnlySpan<byte> Magic => "FSMRLOG1"u8;

    /// <summary>Writes the header into the first <see cref="Size"/> bytes of <paramref name="destination"/>.</summary>
    public void Write(Span<byte> destination)
    {
        var header = destination[..Size];
        header.Clear();
        Magic.CopyTo(header);
        BinaryPrimitives.WriteUInt16LittleEndian(header[8..], FormatVersion);
        BinaryPrimitives.WriteUInt64LittleEndian(header[16..], ClusterId);
        BinaryPrimitives.WriteUInt32LittleEndian(header[24..], NodeId);
        BinaryPrimitives.WriteInt64LittleEndian(header[32..], FirstIndex);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], Crc32C.Compute(header));
    }

    /// <summary>Reads and checks a header; throws <see cref="InvalidDataException"/> naming what is wrong.</summary>
    public static SegmentHeader Read(ReadOnlySpan<byte> source, string segmentName)
    {
        if (source.Length < Size)
        {
            throw new InvalidDataException(
                segmentName
                    + ": shorter than a segment header ("
                    + source.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)
                    + " bytes)"
            );
        }

        if (!source[..8].SequenceEqual(Magic))
        {
            throw new InvalidDataException(segmentName + ": not a FastSmr log segment (bad magic)");
        }

        var version = BinaryPrimitives.ReadUInt16LittleEndian(source[8..]);
        if (version != FormatVersion)
        {
            throw new InvalidDataException(
                segmentName
                    + ": segment format version "
                    + version.ToString(System.Globalization.CultureInfo.InvariantCulture)
                    + " is not supported (this build reads "
                    + FormatVersion.ToString(System.Globalization.CultureInfo.InvariantCulture)
                    + ")"
            );
        }

        Span<byte> copy = stackalloc byte[Size];
        source[..Size].CopyTo(copy);
        var stored = BinaryPrimitives.ReadUInt32LittleEndian(copy[12..]);
        BinaryPrimitives.WriteUInt32LittleEndian(copy[12..], 0);
        if (Crc32C.Compute(copy) != stored)
        {
            throw new InvalidDataException(segmentName + ": segment header checksum mismatch");
        }

        return new SegmentHeader(
            BinaryPrimitives.ReadUInt64LittleEndian(source[16..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[24..]),
            BinaryPrimitives.ReadInt64LittleEndian(source[32..])
        );
    }
}
