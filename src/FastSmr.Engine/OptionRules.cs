using System.Globalization;

namespace FastSmr.Engine;

/// <summary>
/// Checks for configuration values that fail with one line naming the field and the rule, e.g.
/// "Engine.BatchBytesMax: must be 4096..67108864 (got 0)". Every limit has an upper bound too, so that the sums and
/// products the code forms from limits (a buffer of twice a limit, a limit times the connections) cannot overflow.
/// </summary>
public static class OptionRules
{
    /// <summary>Throws unless <paramref name="min"/> ≤ <paramref name="value"/> ≤ <paramref name="max"/>.</summary>
    public static void Range(string field, long value, long min, long max)
    {
        if (value < min || value > max)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{field}: must be {min}..{max} (got {value})"), field);
        }
    }

    /// <summary>Throws unless <paramref name="value"/> lies in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static void Range(string field, TimeSpan value, TimeSpan min, TimeSpan max)
    {
        if (value < min || value > max)
        {
            throw new ArgumentException(
                string.Create(CultureInfo.InvariantCulture, $"{field}: must be {min:c}..{max:c} (got {value:c})"),
                field
            );
        }
    }

    /// <summary>Throws with "<paramref name="field"/>: <paramref name="rule"/>" unless <paramref name="holds"/>.</summary>
    public static void That(bool holds, string field, string rule)
    {
        if (!holds)
        {
            throw new ArgumentException(field + ": " + rule, field);
        }
    }
}
