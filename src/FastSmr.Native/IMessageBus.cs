using FastSmr.Raft;

namespace FastSmr.Native;

/// <summary>
/// How a <see cref="NativeReplica"/> reaches its peers: production is the <see cref="PeerTransport"/>; a simulator plugs
/// in a simulated network. Sends are called only by the thread driving the core and never block; what arrives goes to
/// the replica's <see cref="NativeReplica.Receive"/>, <see cref="NativeReplica.Kick"/> and
/// <see cref="NativeReplica.ReceiveSnapshot"/>. Delivery is best effort: Raft retries what is lost.
/// </summary>
public interface IMessageBus : IAsyncDisposable
{
    /// <summary>Messages dropped because their peer was unreachable or too far behind.</summary>
    long Dropped { get; }

    /// <summary>Starts listening and connecting; nothing arrives before this.</summary>
    void Start();

    /// <summary>Queues <paramref name="message"/> for its recipient; <see cref="Flush"/> sends what was queued.</summary>
    void Send(Message message);

    /// <summary>
    /// Streams <paramref name="snapshot"/> to the message's recipient, on its own connection. A file that no longer
    /// verifies is not sent: the bus calls <see cref="NativeReplica.SnapshotDamaged"/> instead.
    /// </summary>
    void SendSnapshot(Message message, SnapshotHeader snapshot);

    /// <summary>Sends everything queued since the last call.</summary>
    void Flush();

    /// <summary>Opens a connection to every peer that has none (paced), so that hellos flow before any message does.</summary>
    void EnsureConnected();
}
