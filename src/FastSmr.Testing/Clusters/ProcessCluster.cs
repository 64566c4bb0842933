using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Server;

namespace FastSmr.Testing.Clusters;

/// <summary>
/// Replicas as child processes on 127.0.0.1 with free ports and a temporary data directory. Used by
/// <c>fastsmr demo</c>, the chaos harness and the tests. Every process it starts is stopped by its id; the directory is
/// deleted.
/// </summary>
public sealed partial class ProcessCluster : IReplicaCluster
{
    private readonly ReplicaLauncher launcher;
    private readonly List<Member> members = [];
    private readonly bool keepDirectory;
    private readonly ulong configuredClusterId; // 0: the replicas take it from their certificates (or 1 when insecure)

    /// <summary>Creates (but does not start) a cluster of <paramref name="replicas"/> replicas.</summary>
    /// <param name="replicas">How many replicas.</param>
    /// <param name="launcher">The program and leading arguments that run <c>fastsmr</c>.</param>
    /// <param name="backend">The back-end every replica runs.</param>
    /// <param name="durability">The durability mode every replica runs in.</param>
    /// <param name="clusterId">The cluster id; 0 lets the replicas take it from the certificates (1 when insecure).</param>
    /// <param name="extraServeArguments">Extra arguments for every <c>serve</c> (for example election timeouts).</param>
    /// <param name="keepDirectory">Keep the data directory after disposal (for inspection).</param>
    /// <param name="insecure">Run both ports in plaintext (<c>--insecure</c>) instead of mutual TLS.</param>
    public ProcessCluster(
        int replicas,
        ReplicaLauncher launcher,
        BackendKind backend = BackendKind.DotNext,
        DurabilityMode durability = DurabilityMode.Durable,
        ulong clusterId = 0,
        IReadOnlyList<string>? extraServeArguments = null,
        bool keepDirectory = false,
        bool insecure = false
    )
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(replicas, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(replicas, 9);
        ArgumentNullException.ThrowIfNull(launcher);
        this.launcher = launcher;
        Backend = backend;
        Durability = durability;
        ExtraServeArguments = extraServeArguments ?? [];
        this.keepDirectory = keepDirectory;
        Directory = Path.Combine(
            Path.GetTempPath(),
            "fastsmr-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N")[..8]
        );
        System.IO.Directory.CreateDirectory(Directory);
        Certificates = insecure ? null : ClusterCertificates.Create(Path.Combine(Directory, "certs"), replicas);
        configuredClusterId = clusterId;
        ClusterId = FastSmr.Security.TlsCredentials.ResolveClusterId(clusterId, ((IReplicaCluster)this).ClientTls);
        for (var i = 1; i <= replicas; i++)
        {
            members.Add(new Member(new ReplicaId((uint)i), FreePorts.LoopbackEndPoint(), FreePorts.LoopbackEndPoint()));
        }
    }

    /// <summary>The temporary directory holding every replica's data and log file.</summary>
    public string Directory { get; }

    /// <inheritdoc/>
    public string? Certificates { get; }

    /// <summary>The back-end every replica runs.</summary>
    public BackendKind Backend { get; }

    /// <summary>The durability mode every replica runs in.</summary>
    public DurabilityMode Durability { get; }

    /// <summary>The cluster id.</summary>
    public ulong ClusterId { get; }

    /// <summary>Extra <c>serve</c> arguments.</summary>
    public IReadOnlyList<string> ExtraServeArguments { get; }

    /// <summary>The <c>--members</c> value every replica gets (with the advertised client endpoints).</summary>
    public string MembersArgument => string.Join(',', members.Select(m => m.Id.ToString() + "=" + m.Raft + "/" + m.AdvertisedClient));

    /// <summary>The client endpoints the replicas listen on, in id order (the probes use these, never a proxy).</summary>
    public IReadOnlyList<string> ClientEndPoints => members.ConvertAll(m => m.Client);

    /// <summary>The client endpoints the member list advertises (a proxy's, when one was set), in id order.</summary>
    public IReadOnlyList<string> AdvertisedClientEndPoints => members.Select(m => m.AdvertisedClient).ToArray();

    /// <summary>A replica's canonical Raft endpoint.</summary>
    public string RaftEndPoint(ReplicaId id) => Find(id).Raft;

    /// <summary>A replica's client listen endpoint.</summary>
    public string ClientEndPoint(ReplicaId id) => Find(id).Client;

    /// <summary>
    /// Advertises <paramref name="endPoint"/> as replica <paramref name="id"/>'s client endpoint (it keeps listening on its
    /// own, via <c>--client-listen</c>); takes effect for every replica started afterwards.
    /// </summary>
    public void AdvertiseClientEndPoint(ReplicaId id, string endPoint) => Find(id).AdvertisedClient = endPoint;

    /// <summary>Extra <c>serve</c> arguments for one replica only (for example its peer routes).</summary>
    public void SetReplicaArguments(ReplicaId id, IReadOnlyList<string> arguments) => Find(id).ExtraArguments = arguments;

    /// <summary>Whether the replica's process is running (paused counts as running).</summary>
    public bool IsRunning(ReplicaId id) => Find(id).Process is { HasExited: false };

    /// <summary>Replicas whose process exited without being stopped or killed through this class (a crash).</summary>
    public IReadOnlyList<ReplicaId> Crashed => members.Where(m => m.Process is { HasExited: true }).Select(m => m.Id).ToArray();

    /// <summary>Whether the replica is stopped with SIGSTOP.</summary>
    public bool IsPaused(ReplicaId id) => Find(id).Paused;

    /// <summary>Pauses a replica with SIGSTOP: it keeps its sockets but runs nothing until <see cref="Resume"/>.</summary>
    public void Pause(ReplicaId id)
    {
        var member = Find(id);
        if (member.Process is { HasExited: false } process && !member.Paused)
        {
            _ = SendSignal(process.Id, SigStop);
            member.Paused = true;
        }
    }

    /// <summary>Resumes a paused replica with SIGCONT.</summary>
    public void Resume(ReplicaId id)
    {
        var member = Find(id);
        if (member.Process is { HasExited: false } process && member.Paused)
        {
            _ = SendSignal(process.Id, SigCont);
        }

        member.Paused = false;
    }

    /// <inheritdoc/>
    public IReadOnlyList<ReplicaId> Ids => members.ConvertAll(m => m.Id);

    /// <summary>Starts every replica.</summary>
    public void StartAll()
    {
        foreach (var member in members)
        {
            Start(member.Id);
        }
    }

    /// <inheritdoc/>
    public Task StartAllAsync()
    {
        StartAll();
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task StartAsync(ReplicaId id)
    {
        Start(id);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task StopAsync(ReplicaId id) => StopAsync(id, TimeSpan.FromSeconds(10));

    /// <summary>Starts (or restarts) one replica; its data directory is kept across restarts.</summary>
    public void Start(ReplicaId id)
    {
        var member = Find(id);
        if (member.Process is { HasExited: false })
        {
            throw new InvalidOperationException("replica " + id.ToString() + " is running");
        }

        var info = launcher.StartInfo(ServeArguments(member));
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start " + launcher.Executable);
        var log = new StreamWriter(Path.Combine(Directory, "replica-" + id.ToString() + ".log"), append: true, Encoding.UTF8)
        {
            AutoFlush = true,
        };
        process.OutputDataReceived += (_, e) => WriteLog(log, e.Data);
        process.ErrorDataReceived += (_, e) => WriteLog(log, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        member.Process = process;
        member.Log = log;
    }

    /// <summary>Kills a replica with SIGKILL (no chance to flush or clean up).</summary>
    public void Kill(ReplicaId id)
    {
        var member = Find(id);
        if (member.Process is { HasExited: false } process)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(10_000);
        }

        member.Paused = false;
        CloseLog(member);
        member.Process?.Dispose();
        member.Process = null;
    }

    /// <summary>
    /// Stops a replica with SIGTERM, then SIGKILL if it has not exited within <paramref name="grace"/>. Returns its exit
    /// code (−1 when it had to be killed; null when it was not running).
    /// </summary>
    public async Task<int?> StopAsync(ReplicaId id, TimeSpan grace)
    {
        var member = Find(id);
        int? exitCode = null;
        if (member.Process is { HasExited: false } process)
        {
            Resume(id);
            _ = SendSignal(process.Id, 15);
            using var cts = new CancellationTokenSource(grace);
            try
            {
                await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process
                    .WaitForExitAsync(CancellationToken.None)
                    .WaitAsync(TimeSpan.FromSeconds(10))
                    .ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                exitCode = -1;
            }

            exitCode ??= process.HasExited ? process.ExitCode : -1;
        }

        CloseLog(member);
        member.Process?.Dispose();
        member.Process = null;
        return exitCode;
    }

    /// <summary>The exit code of a replica whose process exited on its own and was not restarted; null while it runs.</summary>
    public int? ExitCode(ReplicaId id) => Find(id).Process is { HasExited: true } process ? process.ExitCode : null;

    /// <summary>The client endpoints of the replicas whose process is running.</summary>
    public IReadOnlyList<string> RunningClientEndPoints => Running().Select(m => m.Client).ToArray();

    /// <inheritdoc/>
    public Task<List<StatusReport>> StatusesAsync(TimeSpan timeout) =>
        ClusterProbe.StatusesAsync(RunningClientEndPoints, ClusterId, timeout, ((IReplicaCluster)this).ClientTls);

    /// <inheritdoc/>
    /// <exception cref="InvalidOperationException">A replica exited meanwhile (its log tail is in the message).</exception>
    public async Task<StatusReport> WaitForLeaderAsync(TimeSpan timeout)
    {
        var leader = await Wait.ForAsync(
                async () =>
                {
                    var running = Running().Count();
                    var agreed = Convergence.AgreedLeader(await StatusesAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false), running);
                    ThrowIfAnyExited();
                    return agreed;
                },
                timeout,
                TimeSpan.FromMilliseconds(100)
            )
            .ConfigureAwait(false);
        return leader
            ?? throw new TimeoutException("no leader within " + timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture) + " s");
    }

    /// <summary>The replicas whose process runs and is not paused: the ones that answer status requests.</summary>
    private IEnumerable<Member> Running() => members.Where(m => m.Process is { HasExited: false } && !m.Paused);

    private void ThrowIfAnyExited()
    {
        foreach (var member in members)
        {
            if (member.Process is { HasExited: true } exited && !member.ReportedExit)
            {
                member.ReportedExit = true;
                throw new InvalidOperationException(
                    "replica "
                        + member.Id.ToString()
                        + " exited with code "
                        + exited.ExitCode.ToString(CultureInfo.InvariantCulture)
                        + "; log: "
                        + LogTail(member.Id)
                );
            }
        }
    }

    /// <inheritdoc/>
    public Task<List<StatusReport>?> WaitForConvergenceAsync(TimeSpan timeout) =>
        ClusterProbe.WaitForConvergenceAsync(() => RunningClientEndPoints, ClusterId, timeout, ((IReplicaCluster)this).ClientTls);

    /// <summary>The last lines of a replica's log.</summary>
    public string LogTail(ReplicaId id, int lines = 20)
    {
        var path = Path.Combine(Directory, "replica-" + id.ToString() + ".log");
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            var all = reader.ReadToEnd().Split('\n');
            return string.Join('\n', all.TakeLast(lines));
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    /// <summary>Stops every replica (SIGTERM, then SIGKILL) and deletes the directory.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var member in members)
        {
            await StopAsync(member.Id, TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }

        if (!keepDirectory)
        {
            for (var attempt = 0; attempt < 5; attempt++)
            {
                try
                {
                    System.IO.Directory.Delete(Directory, recursive: true);
                    break;
                }
                catch (IOException)
                {
                    await Task.Delay(200).ConfigureAwait(false);
                }
                catch (UnauthorizedAccessException)
                {
                    await Task.Delay(200).ConfigureAwait(false);
                }
            }
        }
    }

    private List<string> ServeArguments(Member member)
    {
        var id = member.Id.ToString();
        var arguments = new List<string>
        {
            "serve",
            "--id",
            id,
            "--members",
            MembersArgument,
            "--data",
            Path.Combine(Directory, "replica-" + id),
            "--backend",
            Names.Of(Backend),
            "--durability",
            Names.Of(Durability),
            "--exit-with-parent",
        };
        if (!System.IO.Directory.Exists(Path.Combine(Directory, "replica-" + id)))
        {
            arguments.Add("--bootstrap"); // its first start: an empty data directory is expected
        }

        if (configuredClusterId != 0)
        {
            arguments.AddRange(["--cluster-id", configuredClusterId.ToString(CultureInfo.InvariantCulture)]);
        }

        if (Certificates is null)
        {
            arguments.Add("--insecure");
        }
        else
        {
            arguments.Add("--certs");
            arguments.Add(Certificates);
        }

        if (member.AdvertisedClient != member.Client)
        {
            arguments.Add("--client-listen");
            arguments.Add(member.Client);
        }

        arguments.AddRange(ExtraServeArguments);
        arguments.AddRange(member.ExtraArguments);
        return arguments;
    }

    private static void WriteLog(StreamWriter log, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (log)
        {
            try
            {
                log.WriteLine(line);
            }
            catch (ObjectDisposedException) { }
        }
    }

    private static void CloseLog(Member member)
    {
        if (member.Log is { } log)
        {
            lock (log)
            {
                log.Dispose();
            }

            member.Log = null;
        }
    }

    private Member Find(ReplicaId id) =>
        members.Find(m => m.Id == id) ?? throw new ArgumentOutOfRangeException(nameof(id), "no replica " + id.ToString());

    private const int SigStop = 19;
    private const int SigCont = 18;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);

    private sealed class Member(ReplicaId id, string raft, string client)
    {
        public ReplicaId Id { get; } = id;

        public string Raft { get; } = raft;

        public string Client { get; } = client;

        public string AdvertisedClient { get; set; } = client;

        public IReadOnlyList<string> ExtraArguments { get; set; } = [];

        public bool Paused { get; set; }

        public Process? Process { get; set; }

        public StreamWriter? Log { get; set; }

        public bool ReportedExit { get; set; }
    }
}
