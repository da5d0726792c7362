#!/usr/bin/env bash
# Instructions per routed event, per policy and engine count, from valgrind's callgrind
# (instruction counts are repeatable and carry over to ARM better than seconds do).
# Each case runs twice, with N and 2N events; (Ir(2N) - Ir(N)) / N removes start-up cost.
#   benches/route-callgrind.sh [N]      (default N = 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
bin=$(cargo bench --bench route --no-run --message-format=json 2>/dev/null |
      python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="route" and m.get("executable"): print(m["executable"])' | tail -1)
ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" --only "$1" --events "$2" 2>&1 >/dev/null |
       sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
for n in 3 32; do
  for p in multicast round-robin hash durable-hash; do
    a=$(ir "$p/$n" "$N"); b=$(ir "$p/$n" $((2 * N)))
    printf 'route %-16s %8s instructions/event\n' "$p/$n" "$(python3 -c 'import sys; a, b, n = map(int, sys.argv[1:]); print(f"{(b - a) / n:.1f}")' "$a" "$b" "$N")"
  done
done
