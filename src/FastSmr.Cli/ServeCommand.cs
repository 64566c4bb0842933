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

        // A signal only completes this task: it never touches anything that is disposed when the stop is over, so a
        // SIGTERM that arrives late (or twice) cannot fail the process.
        var stopRequested = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Request);
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Request);
        using var cancelled = token.Register(() => stopRequested.TrySetResult());
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
            _ = WatchParentAsync(stopRequested);
        }

        return await ServeUntilStoppedAsync(options, loggerFactory, stopRequested.Task).ConfigureAwait(false);

        void Request(PosixSignalContext context)
        {
            context.Cancel = true;
            stopRequested.TrySetResult();
        }
    }

    /// <summary>
    /// Runs the replica until a stop is requested (exit code 0 after a clean stop) or its back-end fails for good (the
    /// cause is reported once, the replica stopped, exit code 1 so that a supervisor restarts it).
    /// </summary>
    private static async Task<int> ServeUntilStoppedAsync(ServerOptions options, ILoggerFactory loggerFactory, Task stopRequested)
    {
        ReplicaServer server;
        try
        {
            server = new ReplicaServer(options, loggerFactory: loggerFactory);
        }
        catch (InvalidDataException e)
        {
            await Console.Error.WriteLineAsync("fastsmr serve: refused to start: " + e.Message).ConfigureAwait(false);
            return 2;
        }

        await using (server.ConfigureAwait(false))
        {
            try
            {
                await server.StartAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is InvalidOperationException or InvalidDataException)
            {
                await Console.Error.WriteLineAsync("fastsmr serve: refused to start: " + e.Message).ConfigureAwait(false);
                return 2;
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or UnauthorizedAccessException)
            {
                await Console.Error.WriteLineAsync("fastsmr serve: cannot start: " + e.Message).ConfigureAwait(false);
                return 1;
            }

            var endPoints = FormattableString.Invariant($"clients on {options.Self.Client}, peers on {options.Self.Raft}");
            var mode = Testing.Names.Of(options.Backend) + ", " + Testing.Names.Of(options.Durability);
            mode += options.Certificates is null ? ", INSECURE (plaintext ports)" : ", mutual TLS";
            await Console
                .Out.WriteLineAsync(FormattableString.Invariant($"fastsmr replica {options.Id} ready: {endPoints}, {mode}"))
                .ConfigureAwait(false);
            var failure = server.Failure;
            var ended = await Task.WhenAny(stopRequested, failure).ConfigureAwait(false);
            var exitCode = 0;
            if (ended != stopRequested)
            {
                var cause = await failure.ConfigureAwait(false);
                await Console
                    .Error.WriteLineAsync("fastsmr serve: replica " + options.Id + " failed and stops: " + cause.Message)
                    .ConfigureAwait(false);
                exitCode = 1;
            }

            await Console.Out.WriteLineAsync("fastsmr replica stopping").ConfigureAwait(false);
            await server.StopAsync().ConfigureAwait(false);
            return exitCode;
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
    private static async Task WatchParentAsync(TaskCompletionSource stop)
    {
        var parent = GetParentProcessId();
        while (!stop.Task.IsCompleted)
        {
            await Task.Delay(250, CancellationToken.None).ConfigureAwait(false);
            if (GetParentProcessId() != parent)
            {
                await Console.Error.WriteLineAsync("fastsmr serve: the parent process exited; stopping").ConfigureAwait(false);
                stop.TrySetResult();
                return;
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "getppid")]
    private static partial int GetParentProcessId();
}
