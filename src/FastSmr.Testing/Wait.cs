using System.Diagnostics;
using System.Globalization;

namespace FastSmr.Testing;

/// <summary>
/// Waiting for a condition instead of sleeping: every wait has a deadline and says what it waited for, and a wait that
/// succeeds returns how long it took, so a test can report the time it measured.
/// </summary>
public static class Wait
{
    /// <summary>How often a condition is checked unless the caller says otherwise.</summary>
    public static readonly TimeSpan DefaultPoll = TimeSpan.FromMilliseconds(20);

    /// <summary>Waits until <paramref name="condition"/> holds; returns how long that took.</summary>
    /// <exception cref="TimeoutException">It did not hold within <paramref name="timeout"/>; the message says what was awaited.</exception>
    public static Task<TimeSpan> UntilAsync(Func<bool> condition, TimeSpan timeout, string what, TimeSpan? poll = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        return UntilAsync(() => Task.FromResult(condition()), timeout, what, poll);
    }

    /// <summary>Waits until the asynchronous <paramref name="condition"/> holds; returns how long that took.</summary>
    /// <exception cref="TimeoutException">It did not hold within <paramref name="timeout"/>; the message says what was awaited.</exception>
    public static async Task<TimeSpan> UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, TimeSpan? poll = null)
    {
        if (await TryUntilAsync(condition, timeout, poll).ConfigureAwait(false) is { } elapsed)
        {
            return elapsed;
        }

        throw new TimeoutException(
            string.Create(CultureInfo.InvariantCulture, $"timed out after {timeout.TotalSeconds:0.###} s waiting until {what}")
        );
    }

    /// <summary>
    /// Waits until <paramref name="condition"/> holds; how long that took, or null when it did not within
    /// <paramref name="timeout"/>.
    /// </summary>
    public static async Task<TimeSpan?> TryUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, TimeSpan? poll = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var watch = Stopwatch.StartNew();
        while (true)
        {
            if (await condition().ConfigureAwait(false))
            {
                return watch.Elapsed;
            }

            if (watch.Elapsed >= timeout)
            {
                return null;
            }

            await Task.Delay(poll ?? DefaultPoll).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Waits until <paramref name="probe"/> returns a value; returns it, or the default when it did not within
    /// <paramref name="timeout"/>.
    /// </summary>
    public static async Task<T?> ForAsync<T>(Func<Task<T?>> probe, TimeSpan timeout, TimeSpan? poll = null)
        where T : struct
    {
        ArgumentNullException.ThrowIfNull(probe);
        T? found = null;
        await TryUntilAsync(async () => (found = await probe().ConfigureAwait(false)) is not null, timeout, poll).ConfigureAwait(false);
        return found;
    }

    /// <summary>
    /// Checks that <paramref name="invariant"/> holds throughout <paramref name="duration"/> (every poll), for what must
    /// not happen during a window, such as an election that a rule forbids.
    /// </summary>
    /// <exception cref="InvalidOperationException">It stopped holding; the message says what and when.</exception>
    public static async Task HoldsForAsync(Func<bool> invariant, TimeSpan duration, string what, TimeSpan? poll = null)
    {
        ArgumentNullException.ThrowIfNull(invariant);
        if (await TryUntilAsync(() => Task.FromResult(!invariant()), duration, poll).ConfigureAwait(false) is { } brokenAfter)
        {
            throw new InvalidOperationException(
                string.Create(CultureInfo.InvariantCulture, $"after {brokenAfter.TotalMilliseconds:F0} ms it no longer held that {what}")
            );
        }
    }
}
