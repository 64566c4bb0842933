namespace FastSmr.Verification;

/// <summary>What the client learned about an operation.</summary>
public enum OperationStatus
{
    /// <summary>It took effect, with the recorded output.</summary>
    Ok,

    /// <summary>It certainly did not take effect (refused before it was appended); the checker ignores it.</summary>
    Fail,

    /// <summary>No answer (timeout, crash): it may or may not have taken effect, at any time after its invocation.</summary>
    Unknown,
}
