using FastSmr.Engine;

namespace FastSmr.Tests;

/// <summary>
/// The snapshot format's two layers, byte for byte. The expected bytes were written from the documented layout, not by
/// this code: snapshots already on disk and in flight must stay readable, so a change here is a format change.
/// </summary>
public class SnapshotFormatTests
{
    private const string ImageBytes =
        "4653534E0100000008070605040302010300000000000000640000000000000007000000000000008877665544332211";

    private const string FileBytes = "4653534E02000000640000000000000007000000000000000010000000000000EFBEADDE0C000000";

    private const string FileBytesVersion1 = "4653534E01000000640000000000000007000000000000000010000000000000EFBEADDE0C000000";

    private static readonly SnapshotImageHeader Image = new(0x0102030405060708, new ReplicaId(3), new LogIndex(100), new Term(7), 0x1122334455667788);

    private static readonly SnapshotFileHeader File = new(new LogIndex(100), new Term(7), 4096, 0xDEADBEEF, 12);

    [Fact]
    public void StateImageHeader_HasTheDocumentedLayout()
    {
        var bytes = new byte[SnapshotFormat.ImageHeaderSize];
        bytes.AsSpan().Fill(0xAA); // reserved bytes must be written as zero, whatever the buffer held
        SnapshotFormat.WriteImageHeader(bytes, Image);
        Assert.Equal(ImageBytes, Convert.ToHexString(bytes));
        Assert.Equal(Image, SnapshotFormat.ReadImageHeader(Convert.FromHexString(ImageBytes)));
    }

    [Fact]
    public void FileHeader_HasTheDocumentedLayout()
    {
        var bytes = new byte[SnapshotFormat.FileHeaderSize];
        SnapshotFormat.WriteFileHeader(bytes, File);
        Assert.Equal(FileBytes, Convert.ToHexString(bytes));
        Assert.Equal(File, SnapshotFormat.ReadFileHeader(Convert.FromHexString(FileBytes), "test"));
        Assert.Equal(40 + 12 + 4096, SnapshotFormat.FileLength(File));
        Assert.Equal(File with { Version = 1 }, SnapshotFormat.ReadFileHeader(Convert.FromHexString(FileBytesVersion1), "test")); // still read
    }

    [Fact]
    public void DamagedHeaders_AreRefused_WithAReason()
    {
        var image = Convert.FromHexString(ImageBytes);
        image[4] = 2; // an image version this build does not know
        Assert.Throws<InvalidDataException>(() => SnapshotFormat.ReadImageHeader(image));
        Assert.Throws<InvalidDataException>(() => SnapshotFormat.ReadImageHeader(Convert.FromHexString(ImageBytes).AsSpan(0, 47)));

        var file = Convert.FromHexString(FileBytes);
        Assert.Contains("shorter", Assert.Throws<InvalidDataException>(() => SnapshotFormat.ReadFileHeader(file.AsSpan(0, 39), "f")).Message, StringComparison.Ordinal);
        file[0] ^= 1;
        Assert.Contains("magic", Assert.Throws<InvalidDataException>(() => SnapshotFormat.ReadFileHeader(file, "f")).Message, StringComparison.Ordinal);
        file = Convert.FromHexString(FileBytes);
        file[36] = 3; // a configuration shorter than its own member count
        Assert.Contains("out of range", Assert.Throws<InvalidDataException>(() => SnapshotFormat.ReadFileHeader(file, "f")).Message, StringComparison.Ordinal);
        file = Convert.FromHexString(FileBytes);
        file[31] = 0x80; // a negative state length
        Assert.Throws<InvalidDataException>(() => SnapshotFormat.ReadFileHeader(file, "f"));
    }
}
