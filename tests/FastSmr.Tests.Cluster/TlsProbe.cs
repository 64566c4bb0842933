using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using FastSmr.Core.Protocol;
using FastSmr.Security;

namespace FastSmr.Tests;

/// <summary>Connections made by hand to a TLS port, as an attacker or a misconfigured peer would make them.</summary>
internal static class TlsProbe
{
    /// <summary>
    /// Connects to <paramref name="target"/> (with TLS when <paramref name="credentials"/> is given), sends
    /// <paramref name="payload"/>, and reports whether the server closed the connection (or failed the handshake) within
    /// <paramref name="patience"/>. A connection the server keeps open and silent counts as not refused.
    /// </summary>
    public static async Task<bool> IsRefusedAsync(IPEndPoint target, TlsCredentials? credentials, byte[] payload, TimeSpan patience)
    {
        using var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(target);
        using var timeout = new CancellationTokenSource(patience);
        Stream stream = new NetworkStream(socket, ownsSocket: false);
        try
        {
            if (credentials is not null)
            {
                stream = await HandshakeAsync(stream, credentials, timeout.Token);
            }

            await stream.WriteAsync(payload, timeout.Token);
            var buffer = new byte[4096];
            while (true)
            {
                if (await stream.ReadAsync(buffer, timeout.Token) == 0)
                {
                    return true;
                }
            }
        }
        catch (OperationCanceledException)
        {
            return false; // still open, still silent
        }
        catch (Exception e) when (e is IOException or AuthenticationException or SocketException)
        {
            return true;
        }
        finally
        {
            await stream.DisposeAsync();
        }
    }

    /// <summary>
    /// The client side of a handshake as an attacker makes it: presents <paramref name="credentials"/>' certificate and
    /// accepts any server, so that what is tested is whether the server refuses the certificate.
    /// </summary>
    private static async Task<SslStream> HandshakeAsync(Stream inner, TlsCredentials credentials, CancellationToken token)
    {
        var stream = new SslStream(inner, leaveInnerStreamOpen: false);
        await stream.AuthenticateAsClientAsync(
            new SslClientAuthenticationOptions
            {
                TargetHost = "member-1.fastsmr",
                ClientCertificates = [credentials.Certificate],
#pragma warning disable CA5359 // an attacker does not care who the server is: what is tested is the server's refusal
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
#pragma warning restore CA5359
            },
            token
        );
        return stream;
    }

    /// <summary>
    /// A client-port connection with <paramref name="credentials"/>: the Hello, then <paramref name="frames"/>; the statuses
    /// of the first <paramref name="replies"/> replies after the HelloReply, or null when the server closed the connection
    /// instead.
    /// </summary>
    public static async Task<List<SubmitStatus>?> ClientExchangeAsync(IPEndPoint target, TlsCredentials credentials, byte[] frames, int replies)
    {
        using var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(target);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await using var stream = await HandshakeAsync(new NetworkStream(socket, ownsSocket: false), credentials, timeout.Token);
            await stream.WriteAsync(RawClientFrames.Hello(credentials.ClusterId), timeout.Token);
            await stream.WriteAsync(frames, timeout.Token);
            var buffer = new byte[1 << 16];
            var filled = 0;
            while (true)
            {
                var read = await stream.ReadAsync(buffer.AsMemory(filled), timeout.Token);
                if (read == 0)
                {
                    return null;
                }

                filled += read;
                var sequence = new ReadOnlySequence<byte>(buffer, 0, filled);
                var statuses = new List<SubmitStatus>();
                while (FrameCodec.TryReadFrame(ref sequence, 1 << 16, out var header, out _))
                {
                    if (header.Type != FrameType.HelloReply)
                    {
                        statuses.Add(header.Status);
                    }
                }

                if (statuses.Count >= replies)
                {
                    return statuses;
                }
            }
        }
        catch (Exception e) when (e is IOException or AuthenticationException or SocketException)
        {
            return null;
        }
    }
}
