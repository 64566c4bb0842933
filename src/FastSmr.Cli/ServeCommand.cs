using System.Runtime.InteropServices;
using FastSmr.Engine;
using FastSmr.Server;
using Microsoft.Extensions.Logging;

namespace FastSmr.Cli;

/// <summary><c>fastsmr serve</c>: runs one replica until SIGTERM or Ctrl-C.</summary>
internal static class ServeCommand
{
    public static async Task<int> RunAsync(ServerOptions options, LogLevel logLevel, LogLevel dotnextLogLevel, CancellationToken token)
    {
        try
        {
            options.Validate();
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidOperationException)
        {
            await Console.Error.WriteLineAsync("fastsmr serve: bad configuration: " + e.Message).ConfigureAwait(false);
            return 2;
        }

        using var loggerFactory = LoggerFactory.Create(builder => builder
            .SetMinimumLevel(logLevel)
            .AddFilter("DotNext", dotnextLogLevel)
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            }));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(token);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            stop.Cancel();
        });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
        {
            context.Cancel = true;
            stop.Cancel();
        });

        if (options.InjectBug is not null)
        {
            await Console.Error.WriteLineAsync("fastsmr serve: WARNING: injecting bug '" + options.InjectBug + "' on purpose (test only: this replica breaks linearizability)").ConfigureAwait(false);
        }

        var server = new ReplicaServer(options, loggerFactory: loggerFactory);
        await using (server.ConfigureAwait(false))
        {
            await server.StartAsync(stop.Token).ConfigureAwait(false);
            await Console.Out.WriteLineAsync(FormattableString.Invariant($"fastsmr replica {options.Id} ready: clients on {options.Self.Client}, peers on {options.Self.Raft}, {options.Backend}, {options.Durability.ToString().ToLowerInvariant()}")).ConfigureAwait(false);
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            await Console.Out.WriteLineAsync("fastsmr replica stopping").ConfigureAwait(false);
            await server.StopAsync().ConfigureAwait(false);
        }

        return 0;
    }

    public static DurabilityMode ParseDurability(string text) => text.ToUpperInvariant() switch
    {
        "DURABLE" => DurabilityMode.Durable,
        "MEMORY" => DurabilityMode.Memory,
        _ => throw new FormatException("durability must be 'durable' or 'memory', not '" + text + "'"),
    };
}
