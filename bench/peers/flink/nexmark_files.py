"""Every Nexmark query in Flink SQL over the events Sluice's generator made.

The events are the JSON lines `sluice nexmark generate` wrote (one file, the
same one `sluice bench nexmark --events-file` reads), so Flink and Sluice
compute the same results from the same input, and both pay for reading and
parsing JSON. (Flink's `datagen` draws uniform random values: the joins of
q3, q4, q8 and q9 would find almost no partners, so its work would not be
Nexmark's; and the Nexmark repository's own generator is a Flink connector
jar that only its Maven build makes, which this machine cannot fetch.)

Each query is the text of examples/nexmark-sql/qN.sql, which is the Nexmark
repository's (each file says where it differs), run as its own job after a
prelude that declares the events as a table of JSON lines and the `person`,
`auction` and `bid` views over it. Throughput is events / the job's net
runtime (`JobExecutionResult`), so the seconds a job needs to start are not
counted. Prints one JSON line per query on stdout; a query Flink refuses
gets its reason instead (q6: the repository's own text does not validate,
and Flink's OVER aggregation cannot read the winning bids' retractions
anyway; q13: a processing-time lookup join needs a lookup source, and Flink
2.x has none for files).
"""

import argparse
import json
import os
import re
import tempfile
import time

from pyflink.table import EnvironmentSettings, TableEnvironment

# The file's events as one table (the union of the three kinds' fields, a
# line's missing ones null) and a view per kind, with the columns of the
# Nexmark repository's views. Times in the file are epoch milliseconds.
PRELUDE = """
CREATE TABLE events (
    `type` STRING,
    id BIGINT, name STRING, emailAddress STRING, creditCard STRING,
    city STRING, state STRING,
    itemName STRING, description STRING, initialBid BIGINT, reserve BIGINT,
    expires BIGINT, seller BIGINT, category BIGINT,
    auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
    `dateTime` BIGINT, extra STRING,
    event_time AS CAST(TO_TIMESTAMP_LTZ(`dateTime`, 3) AS TIMESTAMP(3)),
    WATERMARK FOR event_time AS event_time - INTERVAL '4' SECOND
) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json');

CREATE VIEW person AS
SELECT id, name, emailAddress, creditCard, city, state,
       event_time AS `dateTime`, extra
FROM events WHERE `type` = 'person';

CREATE VIEW auction AS
SELECT id, itemName, description, initialBid, reserve, event_time AS `dateTime`,
       CAST(TO_TIMESTAMP_LTZ(expires, 3) AS TIMESTAMP(3)) AS expires,
       seller, category, extra
FROM events WHERE `type` = 'auction';

CREATE VIEW bid AS
SELECT auction, bidder, price, channel, url, event_time AS `dateTime`, extra
FROM events WHERE `type` = 'bid';
"""

QUERIES = ["q%d" % n for n in range(23)]


def statements(text):
    """The SQL statements of a script: comments dropped, split at `;`."""
    lines = [re.sub(r"--.*$", "", line) for line in text.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def query_text(query, sql_dir, scratch):
    """examples/nexmark-sql/<query>.sql as Flink 2.x takes it."""
    with open(os.path.join(sql_dir, f"{query}.sql")) as f:
        text = f.read()
    # Paths the query files name relative to themselves, or for Sluice's
    # examples: q13's side table, q10's output directory.
    text = text.replace("'path' = 'side_input.csv'",
                        "'path' = '%s'" % os.path.join(sql_dir, "side_input.csv"))
    if scratch is not None:
        text = text.replace("'/tmp/sluice-nexmark/q10/bid'",
                            "'%s'" % os.path.join(scratch, query))
    # q14's `count_char` is a Java UDF of the Nexmark repository's jar, which
    # is not here: the same count with built-in functions.
    text = re.sub(r"CREATE FUNCTION count_char[^;]*;", "", text)
    text = text.replace("count_char(extra, 'c')",
                        "(CHAR_LENGTH(extra) - CHAR_LENGTH(REPLACE(extra, 'c', '')))")
    # `dateTime` is a reserved word in Flink SQL 2.x (the texts were
    # written for 1.x): quoted wherever it stands bare.
    text = re.sub(r"(?<![`\w.])dateTime(?![`\w])", "`dateTime`", text)
    return re.sub(r"\.dateTime(?![`\w])", ".`dateTime`", text)


def run(query, sql_dir, events_file, events, parallelism, scratch):
    text = query_text(query, sql_dir, scratch)
    settings = EnvironmentSettings.in_streaming_mode()
    t_env = TableEnvironment.create(settings)
    config = t_env.get_config()
    config.set("parallelism.default", str(parallelism))
    config.set("table.local-time-zone", "UTC")
    for statement in statements(PRELUDE.format(path=events_file)):
        t_env.execute_sql(statement)
    inserts = []
    for statement in statements(text):
        if statement.upper().startswith("INSERT"):
            inserts.append(statement)
        else:
            t_env.execute_sql(statement)
    if len(inserts) != 1:
        raise ValueError(f"{query}.sql has {len(inserts)} INSERTs, expected one")
    started = time.time()
    result = t_env.execute_sql(inserts[0])
    execution = result.get_job_client().get_job_execution_result().result()
    wall = time.time() - started
    net_s = execution.get_net_runtime() / 1000.0
    return {
        "peer": "flink", "query": query, "input": "events-file", "events": events,
        "parallelism": parallelism, "net_runtime_s": net_s, "wall_s": wall,
        "events_per_s": events / net_s,
    }


def reason(error):
    """The Java exception's own message (Py4J wraps it), else the error's."""
    text = str(error)
    lines = [line.strip().lstrip(": ") for line in text.splitlines()]
    java = [line for line in lines if line.startswith(("org.apache", "java.", "Caused by"))]
    return (java[-1] if java else text.strip().splitlines()[0] if text.strip() else repr(error))[:500]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events-file", required=True)
    parser.add_argument("--sql-dir", required=True)
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--queries", default=",".join(QUERIES))
    args = parser.parse_args()
    events_file = os.path.abspath(args.events_file)
    with open(events_file, "rb") as f:
        events = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    with tempfile.TemporaryDirectory() as scratch:
        for query in args.queries.split(","):
            try:
                line = run(query, os.path.abspath(args.sql_dir), events_file, events,
                           args.parallelism, scratch)
            except Exception as error:  # a query Flink refuses: say which and why
                line = {"peer": "flink", "query": query, "input": "events-file",
                        "events": events, "error": reason(error)}
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
