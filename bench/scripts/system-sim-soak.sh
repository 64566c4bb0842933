#!/usr/bin/env bash
# The whole-system simulator's soak: SEEDS seeds from FIRST on, in chunks of 10,000 (progress after each; the first
# failing chunk stops the soak and prints its replay command), then seeds/s. With OUT_DIR, a JSON summary is written to
# OUT_DIR/DATE-system-sim-soak-COMMIT.json (machine, commit, settings, seeds, seconds, seeds/s, verdict).
# Usage: bench/scripts/system-sim-soak.sh SEEDS [FIRST] [REPLICAS] [OUT_DIR]
set -euo pipefail
seeds=${1:?usage: system-sim-soak.sh SEEDS [FIRST] [REPLICAS] [OUT_DIR]}
first=${2:-1}
replicas=${3:-3}
out=${4:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
dotnet build "$root/tests/FastSmr.Simulation.Runner" -c Release -v q -nologo >/dev/null
runner="$root/tests/FastSmr.Simulation.Runner/bin/Release/net10.0/FastSmr.Simulation.Runner.dll"
chunk=10000
start=$(date +%s.%N)
since() { awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }'; }
per() { awk -v d="$1" -v e="$2" 'BEGIN { printf "%.2f", d / e }'; }
done_seeds=0
verdict=passed
while [ "$done_seeds" -lt "$seeds" ]; do
  n=$(( seeds - done_seeds < chunk ? seeds - done_seeds : chunk ))
  from=$(( first + done_seeds ))
  if ! dotnet "$runner" --system --seeds "$n" --first-seed "$from" --replicas "$replicas" | grep -E "^sim: [0-9]+ whole-system|FAILED|replay"; then
    verdict=failed
    break
  fi
  done_seeds=$(( done_seeds + n ))
  elapsed=$(since)
  echo "soak: $done_seeds of $seeds seeds, $elapsed s, $(per "$done_seeds" "$elapsed") seeds/s"
done
elapsed=$(since)
rate=$(per "$done_seeds" "$elapsed")
echo "soak: $verdict: $done_seeds seeds ($replicas replicas) in $elapsed s, $rate seeds/s"
if [ -n "$out" ]; then
  mkdir -p "$out"
  commit=$(git -C "$root" rev-parse --short=12 HEAD)
  file="$out/$(date -u +%Y-%m-%d)-system-sim-soak-$commit.json"
  cat > "$file" <<JSON
{
  "kind": "system-sim-soak",
  "machine": {"cores": $(nproc), "memory_kib": $(awk '/MemTotal/ {print $2}' /proc/meminfo), "os": "$(. /etc/os-release; echo "$PRETTY_NAME")"},
  "commit": "$commit",
  "settings": {"replicas": $replicas, "first_seed": $first, "seeds_requested": $seeds, "durability": "durable (simulated disk)"},
  "seeds": $done_seeds,
  "seconds": $elapsed,
  "seeds_per_second": $rate,
  "verdict": "$verdict"
}
JSON
  echo "soak: wrote $file"
fi
[ "$verdict" = passed ]
