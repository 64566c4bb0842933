using System.Buffers;
using System.Net.Security;
using System.Net.Sockets;
using FastSmr.Security;

namespace FastSmr.Native;

/// <summary>
/// TLS for an outgoing peer connection without giving up its write-through: after the handshake, <see cref="SslStream"/>
/// encrypts into a buffer (its inner stream only collects), and <see cref="PeerConnection"/> sends that buffer with the
/// same non-blocking <c>send</c> as plaintext. The thread driving the core never blocks on a full socket, TLS or not.
/// </summary>
/// <remarks>Not thread-safe: only the holder of the connection's sender role seals, as only it sends.</remarks>
internal sealed class TlsSealer : IDisposable
{
    private readonly Collector collector;
    private readonly SslStream stream;

    private TlsSealer(Collector collector, SslStream stream)
    {
        this.collector = collector;
        this.stream = stream;
    }

    /// <summary>The encrypted bytes sealed since the last <see cref="Reset"/>.</summary>
    public ReadOnlyMemory<byte> Sealed => collector.Output.WrittenMemory;

    /// <summary>How many sealed bytes wait to be sent (read by other threads as an estimate).</summary>
    public int SealedCount => collector.Output.WrittenCount;

    /// <summary>Handshakes as a client on <paramref name="socket"/>, requiring member <paramref name="peer"/>'s certificate.</summary>
    public static async Task<TlsSealer> ConnectAsync(Socket socket, TlsCredentials credentials, ReplicaId peer, CancellationToken token)
    {
        var collector = new Collector(new NetworkStream(socket, ownsSocket: false));
        var stream = await credentials.ConnectAsync(collector, peer, token).ConfigureAwait(false);
        collector.Collecting = true;
        return new TlsSealer(collector, stream);
    }

    /// <summary>Encrypts <paramref name="plain"/> onto <see cref="Sealed"/>.</summary>
    public void Seal(ReadOnlySpan<byte> plain)
    {
        if (!plain.IsEmpty)
        {
            stream.Write(plain);
        }
    }

    /// <summary>Forgets what was sent.</summary>
    public void Reset()
    {
        var output = collector.Output;
        PeerConnection.Reset(ref output);
        collector.Output = output;
    }

    public void Dispose() => stream.Dispose();

    /// <summary>Passes the handshake through to the socket; once <see cref="Collecting"/>, keeps what is written.</summary>
    private sealed class Collector(NetworkStream network) : Stream
    {
        public ArrayBufferWriter<byte> Output { get; set; } = new(64 * 1024);

        public bool Collecting { get; set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => network.Read(buffer, offset, count);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            network.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            network.ReadAsync(buffer, offset, count, cancellationToken);

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (Collecting)
            {
                Output.Write(buffer);
            }
            else
            {
                network.Write(buffer);
            }
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!Collecting)
            {
                return network.WriteAsync(buffer, cancellationToken);
            }

            Output.Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
            if (!Collecting)
            {
                network.Flush();
            }
        }

        public override Task FlushAsync(CancellationToken cancellationToken) =>
            Collecting ? Task.CompletedTask : network.FlushAsync(cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                network.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
