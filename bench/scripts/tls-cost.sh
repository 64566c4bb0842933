#!/usr/bin/env bash
# What mutual TLS costs (issue 13): in one run, the machine's floor, then fastsmr demo with TLS (the default) and with
# --insecure, interleaved, on the native back-end (two rounds) and the DotNext back-end (one round): 1 x 1 (sequential
# p50) and 64 x 16 (throughput). Durable, 3 replicas, 64 B values.
# Writes OUT_DIR/DATE-tls-cost-COMMIT.json (every run, plus the added p50 and the throughput ratio per back-end).
# Usage: bench/scripts/tls-cost.sh OUT_DIR [SECONDS]
set -euo pipefail
out=${1:?usage: tls-cost.sh OUT_DIR [SECONDS]}
seconds=${2:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
commit=$(git -C "$root" rev-parse --short=12 HEAD)
day=$(date -u +%Y-%m-%d)
dotnet build "$root/src/FastSmr.Cli" -c Release -v q -nologo >/dev/null
dotnet build "$root/bench/FastSmr.Bench" -c Release -v q -nologo >/dev/null
cli="$root/src/FastSmr.Cli/bin/Release/net10.0/fastsmr.dll"
work=$(mktemp -d /tmp/fastsmr-tls-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
echo "== floor"
FASTSMR_COMMIT=$commit dotnet "$root/bench/FastSmr.Bench/bin/Release/net10.0/FastSmr.Bench.dll" floor --seconds 4 --dir "$root" --json "$work/floor.json"
run() { # name backend clients pipeline [--insecure]
  local file="$work/$1.json"
  echo "== $1"
  dotnet "$cli" demo --backend "$2" --seconds "$seconds" --clients "$3" --pipeline "$4" --floor "$work/floor.json" --json "$file" ${5:-} \
    | grep -E "back-end|committed ops/s|latency p50|latency p99 |alloc|OK|FAILED"
}
for round in 1 2; do
  for shape in "1 1" "64 16"; do
    set -- $shape
    run "native-tls-${1}x${2}-r$round" native "$1" "$2"
    run "native-insecure-${1}x${2}-r$round" native "$1" "$2" --insecure
  done
done
for shape in "1 1" "64 16"; do
  set -- $shape
  run "dotnext-tls-${1}x${2}-r1" dotnext "$1" "$2"
  run "dotnext-insecure-${1}x${2}-r1" dotnext "$1" "$2" --insecure
done
python3 - "$work" "$out/$day-tls-cost-$commit.json" "$commit" <<'PY'
import glob, json, os, statistics, sys
work, path, commit = sys.argv[1:4]
floor = json.load(open(os.path.join(work, "floor.json")))
runs = {os.path.basename(p)[:-5]: json.load(open(p)) for p in glob.glob(work + "/*.json") if not p.endswith("floor.json")}
def mean(backend, mode, shape, f):
    values = [f(r) for k, r in runs.items() if k.startswith(f"{backend}-{mode}-{shape}-")]
    return statistics.mean(values)
p50 = lambda r: r["latency_us"]["p50"]; ops = lambda r: r["ops_per_sec"]
summary = {}
for backend in ("native", "dotnext"):
    summary[backend] = {
        "1x1_p50_us_tls": mean(backend, "tls", "1x1", p50),
        "1x1_p50_us_insecure": mean(backend, "insecure", "1x1", p50),
        "1x1_p50_added_us (goal <= 30)": round(mean(backend, "tls", "1x1", p50) - mean(backend, "insecure", "1x1", p50), 1),
        "64x16_ops_tls": mean(backend, "tls", "64x16", ops),
        "64x16_ops_insecure": mean(backend, "insecure", "64x16", ops),
        "64x16_throughput_lost_pct (goal <= 15)": round(100 * (1 - mean(backend, "tls", "64x16", ops) / mean(backend, "insecure", "64x16", ops)), 1),
    }
json.dump({"what": "issue 13: mutual TLS against --insecure, fastsmr demo, one run (native: mean of 2 interleaved rounds)",
           "commit": commit, "durability": "durable (fdatasync before acknowledging, leader and followers)",
           "settings": "3 replicas, 64 B values, closed loop, TLS 1.3 with ECDSA P-256 certificates from fastsmr certs create",
           "machine": floor["machine"], "floor": floor, "summary": summary, "runs": runs}, open(path, "w"), indent=1)
print(json.dumps(summary, indent=1))
print("wrote", path)
PY
