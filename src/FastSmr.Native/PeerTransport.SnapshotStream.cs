using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using FastSmr.Raft;
using Microsoft.Extensions.Logging;

namespace FastSmr.Native;

// Snapshots on connections of their own: streaming a snapshot file to a lagging peer, and receiving one into the staging
// directory, verified before the core may install it.
internal sealed partial class PeerTransport
{
    /// <summary>Streams snapshot file <paramref name="path"/> to peer <paramref name="id"/> on a connection of its own.</summary>
    internal async Task SendSnapshotFileAsync(int id, IPEndPoint dial, Message message, string path)
    {
        var token = stopping.Token;
        try
        {
            // Checked before it leaves: a file damaged on this disk would be refused by every follower, forever, and
            // leave a lagging one behind for good (found by the whole-system simulator, seed 1234). A new one is taken.
            SnapshotFile.Verify(path);
        }
        catch (InvalidDataException e)
        {
            NativeLog.SnapshotDamaged(logger, message.Index.Value, id, e.Message);
            SnapshotDamaged?.Invoke(message.Index.Value);
            return;
        }
        catch (IOException)
        {
            // Gone or unreadable (deleted by a newer snapshot): the stream below reports it.
        }

        try
        {
            using var socket = new Socket(dial.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
            timeout.CancelAfter(SnapshotConnectTimeout);
            await socket.ConnectAsync(dial, timeout.Token).ConfigureAwait(false);
            using var file = new FileStream(
                path,
                FileMode.Open,
                FileAccess.Read,
                FileShare.Read | FileShare.Delete,
                1 << 16,
                useAsync: false
            );
            var header = new ArrayBufferWriter<byte>();
            WireFormat.WriteHello(header.GetSpan(WireFormat.HelloSize), WireFormat.KindSnapshot, options.ClusterId, self);
            header.Advance(WireFormat.HelloSize);
            WireFormat.Write(header, message);
            BinaryPrimitives.WriteInt64LittleEndian(header.GetSpan(8), file.Length);
            header.Advance(8);
            Stream stream = new NetworkStream(socket, ownsSocket: false);
            if (options.Tls is { } tls)
            {
                stream = await tls.ConnectAsync(stream, new ReplicaId((uint)id), timeout.Token).ConfigureAwait(false);
            }

            await using var closing = stream.ConfigureAwait(false);
            await stream.WriteAsync(header.WrittenMemory, token).ConfigureAwait(false);
            await file.CopyToAsync(stream, 1 << 16, token).ConfigureAwait(false);
            await stream.FlushAsync(token).ConfigureAwait(false);
            if (stream is SslStream secured)
            {
                await secured.ShutdownAsync().ConfigureAwait(false); // close_notify: the end of the file is authenticated too
            }

            socket.Shutdown(SocketShutdown.Send);
            NativeLog.SnapshotSent(logger, message.Index.Value, id, file.Length);
        }
        catch (Exception e)
            when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or AuthenticationException)
        {
            NativeLog.SnapshotFailed(logger, message.Index.Value, id, e.Message);
        }
    }

    /// <summary>
    /// Receives one snapshot: the Snapshot message and the file's length, then the file into the staging directory, which
    /// is verified (CRC, and the index and term the message names) before the core may install it.
    /// </summary>
    private async Task ReceiveSnapshotAsync(PipeReader reader, int from, CancellationToken token)
    {
        using var stall = new Stall(token);
        stall.Arm(partial: true); // the preamble, then every read of the file, must come within StallMax
        if (await ReadSnapshotPreambleAsync(reader, stall).ConfigureAwait(false) is not { } preamble)
        {
            return;
        }

        var (message, length) = preamble;
        if (
            message.Type != MessageType.Snapshot
            || message.From != new ReplicaId((uint)from)
            || length < SnapshotFile.FixedHeaderSize
            || length > options.SnapshotBytesMax
        )
        {
            throw new InvalidDataException(
                "a snapshot stream must start with a Snapshot message and a length in ["
                    + SnapshotFile.FixedHeaderSize
                    + ", "
                    + options.SnapshotBytesMax
                    + "], got "
                    + message.Type
                    + " and "
                    + length
            );
        }

        if (!snapshotReceptions.Wait(0, CancellationToken.None))
        {
            throw new InvalidDataException("more than " + SnapshotReceptionsMax + " snapshot streams at once");
        }

        try
        {
            await StageSnapshotAsync(reader, from, message, length, token).ConfigureAwait(false);
        }
        finally
        {
            snapshotReceptions.Release();
        }
    }

    /// <summary>Receives a snapshot file into the staging directory, checks it, and hands it over (or deletes it).</summary>
    private async Task StageSnapshotAsync(PipeReader reader, int from, Message message, long length, CancellationToken token)
    {
        using var stall = new Stall(token);
        stall.Arm(partial: true);
        var staged = Path.Combine(stagingDirectory, "incoming-" + from + "-" + Interlocked.Increment(ref stagingCounter) + ".tmp");
        var accepted = false;
        try
        {
            await CopyToFileAsync(reader, staged, length, stall).ConfigureAwait(false);
            var header = SnapshotFile.Verify(staged);
            if (header.Index != message.Index.Value || header.Term != message.LogTerm.Value)
            {
                throw new InvalidDataException(
                    "the snapshot file covers ("
                        + header.Index
                        + ", "
                        + header.Term
                        + ") but the message says ("
                        + message.Index
                        + ", "
                        + message.LogTerm
                        + ")"
                );
            }

            accepted = snapshotReceived(message, header);
        }
        finally
        {
            if (!accepted)
            {
                SnapshotFile.TryDelete(staged);
            }
        }
    }

    /// <summary>The stream's first message and the snapshot file's length; null when the stream ends before them.</summary>
    private static async Task<(Message Message, long Length)?> ReadSnapshotPreambleAsync(PipeReader reader, Stall stall)
    {
        while (true)
        {
            var result = await stall.ReadAsync(reader).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (WireFormat.TryRead(ref buffer, out var message) && buffer.Length >= 8)
            {
                var length = ReadInt64(buffer.Slice(0, 8));
                reader.AdvanceTo(buffer.GetPosition(8));
                return (message!, length);
            }

            // Not all there yet: nothing consumed, everything examined, read again.
            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            if (result.IsCompleted)
            {
                return null;
            }
        }
    }

    /// <summary>Copies exactly <paramref name="length"/> bytes of the stream into a new file at <paramref name="path"/>.</summary>
    private static async Task CopyToFileAsync(PipeReader reader, string path, long length, Stall stall)
    {
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: false);
        var remaining = length;
        while (remaining > 0)
        {
            var result = await stall.ReadAsync(reader).ConfigureAwait(false);
            stall.Arm(partial: true);
            var take = result.Buffer.Length < remaining ? result.Buffer : result.Buffer.Slice(0, remaining);
            foreach (var segment in take)
            {
                file.Write(segment.Span);
            }

            remaining -= take.Length;
            reader.AdvanceTo(take.End);
            if (remaining > 0 && result.IsCompleted)
            {
                throw new IOException("snapshot stream ended " + remaining + " bytes early");
            }
        }
    }

    private static long ReadInt64(ReadOnlySequence<byte> bytes)
    {
        Span<byte> copy = stackalloc byte[8];
        bytes.CopyTo(copy);
        return BinaryPrimitives.ReadInt64LittleEndian(copy);
    }
}
