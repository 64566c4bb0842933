using FastSmr.Log;

namespace FastSmr.Tests;

/// <summary>FastSmr.Log's durable metadata: two checksummed slots, so a torn update keeps the previous state.</summary>
public sealed class LogMetadataTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("fastsmr-meta-").FullName;

    private string Path_ => Path.Combine(directory, "meta");

    [Fact]
    public void NewFile_StartsAtZero_AndUpdatesSurviveReopen()
    {
        using (var metadata = LogMetadata.Open(Path_))
        {
            Assert.Equal(default, metadata.State);
            metadata.Update(new LogMetadataState(1, 2, 0));
            metadata.Update(new LogMetadataState(5, 3, 17));
        }

        using var reopened = LogMetadata.Open(Path_);
        Assert.Equal(new LogMetadataState(5, 3, 17), reopened.State);
    }

    [Fact]
    public void TornNewestSlot_FallsBackToThePreviousState()
    {
        using (var metadata = LogMetadata.Open(Path_))
        {
            metadata.Update(new LogMetadataState(4, 1, 10)); // sequence 2: slot 0
            metadata.Update(new LogMetadataState(6, 2, 12)); // sequence 3: slot 1
        }

        // A write of the newest slot torn half-way: its checksum no longer matches.
        var bytes = File.ReadAllBytes(Path_);
        bytes[LogMetadata.SlotSize + 9] ^= 0xFF;
        File.WriteAllBytes(Path_, bytes);
        using (var reopened = LogMetadata.Open(Path_))
        {
            Assert.Equal(new LogMetadataState(4, 1, 10), reopened.State);

            // The next update goes to the damaged slot's turn without disturbing the good one.
            reopened.Update(new LogMetadataState(7, 3, 12));
        }

        using var again = LogMetadata.Open(Path_);
        Assert.Equal(new LogMetadataState(7, 3, 12), again.State);
    }

    [Fact]
    public void BothSlotsCorrupt_IsAnError_NeverABlankState()
    {
        using (var metadata = LogMetadata.Open(Path_))
        {
            metadata.Update(new LogMetadataState(9, 1, 3));
        }

        var bytes = File.ReadAllBytes(Path_);
        bytes[9] ^= 0x01;
        bytes[LogMetadata.SlotSize + 9] ^= 0x01;
        File.WriteAllBytes(Path_, bytes);
        var error = Assert.Throws<InvalidDataException>(() => LogMetadata.Open(Path_));
        Assert.Contains("both metadata slots are corrupt", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CrashBeforeTheFirstUpdate_OpensAsNew()
    {
        File.WriteAllBytes(Path_, new byte[2 * LogMetadata.SlotSize]);
        using var metadata = LogMetadata.Open(Path_);
        Assert.Equal(default, metadata.State);
    }

    public void Dispose() => Directory.Delete(directory, recursive: true);
}
