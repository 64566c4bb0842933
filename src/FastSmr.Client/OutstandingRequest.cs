namespace FastSmr.Client;

/// <summary>A request written (or about to be written) on a connection, waiting for its reply.</summary>
internal sealed class OutstandingRequest
{
    public OutstandingRequest(ulong requestId, byte[] frame, int frameLength)
    {
        RequestId = requestId;
        Frame = frame;
        FrameLength = frameLength;
    }

    public ulong RequestId { get; }

    /// <summary>The encoded frame, rented from the shared pool; returned by the writer once written.</summary>
    public byte[] Frame { get; }

    public int FrameLength { get; }

    public TaskCompletionSource<ClientReply> Reply { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Set by the writer before the frame reaches the socket: from then on the server may have seen it.</summary>
    public volatile bool Sent;
}
