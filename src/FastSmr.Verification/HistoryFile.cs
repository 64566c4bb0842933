using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace FastSmr.Verification;

/// <summary>
/// Reads and writes histories as JSON Lines, one operation per line, so other tools can read them:
/// <c>{"client":3,"invoke":1200,"return":1850,"op":"cas","key":"k1","expected":"v7","value":"v9","status":"ok","flag":true}</c>.
/// Times are from one monotonic clock (nanoseconds by convention); <c>status</c> is ok, fail or unknown; <c>output</c>
/// is the value read (get; absent when null) or the new value (incr); <c>flag</c> says whether a delete found the key
/// or a cas swapped.
/// </summary>
public static class HistoryFile
{
    private static readonly JsonSerializerOptions Options = new()
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters =
        {
            new JsonStringEnumConverter<KvOperationKind>(JsonNamingPolicy.SnakeCaseLower),
            new JsonStringEnumConverter<OperationStatus>(JsonNamingPolicy.SnakeCaseLower),
        },
    };

    /// <summary>Writes a history.</summary>
    public static void Write(string path, IEnumerable<KvOperation> history)
    {
        ArgumentNullException.ThrowIfNull(history);
        using var writer = new StreamWriter(path, append: false, new UTF8Encoding(false));
        foreach (var operation in history)
        {
            writer.WriteLine(ToLine(operation));
        }
    }

    /// <summary>One operation as a JSON line.</summary>
    public static string ToLine(KvOperation operation)
    {
        ArgumentNullException.ThrowIfNull(operation);
        return JsonSerializer.Serialize(
            new Line
            {
                Client = operation.Client,
                Invoke = operation.Invoke,
                Return = operation.Status == OperationStatus.Unknown ? null : operation.Return,
                Op = operation.Kind switch
                {
                    KvOperationKind.CompareAndSet => "cas",
                    KvOperationKind.Increment => "incr",
                    _ => operation.Kind.ToString().ToLowerInvariant(),
                },
                Key = operation.Key,
                Value = operation.Value,
                Expected = operation.Expected,
                Delta = operation.Kind == KvOperationKind.Increment ? operation.Delta : null,
                Status = operation.Status,
                Output = operation.OutputValue,
                Flag =
                    operation.Kind is KvOperationKind.Delete or KvOperationKind.CompareAndSet && operation.Status == OperationStatus.Ok
                        ? operation.OutputFlag
                        : null,
            },
            Options
        );
    }

    /// <summary>Reads a history; a malformed line is an error naming its line number.</summary>
    public static List<KvOperation> Read(string path)
    {
        var history = new List<KvOperation>();
        var number = 0;
        foreach (var text in File.ReadLines(path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(text))
            {
                continue;
            }

            try
            {
                var line = JsonSerializer.Deserialize<Line>(text, Options) ?? throw new InvalidDataException("empty line");
                history.Add(
                    new KvOperation
                    {
                        Client = line.Client,
                        Invoke = line.Invoke,
                        Return = line.Return ?? long.MaxValue,
                        Kind = line.Op switch
                        {
                            "put" => KvOperationKind.Put,
                            "get" => KvOperationKind.Get,
                            "delete" => KvOperationKind.Delete,
                            "cas" => KvOperationKind.CompareAndSet,
                            "incr" => KvOperationKind.Increment,
                            _ => throw new InvalidDataException("unknown op '" + line.Op + "'"),
                        },
                        Key = line.Key ?? throw new InvalidDataException("missing key"),
                        Value = line.Value,
                        Expected = line.Expected,
                        Delta = line.Delta ?? 0,
                        Status = line.Status,
                        OutputValue = line.Output,
                        OutputFlag = line.Flag ?? false,
                    }
                );
            }
            catch (Exception e) when (e is JsonException or InvalidDataException)
            {
                throw new InvalidDataException($"{path}:{number}: {e.Message}", e);
            }
        }

        return history;
    }

    private sealed class Line
    {
        [JsonPropertyName("client")]
        public int Client { get; set; }

        [JsonPropertyName("invoke")]
        public long Invoke { get; set; }

        [JsonPropertyName("return")]
        public long? Return { get; set; }

        [JsonPropertyName("op")]
        public string Op { get; set; } = "";

        [JsonPropertyName("key")]
        public string? Key { get; set; }

        [JsonPropertyName("value")]
        public string? Value { get; set; }

        [JsonPropertyName("expected")]
        public string? Expected { get; set; }

        [JsonPropertyName("delta")]
        public long? Delta { get; set; }

        [JsonPropertyName("status")]
        public OperationStatus Status { get; set; }

        [JsonPropertyName("output")]
        public string? Output { get; set; }

        [JsonPropertyName("flag")]
        public bool? Flag { get; set; }
    }
}
