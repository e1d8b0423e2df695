#!/usr/bin/env bash
# Flink as a peer of `sluice bench nexmark`: installs Apache Flink from PyPI
# into a venv (once; kept in $SLUICE_FLINK_VENV), runs Nexmark-shaped Flink
# SQL jobs at parallelism 1 (datagen -> blackhole, net runtime from the
# JobExecutionResult), runs Sluice's same queries on one shard in the same
# session (and, where examples/nexmark-sql has the query, Sluice's SQL job
# too), and prints the Sluice/Flink ratios per query.
#
#   bench/peers/flink/run.sh            # 20M rows per Flink job
#   ROWS=50000000 bench/peers/flink/run.sh
#
# Sluice counts every Nexmark event (92 % are bids) and Flink's datagen makes
# only bids, so the ratios compare bids per second: Sluice's events/s x 0.92.
# Results are appended to bench/results.jsonl (Flink's lines have
# "peer": "flink").
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=setup.sh
source "$here/setup.sh"
rows=${ROWS:-20000000}
results=${RESULTS:-$repo/bench/results.jsonl}
export JVM_ARGS=${JVM_ARGS:--Xms2g -Xmx2g}

flink_lines=$(mktemp)
trap 'rm -f "$flink_lines"' EXIT
"$venv/bin/python" "$here/nexmark_flink.py" --rows "$rows" | tee "$flink_lines" | tee -a "$results" >&2

# Flink query -> the Sluice query and parameters that do the same work (or more).
declare -A sluice_query=(
    [q0]="q0" [q1]="q1" [q2]="q2" [q22]="q22"
    [q5-tumbling-count]="q5 --param window_size_ms=10000 --param window_slide_ms=10000"
)

# The queries that have a Flink SQL text in examples/nexmark-sql also run as
# Sluice SQL (`sluice bench nexmark --sql`: the hand-written job and the SQL
# one, one round each, same session).
declare -A has_sql=([q0]=1 [q1]=1 [q2]=1 [q22]=1)

printf '%-18s %-8s %14s %14s %8s %16s %8s\n' query table flink_bids/s sluice_bids/s ratio sluice_sql_bids/s ratio
for query in q0 q1 q2 q5-tumbling-count q22; do
    if [ -n "${has_sql[$query]:-}" ]; then
        summary=$("$sluice" bench nexmark --sql --rounds 1 --query "$query" --events "$rows" \
            --shards 1 --results "$results" 2>/dev/null | tail -1)
        sluice_eps=$(echo "$summary" | sed 's/.*hand-written \([0-9]*\) events.*/\1/')
        sql_eps=$(echo "$summary" | sed 's/.*SQL \([0-9]*\) events.*/\1/')
    else
        # shellcheck disable=SC2086
        sluice_eps=$("$sluice" bench nexmark --query ${sluice_query[$query]} --events "$rows" \
            --shards 1 --results "$results" 2>/dev/null | awk 'NR == 2 { print $5 }')
        sql_eps=""
    fi
    sluice_bids=$(awk -v e="$sluice_eps" 'BEGIN { printf "%.0f", e * 0.92 }')
    grep "\"query\": \"$query\"" "$flink_lines" | while read -r line; do
        table=$(echo "$line" | sed 's/.*"table": "\([a-z]*\)".*/\1/')
        flink=$(echo "$line" | sed 's/.*"events_per_s": \([0-9.]*\).*/\1/')
        awk -v q="$query" -v t="$table" -v f="$flink" -v s="$sluice_bids" -v sql="$sql_eps" \
            'BEGIN {
                printf "%-18s %-8s %14.0f %14.0f %8.2f", q, t, f, s, s / f
                if (sql == "") printf " %16s %8s\n", "-", "-"
                else printf " %16.0f %8.2f\n", sql * 0.92, sql * 0.92 / f
            }'
    done
done
