using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace FastSmr.Testing.Clusters;

/// <summary>Free TCP ports on 127.0.0.1 for replicas, proxies and test servers.</summary>
public static class FreePorts
{
    private static readonly HashSet<int> HandedOut = [];

    /// <summary>
    /// A free TCP port on 127.0.0.1 (bound and released; the caller binds it again soon after), taken below Linux's
    /// ephemeral range (32768–60999 by default): the kernel hands ephemeral ports to every outgoing connection and to
    /// every listener bound to port 0 (the chaos proxies), so a port released in that range can be taken by one of
    /// them before the replica that was meant to listen on it starts.
    /// </summary>
    public static int Next()
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var port = Random.Shared.Next(20_000, 32_000);
            lock (HandedOut)
            {
                // Never the same port twice from this process: each is released at once and bound later.
                if (!HandedOut.Add(port))
                {
                    continue;
                }
            }

            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
                return port;
            }
            catch (SocketException) { }
        }

        using var fallback = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        fallback.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)fallback.LocalEndPoint!).Port;
    }

    /// <summary>"127.0.0.1:port" with a port from <see cref="Next"/>.</summary>
    public static string LoopbackEndPoint() => "127.0.0.1:" + Next().ToString(CultureInfo.InvariantCulture);
}
