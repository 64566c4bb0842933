using FastSmr.Log;

using static FastSmr.Tests.Units;

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
            metadata.Update(new LogMetadataState(T(1), R(2), I(0)));
            metadata.Update(new LogMetadataState(T(5), R(3), I(17)));
        }

        using var reopened = LogMetadata.Open(Path_);
        Assert.Equal(new LogMetadataState(T(5), R(3), I(17)), reopened.State);
    }

    [Fact]
    public void TornNewestSlot_FallsBackToThePreviousState()
    {
        using (var metadata = LogMetadata.Open(Path_))
        {
            metadata.Update(new LogMetadataState(T(4), R(1), I(10))); // sequence 2: slot 0
            metadata.Update(new LogMetadataState(T(6), R(2), I(12))); // sequence 3: slot 1
        }

        // A write of the newest slot torn half-way: its checksum no longer matches.
        var bytes = File.ReadAllBytes(Path_);
        bytes[LogMetadata.SlotSize + 9] ^= 0xFF;
        File.WriteAllBytes(Path_, bytes);
        using (var reopened = LogMetadata.Open(Path_))
        {
            Assert.Equal(new LogMetadataState(T(4), R(1), I(10)), reopened.State);

            // The next update goes to the damaged slot's turn without disturbing the good one.
            reopened.Update(new LogMetadataState(T(7), R(3), I(12)));
        }

        using var again = LogMetadata.Open(Path_);
        Assert.Equal(new LogMetadataState(T(7), R(3), I(12)), again.State);
    }

    [Fact]
    public void BothSlotsCorrupt_IsAnError_NeverABlankState()
    {
        using (var metadata = LogMetadata.Open(Path_))
        {
            metadata.Update(new LogMetadataState(T(9), R(1), I(3)));
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
