#!/usr/bin/env bash
# Flink as the reference for Sluice's SQL: every comparable Nexmark query of
# examples/nexmark-sql run by Flink 2.x and by `sluice run` over the same
# generated events, their final results compared (compare_results.py says
# how). Exits 1 if a query's results differ.
#
#   bench/peers/flink/compare_results.sh                 # 200k events, 2 shards
#   EVENTS=1M SHARDS=1 QUERIES=q4,q9 bench/peers/flink/compare_results.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=setup.sh
source "$here/setup.sh"
events=${EVENTS:-200000}
data=${DATA:-/var/tmp/sluice-nexmark-events-$events}
export JVM_ARGS=${JVM_ARGS:--Xms2g -Xmx2g}

if [ ! -s "$data/events.jsonl" ]; then
    "$sluice" nexmark generate --events "$events" --out "$data" >&2
fi
args=(--events-file "$data/events.jsonl" --sluice "$sluice" --shards "${SHARDS:-2}")
if [ -n "${QUERIES:-}" ]; then
    args+=(--queries "$QUERIES")
fi
cd "$here"
"$venv/bin/python" compare_results.py "${args[@]}"
