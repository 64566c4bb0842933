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

    private const int Queued = 0;
    private const int Sending = 1;
    private const int Failed = 2;
    private int state;

    /// <summary>
    /// True once the writer has claimed the request for the socket: from then on the server may have seen it. Stable
    /// once the request has failed, because sending and failing claim the request atomically and only one wins.
    /// </summary>
    public bool WasSent => Volatile.Read(ref state) == Sending;

    /// <summary>Claims the request for writing; false when it has already failed (it must then not be written).</summary>
    public bool TryMarkSending() => Interlocked.CompareExchange(ref state, Sending, Queued) == Queued;

    /// <summary>Marks a request that was never written as failed, so the writer can no longer send it.</summary>
    public void MarkFailed() => Interlocked.CompareExchange(ref state, Failed, Queued);
}
