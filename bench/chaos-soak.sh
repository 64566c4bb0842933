#!/usr/bin/env bash
# The chaos soak: `fastsmr chaos` on many seeds, one after another, then a summary.
#   bash bench/chaos-soak.sh [first-seed] [last-seed] [seconds] [replicas] [out-dir] [backend]
# Defaults: seeds 1..20, 60 s each, 3 replicas, chaos-results/soak-<time>, the dotnext back-end. Each seed's history, check, report and
# replica logs land in <out-dir>/seed-<n>; <out-dir>/summary.txt has one verdict line per seed. Exit 1 if any seed FAILs.
set -uo pipefail
cd "$(dirname "$0")/.."
first=${1:-1}; last=${2:-20}; seconds=${3:-60}; replicas=${4:-3}
out=${5:-chaos-results/soak-$(date -u +%Y%m%dT%H%M%SZ)}
backend=${6:-dotnext}
mkdir -p "$out"
dotnet build src/FastSmr.Cli -c Release -v quiet -nologo >/dev/null || exit 2
dll=src/FastSmr.Cli/bin/Release/net10.0/fastsmr.dll
status=0
for seed in $(seq "$first" "$last"); do
  dotnet "$dll" chaos --seconds "$seconds" --seed "$seed" --replicas "$replicas" --backend "$backend" --out "$out/seed-$seed" > "$out/seed-$seed.out" 2>&1
  rc=$?
  line=$(grep -E '^chaos: (PASS|FAIL)' "$out/seed-$seed.out" | tail -1)
  echo "${line:-chaos: FAIL seed=$seed (no verdict line, exit $rc)}" | tee -a "$out/summary.txt"
  [ "$rc" = 0 ] || status=1
done
echo "$(grep -c 'chaos: PASS' "$out/summary.txt") of $((last - first + 1)) seeds passed; details in $out" | tee -a "$out/summary.txt"
exit $status
