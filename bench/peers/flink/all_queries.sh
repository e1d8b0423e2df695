#!/usr/bin/env bash
# Every Nexmark query, Flink SQL against Sluice, from the same events file.
#
# Writes the events once with `sluice nexmark generate` (JSON lines), then,
# query by query (Flink and Sluice back to back, so the noise of this shared
# machine falls on both alike): Flink 2.x (PyFlink, parallelism 1) runs
# examples/nexmark-sql/qN.sql over the file (nexmark_files.py), and Sluice on
# one shard runs its hand-written job and, where the query has SQL that
# Sluice runs, the same SQL text, both reading the same file
# (`sluice bench nexmark --events-file`). Prints one table row per query:
# events/s of each and Sluice / Flink.
#
#   bench/peers/flink/all_queries.sh                # 5M events
#   EVENTS=2M QUERIES=q0,q5 bench/peers/flink/all_queries.sh
#
# Results are appended to bench/results.jsonl (Flink's lines have
# "peer": "flink").
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=setup.sh
source "$here/setup.sh"
events=${EVENTS:-5M}
queries=${QUERIES:-q0,q1,q2,q3,q4,q5,q6,q7,q8,q9,q10,q11,q12,q13,q14,q15,q16,q17,q18,q19,q20,q21,q22}
results=${RESULTS:-$repo/bench/results.jsonl}
data=${DATA:-/var/tmp/sluice-nexmark-events-$events}
export JVM_ARGS=${JVM_ARGS:--Xms4g -Xmx4g}

if [ ! -s "$data/events.jsonl" ]; then
    "$sluice" nexmark generate --events "$events" --out "$data" >&2
fi
file="$data/events.jsonl"

# The queries `sluice bench nexmark --sql` runs (q6: neither Flink nor
# Sluice runs its SQL; q10: its SQL writes files, measured by hand-written job only).
no_sql=" q6 q10 "

printf '%-5s %14s %16s %8s %16s %8s\n' query flink_ev/s sluice_sql_ev/s ratio sluice_hand_ev/s ratio
for query in ${queries//,/ }; do
    flink=$("$venv/bin/python" "$here/nexmark_files.py" --events-file "$file" \
        --sql-dir "$repo/examples/nexmark-sql" --queries "$query" 2>/dev/null | tail -1)
    echo "$flink" >> "$results"
    flink_eps=$(echo "$flink" | sed -n 's/.*"events_per_s": \([0-9.]*\).*/\1/p')
    if [[ $no_sql == *" $query "* ]]; then
        hand=$("$sluice" bench nexmark --query "$query" --shards 1 --events-file "$file" \
            --results "$results" 2>/dev/null | awk 'NR == 2 { print $5 }')
        sql=""
    else
        summary=$("$sluice" bench nexmark --sql --rounds 1 --query "$query" --shards 1 \
            --events-file "$file" --results "$results" 2>/dev/null | tail -1)
        hand=$(echo "$summary" | sed 's/.*hand-written \([0-9]*\) events.*/\1/')
        sql=$(echo "$summary" | sed 's/.*SQL \([0-9]*\) events.*/\1/')
    fi
    awk -v q="$query" -v f="$flink_eps" -v s="$sql" -v h="$hand" -v err="$flink" '
        function ratio(x) { return (f == "" || x == "") ? "-" : sprintf("%.2f", x / f) }
        BEGIN {
            printf "%-5s %14s %16s %8s %16s %8s\n", q, (f == "" ? "refused" : sprintf("%.0f", f)),
                (s == "" ? "-" : s), ratio(s), (h == "" ? "-" : h), ratio(h)
            if (f == "") { sub(/.*"error": /, "", err); print "      Flink: " err }
        }'
done
