using System.Globalization;
using System.Net;

namespace FastSmr.Core;

/// <summary>Parses "host:port" (IPv4, [IPv6] or localhost).</summary>
public static class EndPointParser
{
    /// <summary>Parses an endpoint; throws <see cref="FormatException"/> with the offending text.</summary>
    public static IPEndPoint Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var colon = text.LastIndexOf(':');
        if (
            colon <= 0
            || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port)
            || port is <= 0 or > 65535
        )
        {
            throw new FormatException("bad endpoint '" + text + "': expected host:port");
        }

        var host = text[..colon].Trim('[', ']');
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            return new IPEndPoint(IPAddress.Loopback, port);
        }

        return IPAddress.TryParse(host, out var address)
            ? new IPEndPoint(address, port)
            : throw new FormatException("bad endpoint '" + text + "': host must be an IP address or localhost");
    }
}
