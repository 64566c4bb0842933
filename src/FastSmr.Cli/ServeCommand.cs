using System.CommandLine;
using System.Runtime.InteropServices;
using FastSmr.Engine;
using FastSmr.Server;
using Microsoft.Extensions.Logging;

namespace FastSmr.Cli;

/// <summary><c>fastsmr serve</c>: runs one replica until SIGTERM or Ctrl-C.</summary>
internal static partial class ServeCommand
{
    public static Command Build()
    {
        var o = new ServeOptions();
        var command = new Command("serve", "run one replica");
        o.AddTo(command);
        command.SetAction(
            async (result, token) =>
            {
                ServerOptions options;
                try
                {
                    options = o.Read(result);
                }
                catch (Exception e) when (e is FormatException or IOException or System.Text.Json.JsonException or ArgumentException)
                {
                    return await CommonOptions.UsageErrorAsync("serve", e.Message).ConfigureAwait(false);
                }

                return await RunAsync(
                        options,
                        result.GetValue(o.LogLevel),
                        result.GetValue(o.DotNextLogLevel),
                        result.GetValue(o.ExitWithParent),
                        token
                    )
                    .ConfigureAwait(false);
            }
        );
        return command;
    }

    public static async Task<int> RunAsync(
        ServerOptions options,
        LogLevel logLevel,
        LogLevel dotnextLogLevel,
        bool exitWithParent,
        CancellationToken token
    )
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

        using var loggerFactory = CreateLoggerFactory(logLevel, dotnextLogLevel);
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
            await Console
                .Error.WriteLineAsync(
                    "fastsmr serve: WARNING: injecting bug '"
                        + options.InjectBug
                        + "' on purpose (test only: this replica breaks linearizability)"
                )
                .ConfigureAwait(false);
        }

        if (exitWithParent)
        {
            _ = WatchParentAsync(stop);
        }

        await ServeUntilStoppedAsync(options, loggerFactory, stop.Token).ConfigureAwait(false);
        return 0;
    }

    /// <summary>Runs the replica until <paramref name="stop"/> is cancelled, then stops it cleanly.</summary>
    private static async Task ServeUntilStoppedAsync(ServerOptions options, ILoggerFactory loggerFactory, CancellationToken stop)
    {
        var server = new ReplicaServer(options, loggerFactory: loggerFactory);
        await using (server.ConfigureAwait(false))
        {
            await server.StartAsync(stop).ConfigureAwait(false);
            var endPoints = FormattableString.Invariant($"clients on {options.Self.Client}, peers on {options.Self.Raft}");
            var mode = Testing.Names.Of(options.Backend) + ", " + Testing.Names.Of(options.Durability);
            await Console
                .Out.WriteLineAsync(FormattableString.Invariant($"fastsmr replica {options.Id} ready: {endPoints}, {mode}"))
                .ConfigureAwait(false);
            try
            {
                await Task.Delay(Timeout.Infinite, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) { }

            await Console.Out.WriteLineAsync("fastsmr replica stopping").ConfigureAwait(false);
            await server.StopAsync().ConfigureAwait(false);
        }
    }

    private static ILoggerFactory CreateLoggerFactory(LogLevel logLevel, LogLevel dotnextLogLevel) =>
        LoggerFactory.Create(builder =>
            builder
                .SetMinimumLevel(logLevel)
                .AddFilter("DotNext", dotnextLogLevel)
                .AddSimpleConsole(o =>
                {
                    o.SingleLine = true;
                    o.TimestampFormat = "HH:mm:ss.fff ";
                })
        );

    /// <summary>
    /// Stops the replica when the process that started it is gone (the parent id changes once this process is
    /// re-parented), so a harness killed with SIGKILL leaves no replica behind.
    /// </summary>
    private static async Task WatchParentAsync(CancellationTokenSource stop)
    {
        var parent = GetParentProcessId();
        while (!stop.IsCancellationRequested)
        {
            await Task.Delay(250, CancellationToken.None).ConfigureAwait(false);
            if (GetParentProcessId() != parent)
            {
                await Console.Error.WriteLineAsync("fastsmr serve: the parent process exited; stopping").ConfigureAwait(false);
                await stop.CancelAsync().ConfigureAwait(false);
                return;
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "getppid")]
    private static partial int GetParentProcessId();
}
