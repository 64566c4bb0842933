namespace FastSmr.Testing.Fuzz;

/// <summary>
/// A decoder that reads bytes from outside the process, with valid inputs to mutate from and the exceptions that mean
/// "refused cleanly". Any other exception is a crash.
/// </summary>
/// <param name="Name">The target's name (<c>fastsmr fuzz --target NAME</c>).</param>
/// <param name="Seeds">Valid encodings the mutations start from.</param>
/// <param name="Decode">Runs the decoder on one input.</param>
/// <param name="Refusal">Whether an exception is the decoder's clean refusal of bad input.</param>
public sealed record FuzzTarget(string Name, IReadOnlyList<byte[]> Seeds, Action<byte[]> Decode, Func<Exception, bool> Refusal);

/// <summary>What one fuzzing run found.</summary>
/// <param name="Target">The target.</param>
/// <param name="Inputs">Inputs run.</param>
/// <param name="Refused">Inputs the decoder refused cleanly (an expected exception).</param>
/// <param name="Crashes">Inputs that threw anything else, with the first few kept.</param>
/// <param name="SlowestMicros">The longest single decode, in µs (a hang shows here, or as a run that never ends).</param>
/// <param name="Seconds">Wall time.</param>
/// <param name="PeakWorkingSetBytes">The process's peak working set when the run ended.</param>
public sealed record FuzzReport(
    string Target,
    long Inputs,
    long Refused,
    IReadOnlyList<(byte[] Input, string Error)> Crashes,
    long SlowestMicros,
    double Seconds,
    long PeakWorkingSetBytes
)
{
    /// <summary>How many inputs crashed (only the first few are kept in <see cref="Crashes"/>).</summary>
    public long CrashCount { get; init; }

    /// <summary>One line of results, then one line per kept crash with its input in hex.</summary>
    public string Describe()
    {
        var text = string.Create(
            System.Globalization.CultureInfo.InvariantCulture,
            $"{Target}: {Inputs:N0} inputs in {Seconds:F1} s, {Refused:N0} refused cleanly, {CrashCount} crashes, "
                + $"slowest {SlowestMicros} µs, peak working set {PeakWorkingSetBytes >> 20} MiB"
        );
        return Crashes.Aggregate(text, (all, c) => all + "\n  crash: " + c.Error + " on " + Convert.ToHexString(c.Input));
    }

    /// <summary>Writes <paramref name="reports"/> as JSON (crashing inputs in hex).</summary>
    public static Task WriteJsonAsync(string path, IEnumerable<FuzzReport> reports, ulong seed, CancellationToken token)
    {
        var rows = reports.Select(r => new
        {
            r.Target,
            r.Inputs,
            r.Refused,
            r.CrashCount,
            r.SlowestMicros,
            r.Seconds,
            r.PeakWorkingSetBytes,
            Crashes = r.Crashes.Select(c => new { c.Error, Input = Convert.ToHexString(c.Input) }),
        });
        return File.WriteAllTextAsync(path, System.Text.Json.JsonSerializer.Serialize(new { seed, targets = rows }), token);
    }
}
