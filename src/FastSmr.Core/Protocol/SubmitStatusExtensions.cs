namespace FastSmr.Core.Protocol;

/// <summary>Classifies <see cref="SubmitStatus"/> values.</summary>
public static class SubmitStatusExtensions
{
    /// <summary>True when the status guarantees the command was not appended, so a retry cannot apply it twice.</summary>
    public static bool IsNotAppended(this SubmitStatus status) =>
        status is SubmitStatus.NotLeader or SubmitStatus.Busy or SubmitStatus.Rejected or SubmitStatus.Timeout or SubmitStatus.Unavailable;
}
