namespace FastSmr.Core.Protocol;

/// <summary>The type of a client protocol frame.</summary>
public enum FrameType : byte
{
    /// <summary>Client → server: protocol version and cluster id. Must be the first frame.</summary>
    Hello = 1,

    /// <summary>Server → client: the answer to <see cref="Hello"/>.</summary>
    HelloReply = 2,

    /// <summary>Client → server: one command record.</summary>
    Submit = 3,

    /// <summary>Server → client: the outcome of a <see cref="Submit"/>.</summary>
    SubmitReply = 4,

    /// <summary>Client → server: a read-only query; the consistency level is in the frame flags.</summary>
    Read = 5,

    /// <summary>Server → client: the outcome of a <see cref="Read"/>.</summary>
    ReadReply = 6,

    /// <summary>Client → server: asks for the replica's status.</summary>
    Status = 7,

    /// <summary>Server → client: replica id, role, term, commit and applied index, digest at the applied index.</summary>
    StatusReply = 8,

    /// <summary>Server → client: a protocol violation; the server closes the connection after it.</summary>
    Error = 9,
}
