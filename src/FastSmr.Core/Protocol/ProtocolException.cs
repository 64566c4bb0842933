namespace FastSmr.Core.Protocol;

/// <summary>The peer violated the client protocol. The connection is answered with an error frame and closed.</summary>
public sealed class ProtocolException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ProtocolException() { }

    /// <summary>Creates the exception with a message.</summary>
    public ProtocolException(string message)
        : base(message) { }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public ProtocolException(string message, Exception innerException)
        : base(message, innerException) { }
}
