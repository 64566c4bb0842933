#!/usr/bin/env bash
# A change measured against an earlier commit in one run: the floor, then fastsmr demo in three shapes (1 x 1, 64 x 1,
# 64 x 16 closed loop) on both back-ends, two rounds, the old and the new build alternating (the second round in the
# opposite order). Durable, 3 replicas, 64 B values. The old commit is built in a temporary git worktree, removed after.
# Writes OUT_DIR/DATE-before-after-NEW.json with every run and, per shape, the means and new/old ratios.
# Usage: bench/scripts/before-after.sh OLD_COMMIT OUT_DIR [SECONDS]
# NEW_ARGS and OLD_ARGS (environment) add demo flags to one build's runs: NEW_ARGS=--insecure compares a build that
# runs TLS by default with one from before TLS, both in plaintext.
set -euo pipefail
old_commit=${1:?usage: before-after.sh OLD_COMMIT OUT_DIR [SECONDS]}
out=${2:?usage: before-after.sh OLD_COMMIT OUT_DIR [SECONDS]}
seconds=${3:-8}
root=$(cd "$(dirname "$0")/../.." && pwd)
new_commit=$(git -C "$root" rev-parse --short=12 HEAD)
old=$(git -C "$root" rev-parse --short=12 "$old_commit")
day=$(date -u +%Y-%m-%d)
work=$(mktemp -d /tmp/fastsmr-before-after-XXXXXX)
tree="$work/old"
cleanup() { git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
git -C "$root" worktree add --detach "$tree" "$old" >/dev/null
dotnet build "$tree/src/FastSmr.Cli" -c Release -v q -nologo >/dev/null
dotnet build "$root/src/FastSmr.Cli" -c Release -v q -nologo >/dev/null
dotnet build "$root/bench/FastSmr.Bench" -c Release -v q -nologo >/dev/null
old_cli="$tree/src/FastSmr.Cli/bin/Release/net10.0/fastsmr.dll"
new_cli="$root/src/FastSmr.Cli/bin/Release/net10.0/fastsmr.dll"
mkdir -p "$out"
echo "== floor"
FASTSMR_COMMIT=$new_commit dotnet "$root/bench/FastSmr.Bench/bin/Release/net10.0/FastSmr.Bench.dll" floor --seconds 4 --dir "$root" --json "$work/floor.json" | tail -3
run() { # which cli commit backend clients pipeline round
  echo "== $1 $4 ${5}x$6 round $7"
  local extra
  if [ "$1" = old ]; then extra=${OLD_ARGS:-}; else extra=${NEW_ARGS:-}; fi
  FASTSMR_COMMIT=$3 dotnet "$2" demo --backend "$4" --seconds "$seconds" --clients "$5" --pipeline "$6" --floor "$work/floor.json" \
    --json "$work/$1-$4-${5}x$6-$7.json" $extra | grep -E "committed ops/s|latency p50|latency p99 |OK|FAILED"
}
for round in 1 2; do
  if [ "$round" = 1 ]; then order="old new"; else order="new old"; fi
  for shape in "1 1" "64 1" "64 16"; do
    set -- $shape
    for backend in native dotnext; do
      for which in $order; do
        if [ "$which" = old ]; then run old "$old_cli" "$old" "$backend" "$1" "$2" "$round"; else run new "$new_cli" "$new_commit" "$backend" "$1" "$2" "$round"; fi
      done
    done
  done
done
python3 - "$work" "$out/$day-before-after-$new_commit.json" "$old" "$new_commit" "$seconds" <<'PY'
import glob, json, os, sys
work, path, old, new, seconds = sys.argv[1:6]
floor = json.load(open(os.path.join(work, "floor.json")))
runs = {os.path.basename(p)[:-5]: json.load(open(p)) for p in glob.glob(work + "/*.json") if not p.endswith("floor.json")}
rows = {}
for name, r in runs.items():
    which, backend, shape, rnd = name.split("-")
    rows.setdefault(f"{backend} {shape}", {}).setdefault(which, []).append(r)
mean = lambda xs, f: sum(f(x) for x in xs) / len(xs)
summary = {key: {"old_ops": round(mean(by["old"], lambda r: r["ops_per_sec"])), "new_ops": round(mean(by["new"], lambda r: r["ops_per_sec"])),
                 "new_to_old_ops": round(mean(by["new"], lambda r: r["ops_per_sec"]) / mean(by["old"], lambda r: r["ops_per_sec"]), 3),
                 "old_p50_us": round(mean(by["old"], lambda r: r["latency_us"]["p50"])), "new_p50_us": round(mean(by["new"], lambda r: r["latency_us"]["p50"])),
                 "old_p99_us": round(mean(by["old"], lambda r: r["latency_us"]["p99"])), "new_p99_us": round(mean(by["new"], lambda r: r["latency_us"]["p99"]))}
           for key, by in sorted(rows.items())}
json.dump({"what": "a change against an earlier commit, interleaved in one run: fastsmr demo, two rounds, alternating order",
           "old_commit": old, "new_commit": new, "durability": "durable (fdatasync before acknowledging, leader and followers)",
           "settings": {"seconds": int(seconds), "replicas": 3, "payload_bytes": 64}, "machine": floor["machine"], "floor": floor,
           "summary": summary, "runs": runs}, open(path, "w"), indent=1)
print(json.dumps(summary, indent=1))
print("wrote", path)
PY
