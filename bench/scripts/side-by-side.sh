#!/usr/bin/env bash
# The side-by-side run of issue 6 (perf-results/README.md): in one run, the machine's floor, then fastsmr demo on the
# native and the DotNext back-end — 1 x 1, 64 x 1, 64 x 16 closed loop — then open-loop runs at fixed rates: half of the
# native back-end's 64 x 16 throughput (native only), and 80 % of the DotNext back-end's 64 x 16 throughput (both).
# Durable, 3 replicas, 64 B values. Writes OUT_DIR/DATE-side-by-side-COMMIT.json (every run, plus the goal ratios).
# Usage: bench/scripts/side-by-side.sh OUT_DIR [SECONDS]
set -euo pipefail
out=${1:?usage: side-by-side.sh OUT_DIR [SECONDS]}
seconds=${2:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
commit=$(git -C "$root" rev-parse --short=12 HEAD)
day=$(date -u +%Y-%m-%d)
dotnet build "$root/src/FastSmr.Cli" -c Release -v q -nologo >/dev/null
dotnet build "$root/bench/FastSmr.Bench" -c Release -v q -nologo >/dev/null
cli="$root/src/FastSmr.Cli/bin/Release/net10.0/fastsmr.dll"
work=$(mktemp -d /tmp/fastsmr-side-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
echo "== floor"
FASTSMR_COMMIT=$commit dotnet "$root/bench/FastSmr.Bench/bin/Release/net10.0/FastSmr.Bench.dll" floor --seconds 4 --dir "$root" --json "$work/floor.json"
run() { # name backend clients pipeline rate
  local file="$work/$1.json"
  echo "== $1"
  dotnet "$cli" demo --backend "$2" --seconds "$seconds" --clients "$3" --pipeline "$4" --rate "$5" --floor "$work/floor.json" --json "$file" \
    | grep -E "committed ops/s|latency p50|latency p99 |floor|errors|alloc|OK|FAILED"
}
ops() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['ops_per_sec'])" "$work/$1.json"; }
for backend in native dotnext; do
  run "$backend-1x1" "$backend" 1 1 0
  run "$backend-64x1" "$backend" 64 1 0
  run "$backend-64x16" "$backend" 64 16 0
done
half=$(python3 -c "print(int(float('$(ops native-64x16)') / 2))")
eighty=$(python3 -c "print(int(float('$(ops dotnext-64x16)') * 0.8))")
run "native-rate-half-native" native 64 16 "$half"
run "native-rate-80pct-dotnext" native 64 16 "$eighty"
run "dotnext-rate-80pct-dotnext" dotnext 64 16 "$eighty"
python3 - "$work" "$out/$day-side-by-side-$commit.json" "$commit" <<'PY'
import glob, json, os, sys
work, path, commit = sys.argv[1:4]
floor = json.load(open(os.path.join(work, "floor.json")))
runs = {os.path.basename(p)[:-5]: json.load(open(p)) for p in glob.glob(work + "/*.json") if not p.endswith("floor.json")}
p50 = lambda k: runs[k]["latency_us"]["p50"]; p99 = lambda k: runs[k]["latency_us"]["p99"]; ops = lambda k: runs[k]["ops_per_sec"]
goals = {
  "sequential_p50_to_floor (goal <= 1.5)": round(p50("native-1x1") / floor["commit_floor_us_p50"], 2),
  "sequential_p50_native_to_dotnext (goal <= 0.333)": round(p50("native-1x1") / p50("dotnext-1x1"), 3),
  "64x1_throughput_native_to_dotnext (goal >= 3)": round(ops("native-64x1") / ops("dotnext-64x1"), 2),
  "64x16_native_ops_per_sec (goal >= 500000)": ops("native-64x16"),
  "64x16_native_to_dotnext (goal > 1)": round(ops("native-64x16") / ops("dotnext-64x16"), 2),
  "rate_half_native_p99_us (goal <= 5000)": p99("native-rate-half-native"),
  "rate_80pct_dotnext_p99_native_to_dotnext (goal <= 0.333)": round(p99("native-rate-80pct-dotnext") / max(1, p99("dotnext-rate-80pct-dotnext")), 3),
  "leader_alloc_bytes_per_cmd_native_64x16 (goal 0)": runs["native-64x16"]["leader_alloc_bytes_per_cmd"],
}
json.dump({"what": "issue 6 side by side: floor + fastsmr demo, native and dotnext back-ends, one run", "commit": commit,
           "durability": "durable (fdatasync before acknowledging, leader and followers)", "machine": floor["machine"],
           "floor": floor, "goals": goals, "runs": runs}, open(path, "w"), indent=1)
print(json.dumps(goals, indent=1))
print("wrote", path)
PY
