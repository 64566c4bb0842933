using System.Globalization;

namespace FastSmr.Verification;

/// <summary>
/// The sequential specification of one key: its state is its value (null when absent). An Increment on a value that is
/// not a decimal integer leaves it unchanged and reports no value (the store's type mismatch).
/// </summary>
public static class KvModel
{
    /// <summary>
    /// Applies <paramref name="operation"/> to <paramref name="state"/>. For an Ok operation, returns false when the
    /// recorded output is impossible in that state; an Unknown operation's output is unconstrained.
    /// </summary>
    public static bool Step(string? state, KvOperation operation, out string? next)
    {
        ArgumentNullException.ThrowIfNull(operation);
        var unknown = operation.Status == OperationStatus.Unknown;
        switch (operation.Kind)
        {
            case KvOperationKind.Put:
                next = operation.Value;
                return true;
            case KvOperationKind.Get:
                next = state;
                return unknown || string.Equals(operation.OutputValue, state, StringComparison.Ordinal);
            case KvOperationKind.Delete:
                next = null;
                return unknown || operation.OutputFlag == (state is not null);
            case KvOperationKind.CompareAndSet:
                var matches = operation.Expected is null
                    ? state is null
                    : string.Equals(state, operation.Expected, StringComparison.Ordinal);
                next = matches ? operation.Value : state;
                return unknown || operation.OutputFlag == matches;
            case KvOperationKind.Increment:
                long current = 0;
                if (state is not null && !long.TryParse(state, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out current))
                {
                    next = state;
                    return unknown || operation.OutputValue is null;
                }

                next = unchecked(current + operation.Delta).ToString(CultureInfo.InvariantCulture);
                return unknown || string.Equals(operation.OutputValue, next, StringComparison.Ordinal);
            default:
                next = state;
                return false;
        }
    }
}
