using System.Globalization;
using System.Text.Json;

namespace FastSmr.Testing.Load;

/// <summary>What <c>bench floor --json FILE</c> measured: the physical floor one durable 3-replica commit cannot beat.</summary>
/// <param name="CommitFloorUsP50">Client round trip + max(leader fdatasync, follower round trip + follower fdatasync), p50.</param>
/// <param name="RttUsP50">Loopback round trip between two processes, blocking, p50.</param>
/// <param name="FdatasyncUsP50">4 KiB overwrite + fdatasync, p50.</param>
/// <param name="MeasuredAt">When it was measured.</param>
public sealed record CommitFloor(double CommitFloorUsP50, double RttUsP50, double FdatasyncUsP50, string MeasuredAt)
{
    /// <summary>Reads the floor file; throws <see cref="ArgumentException"/> with the reason when it is not one.</summary>
    public static CommitFloor Read(string path)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            var root = document.RootElement;
            return new CommitFloor(
                root.GetProperty("commit_floor_us_p50").GetDouble(),
                root.GetProperty("rtt_us").GetProperty("p50").GetDouble(),
                root.GetProperty("fdatasync_4k_us").GetProperty("p50").GetDouble(),
                root.TryGetProperty("measured_at", out var at) ? at.GetString() ?? "" : ""
            );
        }
        catch (Exception e) when (e is IOException or JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new ArgumentException("--floor " + path + ": not the JSON of `bench floor --json` (" + e.Message + ")", e);
        }
    }

    /// <summary>The ratio of <paramref name="p50Us"/> to the commit floor.</summary>
    public double Ratio(long p50Us) => p50Us / CommitFloorUsP50;

    /// <summary>For the table.</summary>
    public string Describe(long p50Us) =>
        string.Create(CultureInfo.InvariantCulture, $"{Ratio(p50Us):F2}x the commit floor of {CommitFloorUsP50:F0} us");
}
