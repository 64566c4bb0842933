using System.Buffers.Binary;
using System.Globalization;
using FastSmr.Engine;
using FastSmr.Log;
using FastSmr.Raft;

namespace FastSmr.Native;

/// <summary>What a snapshot file says about itself.</summary>
/// <param name="Path">The file (its name in the storage that holds it).</param>
/// <param name="Index">The last log index it covers.</param>
/// <param name="Term">That entry's term.</param>
/// <param name="Config">The configuration in effect at <paramref name="Index"/>.</param>
/// <param name="StateOffset">Where the state machine's bytes start.</param>
/// <param name="StateLength">How many bytes they are.</param>
public sealed record SnapshotHeader(string Path, long Index, long Term, ClusterConfig Config, long StateOffset, long StateLength);

/// <summary>
/// Snapshots on disk, one file per snapshot named by its index, laid out as <see cref="SnapshotFormat"/> says (fixed
/// header, configuration, state image). The file is self-describing and is what travels to a follower, byte for byte;
/// it is checked (lengths and CRC) before it is trusted, on restart and on receipt. This class owns the files' lives
/// (names, durable renames, cleanup), not their layout.
/// </summary>
internal static class SnapshotFile
{
    public const int FixedHeaderSize = SnapshotFormat.FileHeaderSize;
    private const int CrcOffset = 32;
    private const string Extension = ".snap";

    public static string PathFor(string directory, long index) =>
        Path.Combine(directory, index.ToString("D20", CultureInfo.InvariantCulture) + Extension);

    /// <summary>
    /// Writes a snapshot: <paramref name="writeState"/> streams the state and returns the index and term it covers.
    /// Durable and renamed into place when this returns.
    /// </summary>
    public static SnapshotHeader Write(string directory, ClusterConfig config, Func<Stream, (long Index, long Term)> writeState)
    {
        var temporary = Path.Combine(directory, "writing" + Extension + ".tmp");
        SnapshotHeader written;
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16))
        {
            written = WriteTo(file, temporary, config, writeState);
        }

        var path = PathFor(directory, written.Index);
        DurableFile.Commit(temporary, path);
        return written with { Path = path };
    }

    /// <summary>
    /// Writes a whole snapshot file into <paramref name="file"/> (seekable, empty): header, configuration, and the state
    /// <paramref name="writeState"/> streams, checksummed. Flushes nothing.
    /// </summary>
    public static SnapshotHeader WriteTo(Stream file, string name, ClusterConfig config, Func<Stream, (long Index, long Term)> writeState)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(writeState);
        var configBytes = config.Encode();
        long index,
            term,
            length;
        uint crc;
        file.Position = FixedHeaderSize + configBytes.Length;
        using (var checksummed = new ChecksumStream(file))
        {
            (index, term) = writeState(checksummed);
            crc = checksummed.Crc;
            length = checksummed.Length;
        }

        Span<byte> header = stackalloc byte[FixedHeaderSize];
        SnapshotFormat.WriteFileHeader(header, new SnapshotFileHeader(new LogIndex(index), new Term(term), length, 0, configBytes.Length));
        BinaryPrimitives.WriteUInt32LittleEndian(header[CrcOffset..], FileCrc(crc, header, configBytes));
        file.Position = 0;
        file.Write(header);
        file.Write(configBytes);
        return new SnapshotHeader(name, index, term, config, FixedHeaderSize + configBytes.Length, length);
    }

    /// <summary>
    /// Reads and checks a snapshot file (lengths and the state's CRC); throws <see cref="InvalidDataException"/> naming
    /// the file.
    /// </summary>
    public static SnapshotHeader Verify(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Verify(file, path);
    }

    /// <summary>Checks the whole snapshot file in <paramref name="file"/> (from its start), named <paramref name="name"/>.</summary>
    public static SnapshotHeader Verify(Stream file, string name)
    {
        ArgumentNullException.ThrowIfNull(file);
        Span<byte> bytes = stackalloc byte[FixedHeaderSize];
        var got = file.ReadAtLeast(bytes, FixedHeaderSize, throwOnEndOfStream: false);
        var header = SnapshotFormat.ReadFileHeader(bytes[..got], name);
        if (file.Length != SnapshotFormat.FileLength(header))
        {
            throw new InvalidDataException(
                name + ": header sizes do not match the file (" + file.Length.ToString(CultureInfo.InvariantCulture) + " bytes)"
            );
        }

        var configLength = header.ConfigLength;
        var configBytes = new byte[configLength];
        file.ReadExactly(configBytes);
        var buffer = new byte[1 << 16];
        uint actual = 0;
        int read;
        while ((read = file.Read(buffer)) > 0)
        {
            actual = Crc32C.Append(actual, buffer.AsSpan(0, read));
        }

        if (header.Version >= 2)
        {
            actual = FileCrc(actual, bytes, configBytes);
        }

        if (actual != header.StateCrc)
        {
            throw new InvalidDataException(name + ": the checksum does not match (corrupt snapshot)");
        }

        var config = ClusterConfig.Decode(configBytes);

        return new SnapshotHeader(name, header.Index.Value, header.Term.Value, config, FixedHeaderSize + configLength, header.StateLength);
    }

    /// <summary>
    /// The newest snapshot in <paramref name="directory"/> that verifies, or null. Damaged newer ones are reported
    /// through <paramref name="skipped"/>.
    /// </summary>
    public static SnapshotHeader? FindLatest(string directory, Action<string, Exception> skipped)
    {
        foreach (var path in Directory.EnumerateFiles(directory, "*" + Extension).Order(StringComparer.Ordinal).Reverse())
        {
            try
            {
                return Verify(path);
            }
            catch (Exception e) when (e is InvalidDataException or IOException)
            {
                skipped(path, e);
            }
        }

        return null;
    }

    /// <summary>Deletes snapshots older than <paramref name="keepFrom"/>'s index and leftover temporary files.</summary>
    public static void DeleteOlder(string directory, long keepFrom)
    {
        foreach (var path in Directory.EnumerateFiles(directory, "*" + Extension))
        {
            if (
                long.TryParse(Path.GetFileNameWithoutExtension(path), NumberStyles.None, CultureInfo.InvariantCulture, out var index)
                && index < keepFrom
            )
            {
                TryDelete(path);
            }
        }
    }

    public static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Still open by a transfer: a later cleanup removes it.
        }
    }

    /// <summary>
    /// A version-2 file's checksum: the state's CRC continued over the header (its CRC field left out) and the
    /// configuration.
    /// </summary>
    private static uint FileCrc(uint stateCrc, ReadOnlySpan<byte> header, ReadOnlySpan<byte> config)
    {
        var crc = Crc32C.Append(stateCrc, header[..CrcOffset]);
        crc = Crc32C.Append(crc, header[(CrcOffset + 4)..FixedHeaderSize]);
        return Crc32C.Append(crc, config);
    }

    /// <summary>Counts and checksums what is written through it.</summary>
    private sealed class ChecksumStream(Stream inner) : Stream
    {
        public uint Crc { get; private set; }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => length;

        public override long Position
        {
            get => length;
            set => throw new NotSupportedException();
        }

        private long length;

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            Crc = Crc32C.Append(Crc, buffer);
            length += buffer.Length;
        }

        public override void WriteByte(byte value) => Write([value]);

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            // The inner stream belongs to the caller: nothing of it is disposed here.
            base.Dispose(disposing);
        }
    }
}
