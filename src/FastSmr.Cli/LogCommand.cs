using System.CommandLine;
using System.Globalization;
using FastSmr.Log;
using FastSmr.Testing.Storage;

namespace FastSmr.Cli;

/// <summary>
/// <c>fastsmr log verify</c> opens a FastSmr.Log directory as a replica would (recovering a torn tail) and reads every
/// record, checking every CRC; <c>fastsmr log torture</c> (hidden) runs <see cref="LogTorture"/> for the kill -9 crash
/// tests.
/// </summary>
internal static class LogCommand
{
    public static Command Build()
    {
        var directory = new Option<DirectoryInfo>("--dir") { Description = "the log directory", Required = true };
        var clusterId = new Option<ulong>("--cluster-id")
        {
            Description = "cluster id the segments must carry",
            DefaultValueFactory = _ => 0,
        };
        var nodeId = new Option<uint>("--node-id") { Description = "node id the segments must carry", DefaultValueFactory = _ => 0 };
        var segmentSize = new Option<long>("--segment-size")
        {
            Description = "segment size for new segments in bytes",
            DefaultValueFactory = _ => 64L << 20,
        };
        var verify = new Command(
            "verify",
            "open a FastSmr.Log directory (recovering a torn tail, as a replica would) and check every record; exit 0 intact, 1 corrupt"
        )
        {
            directory,
            clusterId,
            nodeId,
            segmentSize,
        };
        verify.SetAction(result =>
            Verify(
                result.GetValue(directory)!.FullName,
                result.GetValue(clusterId),
                new ReplicaId(result.GetValue(nodeId)),
                result.GetValue(segmentSize),
                Console.Out
            )
        );
        var seed = new Option<int>("--seed") { Description = "seed of the group sizes", DefaultValueFactory = _ => 1 };
        var torture = new Command(
            "torture",
            "TEST ONLY: append and flush until killed, printing each durable index (the kill -9 crash tests)"
        )
        {
            directory,
            seed,
            segmentSize,
        };
        torture.Hidden = true;
        torture.SetAction(
            (result, token) =>
                LogTorture.RunAsync(
                    result.GetValue(directory)!.FullName,
                    result.GetValue(seed),
                    result.GetValue(segmentSize),
                    Console.Out,
                    token
                )
        );
        return new Command("log", "FastSmr.Log tools") { verify, torture };
    }

    /// <summary>Opens, reads every record, prints a summary; 0 when intact, 1 when corrupt, 2 on a usage error.</summary>
    public static int Verify(string directory, ulong clusterId, ReplicaId nodeId, long segmentSize, TextWriter output)
    {
        if (!Directory.Exists(directory))
        {
            output.WriteLine("fastsmr log verify: no such directory " + directory);
            return 2;
        }

        try
        {
            using var log = SegmentedLog.Open(
                directory,
                new LogOptions
                {
                    ClusterId = clusterId,
                    NodeId = nodeId,
                    SegmentSize = segmentSize,
                }
            );
            long records = 0,
                bytes = 0;
            if (log.LastIndex >= log.FirstIndex)
            {
                foreach (var entry in log.Read(log.FirstIndex, log.LastIndex))
                {
                    records++;
                    bytes += entry.Payload.Length;
                }
            }

            var m = log.Metadata;
            var contents = string.Create(
                CultureInfo.InvariantCulture,
                $"records [{log.FirstIndex}, {log.LastIndex}] ({records} records, {bytes} payload bytes) in {log.SegmentCount} segments"
            );
            var state = string.Create(
                CultureInfo.InvariantCulture,
                $"last term {log.LastTerm}; term {m.Term}, voted for {m.VotedFor}, commit {m.CommitIndex}"
            );
            var compacted = string.Create(CultureInfo.InvariantCulture, $"compacted up to {m.CompactedIndex} (term {m.CompactedTerm})");
            output.WriteLine("fastsmr log verify: OK " + directory + ": " + contents + "; " + state + ", " + compacted);
            return 0;
        }
        catch (InvalidDataException e)
        {
            output.WriteLine("fastsmr log verify: CORRUPT " + e.Message);
            return 1;
        }
    }
}
