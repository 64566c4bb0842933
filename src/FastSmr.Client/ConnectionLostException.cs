namespace FastSmr.Client;

/// <summary>The connection failed while a request was outstanding.</summary>
public sealed class ConnectionLostException : IOException
{
    /// <summary>Creates the exception.</summary>
    public ConnectionLostException() { }

    /// <summary>Creates the exception with a message.</summary>
    public ConnectionLostException(string message)
        : base(message) { }

    /// <summary>Creates the exception with a message and a cause.</summary>
    public ConnectionLostException(string message, Exception innerException)
        : base(message, innerException) { }
}
