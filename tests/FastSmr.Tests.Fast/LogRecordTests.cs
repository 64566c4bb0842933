using FastSmr.Log;

namespace FastSmr.Tests;

/// <summary>FastSmr.Log's on-disk formats: the record (CRC-32C over header and payload, 8-byte aligned) and the segment header.</summary>
public class LogRecordTests
{
    [Fact]
    public void Crc32C_MatchesTheStandardCheckValue_InOneGoAndInPieces()
    {
        var data = "123456789"u8.ToArray();
        Assert.Equal(0xE3069283u, Crc32C.Compute(data));
        Assert.Equal(0xE3069283u, Crc32C.Append(Crc32C.Compute(data.AsSpan(0, 5)), data.AsSpan(5)));
        Assert.Equal(0u, Crc32C.Compute([]));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(9)]
    [InlineData(1_000)]
    public void Record_RoundTrips_AlignedToEightBytes(int payloadLength)
    {
        var payload = Enumerable.Range(0, payloadLength).Select(i => (byte)(i * 31 + 7)).ToArray();
        var buffer = new byte[LogRecord.Size(payloadLength) + 16];
        var size = LogRecord.Write(buffer, term: 3, index: 42, LogRecordType.Entry, payload);
        Assert.Equal(0, size % LogRecord.Alignment);
        Assert.Equal(LogRecord.Size(payloadLength), size);
        Assert.Equal(LogRecordError.None, LogRecord.TryRead(buffer, out var term, out var index, out var type, out var read, out var readSize));
        Assert.Equal((3L, 42L, LogRecordType.Entry, size), (term, index, type, readSize));
        Assert.Equal(payload, read.ToArray());
    }

    [Fact]
    public void EveryBitFlip_InHeaderOrPayload_IsDetected()
    {
        var payload = "an order for 100 lots at 42.17"u8.ToArray();
        var record = new byte[LogRecord.Size(payload.Length)];
        LogRecord.Write(record, 7, 1_000, LogRecordType.Entry, payload);
        for (var bit = 0; bit < (LogRecord.HeaderSize + payload.Length) * 8; bit++)
        {
            var flipped = (byte[])record.Clone();
            flipped[bit / 8] ^= (byte)(1 << (bit % 8));
            var error = LogRecord.TryRead(flipped, out _, out _, out _, out _, out _);
            Assert.True(error is not LogRecordError.None, $"bit {bit} flipped went unnoticed");
        }
    }

    [Fact]
    public void TornRecord_IsTruncated_AtEveryCut()
    {
        var payload = new byte[100];
        Array.Fill(payload, (byte)0xAB);
        var record = new byte[LogRecord.Size(payload.Length)];
        LogRecord.Write(record, 1, 1, LogRecordType.Entry, payload);
        for (var cut = 1; cut < record.Length; cut++)
        {
            Assert.Equal(LogRecordError.Truncated, LogRecord.TryRead(record.AsSpan(0, cut), out _, out _, out _, out _, out _));
        }

        // The unwritten rest of a preallocated segment reads as empty, not as corruption.
        Assert.Equal(LogRecordError.Empty, LogRecord.TryRead(new byte[64], out _, out _, out _, out _, out _));
    }

    [Fact]
    public void OversizedLength_IsRejectedAsABadHeader_WithoutAllocating()
    {
        var record = new byte[LogRecord.Size(8)];
        LogRecord.Write(record, 1, 1, LogRecordType.Entry, new byte[8]);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(record, uint.MaxValue);
        Assert.Equal(LogRecordError.BadHeader, LogRecord.TryRead(record, out _, out _, out _, out _, out _));
    }

    [Fact]
    public void SegmentHeader_RoundTrips_AndNamesTheSegmentWhenWrong()
    {
        var header = new SegmentHeader(ClusterId: 0xFEED, NodeId: 3, FirstIndex: 123_456);
        var bytes = new byte[SegmentHeader.Size];
        header.Write(bytes);
        Assert.Equal(header, SegmentHeader.Read(bytes, "00000000000000123456.seg"));

        var badMagic = (byte[])bytes.Clone();
        badMagic[0] ^= 1;
        Assert.Contains("seg-a: not a FastSmr log segment", Assert.Throws<InvalidDataException>(() => SegmentHeader.Read(badMagic, "seg-a")).Message, StringComparison.Ordinal);
        var badVersion = (byte[])bytes.Clone();
        badVersion[8] = 9;
        Assert.Contains("format version 9", Assert.Throws<InvalidDataException>(() => SegmentHeader.Read(badVersion, "seg-b")).Message, StringComparison.Ordinal);
        var flipped = (byte[])bytes.Clone();
        flipped[33] ^= 0x10;
        Assert.Contains("seg-c: segment header checksum mismatch", Assert.Throws<InvalidDataException>(() => SegmentHeader.Read(flipped, "seg-c")).Message, StringComparison.Ordinal);
        Assert.Throws<InvalidDataException>(() => SegmentHeader.Read(bytes.AsSpan(0, 10), "seg-d"));
    }
}
