"""Nexmark-shaped queries in Flink SQL, the peer of `sluice bench nexmark`.

Bids come from Flink's `datagen` connector (the Nexmark generator is not part
of PyFlink) and go to `blackhole`; each query runs as its own job and its
throughput is rows / the job's net runtime (`JobExecutionResult`), so the 6-9 s
a job needs to start are not counted. String columns dominate datagen's cost,
so every query also runs over a numeric-only bid table.

Prints one JSON line per run on stdout.
"""

import argparse
import json
import time

from pyflink.table import EnvironmentSettings, TableEnvironment

# Bid columns as in the Nexmark DDL (`dateTime` quoted: a reserved word in
# Flink SQL 2.x); lengths give the generator's average
# sizes (channel ~8, url ~50, extra padding to ~100 bytes per bid).
BID_COLUMNS = {
    "strings": """
        auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
        `dateTime` TIMESTAMP(3), extra STRING""",
    "numeric": """
        auction BIGINT, bidder BIGINT, price BIGINT, `dateTime` TIMESTAMP(3)""",
}

BID_OPTIONS = {
    "fields.auction.min": "1000",
    "fields.auction.max": "1100",
    "fields.bidder.min": "1000",
    "fields.bidder.max": "2000",
    "fields.price.min": "100",
    "fields.price.max": "100000000",
    "fields.channel.length": "8",
    "fields.url.length": "50",
    "fields.extra.length": "20",
}

# Query name -> table -> (sink columns, SELECT over `bid`). A query without a
# numeric form needs the strings.
Q0_STRINGS = ("auction BIGINT, bidder BIGINT, price BIGINT, `dateTime` TIMESTAMP(3), extra STRING",
              "SELECT auction, bidder, price, `dateTime`, extra FROM bid")
Q0_NUMERIC = ("auction BIGINT, bidder BIGINT, price BIGINT, `dateTime` TIMESTAMP(3)",
              "SELECT auction, bidder, price, `dateTime` FROM bid")
Q1_STRINGS = ("auction BIGINT, bidder BIGINT, price DECIMAL(23, 3), `dateTime` TIMESTAMP(3),"
              " extra STRING",
              "SELECT auction, bidder, 0.908 * price, `dateTime`, extra FROM bid")
Q1_NUMERIC = ("auction BIGINT, bidder BIGINT, price DECIMAL(23, 3), `dateTime` TIMESTAMP(3)",
              "SELECT auction, bidder, 0.908 * price, `dateTime` FROM bid")
Q2 = ("auction BIGINT, price BIGINT",
      "SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0")
TUMBLING_COUNT = (
    "auction BIGINT, num BIGINT, window_end TIMESTAMP(3)",
    """SELECT auction, COUNT(*), window_end FROM TABLE(
           TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '10' SECOND))
       GROUP BY auction, window_start, window_end""")
Q22 = ("auction BIGINT, bidder BIGINT, price BIGINT, channel STRING,"
       " dir1 STRING, dir2 STRING, dir3 STRING",
       """SELECT auction, bidder, price, channel, SPLIT_INDEX(url, '/', 3),
                 SPLIT_INDEX(url, '/', 4), SPLIT_INDEX(url, '/', 5) FROM bid""")
QUERIES = {
    "q0": {"strings": Q0_STRINGS, "numeric": Q0_NUMERIC},
    "q1": {"strings": Q1_STRINGS, "numeric": Q1_NUMERIC},
    "q2": {"strings": Q2, "numeric": Q2},
    "q5-tumbling-count": {"strings": TUMBLING_COUNT, "numeric": TUMBLING_COUNT},
    "q22": {"strings": Q22},
}


def run(query, table, rows, parallelism):
    if table not in QUERIES[query]:
        return None
    sink_columns, select = QUERIES[query][table]
    settings = EnvironmentSettings.in_streaming_mode()
    t_env = TableEnvironment.create(settings)
    t_env.get_config().set("parallelism.default", str(parallelism))
    options = {"connector": "datagen", "rows-per-second": "1000000000",
               "number-of-rows": str(rows)}
    options.update({k: v for k, v in BID_OPTIONS.items()
                    if k.split(".")[1] in BID_COLUMNS[table]})
    with_clause = ", ".join(f"'{k}' = '{v}'" for k, v in options.items())
    t_env.execute_sql(f"""
        CREATE TABLE bid ({BID_COLUMNS[table]},
            WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND)
        WITH ({with_clause})""")
    t_env.execute_sql(f"CREATE TABLE sink ({sink_columns}) WITH ('connector' = 'blackhole')")
    started = time.time()
    result = t_env.execute_sql(f"INSERT INTO sink {select}")
    execution = result.get_job_client().get_job_execution_result().result()
    wall = time.time() - started
    net_ms = execution.get_net_runtime()
    return {
        "peer": "flink", "query": query, "table": table, "rows": rows,
        "parallelism": parallelism, "net_runtime_s": net_ms / 1000.0,
        "wall_s": wall, "events_per_s": rows / (net_ms / 1000.0),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--queries", default=",".join(QUERIES))
    args = parser.parse_args()
    for query in args.queries.split(","):
        for table in ("strings", "numeric"):
            line = run(query, table, args.rows, args.parallelism)
            if line is not None:
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
