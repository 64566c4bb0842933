#!/usr/bin/env bash
# Latency engineering matrix for the native back-end (native-notes/latency.md): every configuration runs the same
# fastsmr demo (3 replicas, durable, 64 B) sequentially (1 x 1) and latency-bound (64 x 1), interleaved over ROUNDS
# rounds so that the machine's drift hits every configuration alike. Writes one JSON with every run.
# Usage: bench/scripts/latency-matrix.sh OUT.json [SECONDS] [ROUNDS] [SET]
#   SET: all (default), threadpool-spin (the thread pool's worker spinning only: the runtime's default 70 against 0),
#        or gc-tiering (concurrent GC and tiered compilation with and without PGO, against fastsmr's settings)
set -euo pipefail
out=${1:?usage: latency-matrix.sh OUT.json [SECONDS] [ROUNDS]}
seconds=${2:-4}
rounds=${3:-2}
set_name=${4:-all}
root=$(cd "$(dirname "$0")/../.." && pwd)
dotnet build "$root/src/FastSmr.Cli" -c Release -v q -nologo >/dev/null
cli="$root/src/FastSmr.Cli/bin/Release/net10.0/fastsmr.dll"
work=$(mktemp -d /tmp/fastsmr-latency-XXXXXX)
trap 'rm -rf "$work"' EXIT
# name | environment for the replicas | extra demo arguments
configs=(
  "inline (default)||"
  "dedicated threads, blocking||--dedicated-threads"
  "dedicated threads, spin 2000||--dedicated-threads --spin 2000"
  "thread pool never spins|DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0|"
  "socket completions inline|DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1|"
  "server GC|DOTNET_gcServer=1|"
  "non-concurrent GC|DOTNET_gcConcurrent=0|"
  "TieredPGO off|DOTNET_TieredPGO=0|"
  "gen0 64 MiB|DOTNET_GCgen0size=0x4000000|"
)
if [ "$set_name" = gc-tiering ]; then
  configs=(
    "fastsmr settings (non-concurrent, tiering off)||"
    "concurrent GC|DOTNET_gcConcurrent=1|"
    "tiered compilation on, PGO on|DOTNET_TieredCompilation=1 DOTNET_TieredPGO=1|"
    "tiered compilation on, PGO off|DOTNET_TieredCompilation=1 DOTNET_TieredPGO=0|"
  )
fi
if [ "$set_name" = threadpool-spin ]; then
  configs=(
    "thread pool spin 70 (runtime default)|DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=70|"
    "thread pool spin 0|DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0|"
  )
fi
n=0
count=${#configs[@]}
for round in $(seq 1 "$rounds"); do
  # Each round starts one configuration later (a rotation), so no configuration always runs first: the first run of a
  # round was the slowest in the first matrix, an order effect.
  for i in $(seq 0 $((count - 1))); do
    config=${configs[$(((i + round - 1) % count))]}
    IFS='|' read -r name envs extra <<<"$config"
    for shape in "1 1" "64 1"; do
      set -- $shape
      n=$((n + 1))
      file="$work/run-$n.json"
      # shellcheck disable=SC2086
      env $envs dotnet "$cli" demo --backend native --seconds "$seconds" --clients "$1" --pipeline "$2" --json "$file" $extra >"$work/run-$n.log" 2>&1 || { echo "FAILED: $name $1x$2 (see below)"; tail -20 "$work/run-$n.log"; exit 1; }
      python3 - "$file" "$name" "$round" <<'PY'
import json, sys
path, name, rnd = sys.argv[1], sys.argv[2], sys.argv[3]
r = json.load(open(path)); r["config"] = name; r["round"] = int(rnd); json.dump(r, open(path, "w"))
print(f"round {rnd} {name:32s} {r['clients']}x{r['pipeline']}: {r['ops_per_sec']:9.0f} ops/s  p50 {r['latency_us']['p50']:6d} us  p99 {r['latency_us']['p99']:6d} us  alloc/cmd {r['leader_alloc_bytes_per_cmd']}")
PY
    done
  done
done
python3 - "$work" "$out" <<'PY'
import glob, json, sys, statistics
runs = [json.load(open(p)) for p in sorted(glob.glob(sys.argv[1] + "/run-*.json"), key=lambda p: int(p.split("-")[-1].split(".")[0]))]
summary = {}
for r in runs:
    key = f"{r['config']} | {r['clients']}x{r['pipeline']}"
    s = summary.setdefault(key, {"p50_us": [], "p99_us": [], "ops_per_sec": []})
    s["p50_us"].append(r["latency_us"]["p50"]); s["p99_us"].append(r["latency_us"]["p99"]); s["ops_per_sec"].append(r["ops_per_sec"])
for s in summary.values():
    for k in list(s):
        s[k + "_median"] = statistics.median(s[k])
json.dump({"what": "native back-end latency matrix: 3 replicas, durable, 64 B, fastsmr demo per configuration, interleaved rounds",
           "machine": runs[0]["machine"], "commit": runs[0]["commit"], "durability": "durable", "summary": summary, "runs": runs},
          open(sys.argv[2], "w"), indent=1)
print("wrote", sys.argv[2])
PY
