//! The `sluice` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hyper::Method;
use sluice_cluster::bench::{nexmark as bench_nexmark, plot as bench_plot, suite as bench_suite};
use sluice_cluster::client::{Client, ClientError};
use sluice_cluster::coordinator::{self, CoordinatorConfig};
use sluice_cluster::{control, logging, nexmark_generate, run, worker};

/// mimalloc instead of the system allocator: records that carry strings are
/// allocated on one shard and freed on another, a pattern glibc's malloc
/// serves slowly (see bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Stateful, event-time stream processing, one shard per core"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a job file embedded in this process until its sources end.
    Run {
        /// The job file (TOML).
        job: PathBuf,
        /// Resume from a checkpoint: `latest`, a checkpoint id, or a
        /// checkpoint's directory.
        #[arg(long)]
        restore: Option<String>,
        /// Serve Prometheus metrics at http://ADDRESS/metrics while the
        /// job runs (HOST:PORT).
        #[arg(long)]
        metrics_addr: Option<std::net::SocketAddr>,
        /// Serve the web dashboard of the job at http://ADDRESS/ (and its
        /// metrics at /metrics) while it runs (HOST:PORT).
        #[arg(long)]
        ui: Option<std::net::SocketAddr>,
        /// Once the job ends, go on serving its final metrics (and
        /// dashboard) this many seconds before exiting (so that a last
        /// scrape sees them).
        #[arg(long, default_value_t = 0)]
        metrics_linger_s: u64,
    },
    /// Checks a job file without running it.
    Check { job: PathBuf },
    /// Prints a job file's operators: for SQL, the plan of each INSERT with
    /// its sources, fused stateless steps, exchanges and state.
    Explain { job: PathBuf },
    /// Takes a savepoint of the job running with this job file (through its
    /// checkpoint storage), or of the job with this id on `--coordinator`,
    /// and prints its path.
    Savepoint {
        /// The running job's file (TOML), or with `--coordinator` its id.
        job: PathBuf,
        #[command(flatten)]
        cluster: OptionalCoordinator,
        /// Stop the job once the savepoint is taken.
        #[arg(long)]
        stop: bool,
        /// Where the savepoint goes (default: `<checkpoint storage>/savepoints`).
        #[arg(long)]
        dir: Option<String>,
        /// How long to wait for the job to answer.
        #[arg(long, default_value_t = 120)]
        timeout_s: u64,
    },
    /// Lists the registered jobs; with `--coordinator`, the cluster's jobs.
    Jobs {
        #[command(flatten)]
        cluster: OptionalCoordinator,
    },
    /// Runs a coordinator: places submitted jobs on workers, watches them,
    /// serves the HTTP API.
    Coordinator {
        /// Its settings (`cluster.toml`).
        #[arg(long)]
        config: PathBuf,
        /// Its name in the leader election (`[ha] name`; default: the
        /// file's, else its listen address).
        #[arg(long)]
        name: Option<String>,
    },
    /// Runs a worker that offers shards to a coordinator.
    Worker {
        /// The coordinator's address for workers (HOST:PORT); with
        /// coordinators on etcd, all of them, comma-separated (it follows
        /// the leader).
        #[arg(long)]
        coordinator: String,
        /// Shards it runs (default: the available CPUs).
        #[arg(long)]
        shards: Option<u32>,
        /// Its name (default: its data-plane address).
        #[arg(long)]
        name: Option<String>,
        /// Where its data plane listens (default: the address it reaches
        /// the coordinator from, any port).
        #[arg(long)]
        data_address: Option<std::net::SocketAddr>,
        /// The data-plane address other workers dial, when it is not where
        /// it listens (NAT, a port forward, a proxy). Default: where it
        /// listens.
        #[arg(long)]
        advertise_address: Option<String>,
        /// Do not pin shards to CPUs (several workers on one machine).
        #[arg(long)]
        no_pin: bool,
        /// Serve Prometheus metrics of its tasks at http://ADDRESS/metrics
        /// (HOST:PORT).
        #[arg(long)]
        metrics_addr: Option<std::net::SocketAddr>,
        /// Give up after the coordinator was unreachable this long.
        #[arg(long, default_value_t = 60)]
        connect_timeout_s: u64,
        /// On SIGTERM or SIGINT, wait at most this long for the coordinator
        /// to move its tasks off after a checkpoint, then cancel them and
        /// exit (a second signal exits at once).
        #[arg(long, default_value_t = 60)]
        drain_timeout_s: u64,
        /// The cluster secret (default: SLUICE_SECRET_FILE or SLUICE_SECRET).
        #[arg(long)]
        secret_file: Option<PathBuf>,
    },
    /// Validates a job file like `run` (exit 2 if unusable, nothing sent),
    /// submits it to a coordinator and prints the job's id.
    Submit {
        job: PathBuf,
        /// Start from a checkpoint or savepoint (as `run --restore`: its
        /// location, a path every machine reaches, or an `s3://` URL).
        #[arg(long)]
        restore: Option<String>,
        #[command(flatten)]
        cluster: Coordinator,
    },
    /// A cluster job's state, placement and tasks (JSON).
    Status {
        id: String,
        #[command(flatten)]
        cluster: Coordinator,
    },
    /// Cancels a cluster job.
    Cancel {
        id: String,
        #[command(flatten)]
        cluster: Coordinator,
    },
    /// The Nexmark benchmark.
    Nexmark {
        #[command(subcommand)]
        command: NexmarkCommand,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

/// Where a cluster command sends its request.
#[derive(clap::Args)]
struct Coordinator {
    /// The coordinator's HTTP API (http://HOST:PORT); with coordinators on
    /// etcd, all of them, comma-separated (the one that accepts, the
    /// leader, gets the request).
    #[arg(long)]
    coordinator: String,
    /// The cluster secret (default: SLUICE_SECRET_FILE or SLUICE_SECRET).
    #[arg(long)]
    secret_file: Option<PathBuf>,
}

/// Like [`Coordinator`], for commands that also work without one.
#[derive(clap::Args)]
struct OptionalCoordinator {
    /// The coordinator's HTTP API (http://HOST:PORT); with coordinators on
    /// etcd, all of them, comma-separated (the one that accepts, the
    /// leader, gets the request).
    #[arg(long)]
    coordinator: Option<String>,
    /// The cluster secret (default: SLUICE_SECRET_FILE or SLUICE_SECRET).
    #[arg(long)]
    secret_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Runs a Nexmark query and reports throughput, CPU seconds and peak
    /// memory; with `--rate`, offers events on a wall-clock schedule and
    /// reports latency percentiles.
    Nexmark {
        /// The query, e.g. q5.
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        query: Option<String>,
        /// Runs every query, in throughput and in latency mode (at half the
        /// throughput reached), and rewrites the suite section of `--report`.
        #[arg(long, conflicts_with_all = ["rate", "params", "plot"])]
        all: bool,
        /// With --all: seconds of each latency run.
        #[arg(long, default_value_t = 10, requires = "all")]
        latency_seconds: u64,
        /// With --all: the report whose suite section is rewritten.
        #[arg(long, default_value = "bench/RESULTS.md", requires = "all")]
        report: PathBuf,
        /// With --all: where the plots go.
        #[arg(long, default_value = "bench/plots", requires = "all")]
        plots: PathBuf,
        /// Writes a plot of throughput (and latency) over the run (SVG).
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Number of events (accepts 10M, 500k).
        #[arg(long, value_parser = parse_count, default_value = "10M")]
        events: u64,
        /// Shards (default: the available CPUs).
        #[arg(long)]
        shards: Option<u32>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Latency mode: offer this many events per second (accepts 1M, 500k).
        #[arg(long, value_parser = parse_count)]
        rate: Option<u64>,
        /// A job parameter, `name=value` (value in TOML: 5000, "text").
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, toml::Value)>,
        /// How long a partly filled exchange batch may wait, in ms.
        #[arg(long)]
        flush_timeout_ms: Option<u64>,
        /// Take checkpoints every this many ms (into a temporary directory)
        /// and report their duration and size.
        #[arg(long)]
        checkpoint_interval_ms: Option<u64>,
        /// Incremental checkpoints with a full one at least every N (0:
        /// every checkpoint full).
        #[arg(long, default_value_t = 10)]
        checkpoint_full_every: u32,
        /// Unaligned checkpoints.
        #[arg(long)]
        checkpoint_unaligned: bool,
        /// Where keyed state lives: memory or rocksdb.
        #[arg(long, default_value = "memory", value_parser = parse_backend)]
        state_backend: sluice_engine::StateBackendKind,
        /// Appends one JSON line per run to this file.
        #[arg(long, default_value = "bench/results.jsonl")]
        results: PathBuf,
        /// Runs the query's SQL (examples/nexmark-sql) and the hand-written
        /// job, alternating for `--rounds` rounds, and reports both and
        /// their ratio.
        #[arg(long, conflicts_with_all = ["all", "rate", "params", "plot"])]
        sql: bool,
        /// With --sql: rounds of (hand-written, SQL).
        #[arg(long, default_value_t = 2, requires = "sql")]
        rounds: u32,
        /// Shards poll this many µs before they park when idle (the
        /// job file's `exchange.spin_before_park_us`; default: park at once).
        #[arg(long, conflicts_with = "all")]
        spin_before_park_us: Option<u64>,
        /// Reads the events from this file (the JSON lines `sluice nexmark
        /// generate` writes) instead of generating them: the events are the
        /// file's lines, counted before the run (`--events` does not apply).
        #[arg(long, conflicts_with_all = ["all", "rate"])]
        events_file: Option<PathBuf>,
    },
    /// Measures the Kafka source and sink against librdkafka's own consumer
    /// and producer on the same broker, alternating.
    Kafka {
        /// The broker (host:port).
        #[arg(long)]
        bootstrap: String,
        /// Events per round (accepts 10M, 500k).
        #[arg(long, value_parser = parse_count, default_value = "200k")]
        events: u64,
        #[arg(long, default_value_t = 4)]
        partitions: i32,
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Runs Nexmark queries on N local worker processes of one shard each
    /// and on one process of N shards, alternating, and reports both with
    /// the raw loopback TCP throughput (and, with --recovery, the time to
    /// recover from a killed worker).
    Cluster {
        /// Comma-separated queries.
        #[arg(long, default_value = "q0,q5,q8,q18", value_delimiter = ',')]
        queries: Vec<String>,
        /// Events per run (accepts 10M, 500k).
        #[arg(long, value_parser = parse_count, default_value = "20M")]
        events: u64,
        #[arg(long, default_value_t = 2)]
        workers: u32,
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Also kill a worker of a checkpointed job and time its recovery.
        #[arg(long)]
        recovery: bool,
        /// Seconds of each latency run at half load (0: no latency runs).
        #[arg(long, default_value_t = 12)]
        latency_seconds: u64,
        /// Appends the report (Markdown) to this file.
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

/// `name=value`, the value in TOML (a bare word is taken as a string).
fn parse_backend(text: &str) -> Result<sluice_engine::StateBackendKind, String> {
    match text {
        "memory" => Ok(sluice_engine::StateBackendKind::Memory),
        "rocksdb" => Ok(sluice_engine::StateBackendKind::RocksDb),
        other => Err(format!("{other:?}: expected memory or rocksdb")),
    }
}

fn parse_param(text: &str) -> Result<(String, toml::Value), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected name=value, found {text:?}"))?;
    let value = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    Ok((name.trim().to_owned(), value))
}

/// `10M`, `500k`, `1000`.
fn parse_count(text: &str) -> Result<u64, String> {
    let (digits, factor) = match text.chars().last() {
        Some('k' | 'K') => (&text[..text.len() - 1], 1_000),
        Some('m' | 'M') => (&text[..text.len() - 1], 1_000_000),
        Some('g' | 'G') => (&text[..text.len() - 1], 1_000_000_000),
        _ => (text, 1),
    };
    digits
        .replace('_', "")
        .parse::<u64>()
        .map(|n| n * factor)
        .map_err(|_| format!("`{text}` is not a count (examples: 1000, 500k, 10M)"))
}

#[derive(Subcommand)]
enum NexmarkCommand {
    /// Writes the events the `nexmark` source produces, for checking results
    /// with other tools.
    Generate {
        /// Number of events (accepts 10M, 500k).
        #[arg(long, value_parser = parse_count)]
        events: u64,
        /// Generator seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: nexmark_generate::GenerateFormat,
        /// Output directory (created if missing).
        #[arg(long, required_unless_present = "kafka", conflicts_with = "kafka")]
        out: Option<PathBuf>,
        /// Write the events as JSON into a Kafka topic at these brokers
        /// (host:port,…) instead of files.
        #[arg(long, requires = "topic")]
        kafka: Option<String>,
        /// The topic (created if missing).
        #[arg(long)]
        topic: Option<String>,
        /// The topic's partitions: event n goes to partition n % partitions.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: i32,
        /// A librdkafka producer property, `key=value` (repeatable).
        #[arg(long = "property", value_name = "KEY=VALUE")]
        properties: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = logging::init() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match cli.command {
        Command::Run {
            job,
            restore,
            metrics_addr,
            ui,
            metrics_linger_s,
        } => {
            let code = match run::run(&job, restore.as_deref(), metrics_addr, ui) {
                Ok((file, report)) => {
                    eprintln!("{}", run::summary(&file, &report));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(e.exit_code() as u8)
                }
            };
            if metrics_linger_s > 0 {
                eprintln!("serving the final metrics for {metrics_linger_s} s");
                std::thread::sleep(std::time::Duration::from_secs(metrics_linger_s));
            }
            code
        }
        Command::Savepoint {
            job,
            cluster:
                OptionalCoordinator {
                    coordinator: Some(url),
                    secret_file,
                },
            stop,
            dir,
            timeout_s,
        } => cluster_command(&url, secret_file.as_deref(), |client| {
            let path = format!(
                "/jobs/{}/savepoint{}",
                job.display(),
                if stop { "?stop=true" } else { "" }
            );
            // A local directory is named as the coordinator will see it
            // (on this machine, or one sharing the path).
            let dir = dir.map(|d| absolute_location(&d));
            let body = serde_json::json!({ "dir": dir, "timeout_s": timeout_s });
            let answer = client.request_within(
                Method::POST,
                &path,
                Some(body),
                std::time::Duration::from_secs(timeout_s + 10),
            )?;
            println!("{}", answer["location"].as_str().unwrap_or_default());
            Ok(())
        }),
        Command::Savepoint {
            job,
            cluster: _,
            stop,
            dir,
            timeout_s,
        } => match run::savepoint(
            &job,
            stop,
            dir.as_deref(),
            std::time::Duration::from_secs(timeout_s),
        ) {
            Ok(location) => {
                println!("{location}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(e.exit_code() as u8)
            }
        },
        Command::Check { job } => match run::prepare(&job) {
            Ok((file, _)) => {
                eprintln!(
                    "{}: ok (job `{}`, {} shards)",
                    job.display(),
                    file.job,
                    file.config.shards
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(e.exit_code() as u8)
            }
        },
        Command::Explain { job } => match run::explain(&job) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(e.exit_code() as u8)
            }
        },
        Command::Nexmark {
            command:
                NexmarkCommand::Generate {
                    events,
                    seed,
                    format,
                    out,
                    kafka,
                    topic,
                    partitions,
                    properties,
                },
        } => match (out, kafka, topic) {
            (Some(out), _, _) => match nexmark_generate::generate(events, seed, format, &out) {
                Ok(()) => {
                    eprintln!(
                        "wrote {events} Nexmark events (seed {seed}) to {}",
                        out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            },
            (None, Some(servers), Some(topic)) => {
                let mut connection = sluice_cluster::kafka::KafkaConnection::new(&servers);
                for property in &properties {
                    let Some((key, value)) = property.split_once('=') else {
                        eprintln!("error: --property {property}: expected KEY=VALUE");
                        return ExitCode::from(2);
                    };
                    connection
                        .properties
                        .insert(key.to_owned(), value.to_owned());
                }
                let started = std::time::Instant::now();
                match nexmark_generate::generate_to_kafka(
                    events,
                    seed,
                    &connection,
                    &topic,
                    partitions,
                ) {
                    Ok(bytes) => {
                        let seconds = started.elapsed().as_secs_f64();
                        eprintln!(
                            "wrote {events} Nexmark events (seed {seed}, {:.1} MB) to kafka topic `{topic}` at {servers} over {partitions} partitions in {seconds:.2} s ({:.0} events/s)",
                            bytes as f64 / 1e6,
                            events as f64 / seconds
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::from(1)
                    }
                }
            }
            _ => {
                eprintln!("error: give --out DIR, or --kafka BROKERS with --topic");
                ExitCode::from(2)
            }
        },
        Command::Bench {
            command:
                BenchCommand::Kafka {
                    bootstrap,
                    events,
                    partitions,
                    rounds,
                    seed,
                },
        } => {
            let spec = sluice_cluster::bench::kafka::KafkaBenchSpec {
                bootstrap,
                events,
                partitions,
                rounds,
                seed,
            };
            match sluice_cluster::bench::kafka::run(&spec) {
                Ok(table) => {
                    println!("{table}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Bench {
            command:
                BenchCommand::Cluster {
                    queries,
                    events,
                    workers,
                    rounds,
                    seed,
                    recovery,
                    latency_seconds,
                    report,
                },
        } => {
            let spec = sluice_cluster::bench::cluster::ClusterBenchSpec {
                queries,
                events,
                workers,
                rounds,
                seed,
                recovery,
                latency_seconds,
                report,
            };
            match sluice_cluster::bench::cluster::run(&spec) {
                Ok(table) => {
                    println!("{table}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Bench {
            command:
                BenchCommand::Nexmark {
                    query,
                    all,
                    latency_seconds,
                    report,
                    plots,
                    plot,
                    events,
                    shards,
                    seed,
                    rate,
                    params,
                    flush_timeout_ms,
                    checkpoint_interval_ms,
                    checkpoint_full_every,
                    checkpoint_unaligned,
                    state_backend,
                    results,
                    sql,
                    rounds,
                    spin_before_park_us,
                    events_file,
                },
        } => {
            if all {
                return match bench_suite::run(&bench_suite::SuiteSpec {
                    events,
                    shards,
                    latency_seconds,
                    flush_timeout_ms,
                    results,
                    report,
                    plots,
                }) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::from(1)
                    }
                };
            }
            // Absolute: the SQL job resolves a relative path against its script.
            let events_file = events_file.map(|p| std::fs::canonicalize(&p).unwrap_or(p));
            let events = match &events_file {
                Some(path) => match bench_nexmark::events_in_file(path) {
                    Ok(events) => events,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
                },
                None => events,
            };
            let spec = bench_nexmark::BenchSpec {
                query: query.unwrap_or_default(),
                events,
                events_file,
                spin_before_park: spin_before_park_us.map(std::time::Duration::from_micros),
                shards,
                seed,
                rate,
                params: params.into_iter().collect(),
                flush_timeout_ms,
                checkpoint_interval_ms,
                checkpoint_full_every: (checkpoint_full_every > 0).then_some(checkpoint_full_every),
                checkpoint_alignment: if checkpoint_unaligned {
                    sluice_engine::checkpoint::BarrierAlignment::Unaligned
                } else {
                    sluice_engine::checkpoint::BarrierAlignment::Aligned
                },
                state_backend,
                sql: false,
            };
            if sql {
                return match bench_nexmark::compare_sql(&spec, rounds, &results) {
                    Ok(summary) => {
                        print!("{summary}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::from(2)
                    }
                };
            }
            match bench_nexmark::run(&spec) {
                Ok(result) => {
                    print!("{}", bench_nexmark::table(&result));
                    let written = bench_nexmark::append_json(&results, &result).and_then(|()| {
                        plot.map_or(Ok(()), |path| bench_plot::write_svg(&path, &result))
                    });
                    if let Err(e) = written {
                        eprintln!("error: {e}");
                        return ExitCode::from(1);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Jobs {
            cluster:
                OptionalCoordinator {
                    coordinator: Some(url),
                    secret_file,
                },
        } => cluster_command(&url, secret_file.as_deref(), |client| {
            let answer = client.request(Method::GET, "/jobs", None)?;
            println!(
                "{:10} {:24} {:10} {:>7} {:>6}  ERROR",
                "ID", "JOB", "STATE", "ATTEMPT", "SHARDS"
            );
            for job in answer["jobs"].as_array().into_iter().flatten() {
                println!(
                    "{:10} {:24} {:10} {:>7} {:>6}  {}",
                    job["id"].as_str().unwrap_or("?"),
                    job["name"].as_str().unwrap_or("?"),
                    job["state"].as_str().unwrap_or("?"),
                    // Value's Display ignores widths; a String's does not.
                    job["attempt"].to_string(),
                    job["shards"].to_string(),
                    job["error"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }),
        Command::Jobs { .. } => {
            for (name, about, _) in sluice_cluster::jobs::REGISTRY {
                println!("{name:24} {about}");
            }
            ExitCode::SUCCESS
        }
        Command::Coordinator { config: path, name } => {
            let loaded = CoordinatorConfig::load(&path).and_then(|mut config| {
                match (name, config.ha.as_mut()) {
                    (Some(name), Some(ha)) => ha.name = name,
                    (Some(_), None) => {
                        return Err(format!(
                            "{}: --name is a name in the leader election: the file has no [ha]",
                            path.display()
                        ))
                    }
                    (None, _) => {}
                }
                Ok(config)
            });
            match loaded.and_then(coordinator::run_coordinator) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Worker {
            coordinator,
            shards,
            name,
            data_address,
            advertise_address,
            no_pin,
            metrics_addr,
            connect_timeout_s,
            drain_timeout_s,
            secret_file,
        } => {
            let stop = match worker::StopSignal::install() {
                Ok(stop) => stop,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            };
            let started = control::load_secret(secret_file.as_deref()).and_then(|secret| {
                worker::run_worker(worker::WorkerOptions {
                    coordinator,
                    shards: shards.unwrap_or_else(sluice_engine::config::available_cpus),
                    name,
                    data_bind: data_address,
                    data_advertise: advertise_address,
                    pin_cpus: !no_pin,
                    connect_timeout: std::time::Duration::from_secs(connect_timeout_s),
                    secret,
                    metrics_address: metrics_addr,
                    exported: Default::default(),
                    stop,
                    drain_timeout: std::time::Duration::from_secs(drain_timeout_s),
                })
            });
            match started {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Submit {
            job,
            restore,
            cluster,
        } => {
            // A local location is named as the cluster's machines see it
            // (the same path on a shared directory).
            let restore = restore.map(|given| absolute_location(&given));
            // Validated here exactly as `run` would: a bad file sends nothing.
            let text = match run::prepare_restoring(&job, restore.as_deref()).and_then(|_| {
                std::fs::read_to_string(&job).map_err(|source| {
                    run::RunError::JobFile(sluice_cluster::job_file::JobFileError::Read {
                        file: job.clone(),
                        source,
                    })
                })
            }) {
                Ok(text) => text,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(e.exit_code() as u8);
                }
            };
            let path = std::path::absolute(&job).unwrap_or(job);
            cluster_command(
                &cluster.coordinator,
                cluster.secret_file.as_deref(),
                |client| {
                    let body = serde_json::json!({
                        "path": path.to_string_lossy(),
                        "text": text,
                        "restore": restore,
                    });
                    let answer = client.request(Method::POST, "/jobs", Some(body))?;
                    println!("{}", answer["id"].as_str().unwrap_or_default());
                    Ok(())
                },
            )
        }
        Command::Status { id, cluster } => cluster_command(
            &cluster.coordinator,
            cluster.secret_file.as_deref(),
            |client| {
                let answer = client.request(Method::GET, &format!("/jobs/{id}"), None)?;
                println!(
                    "{}",
                    serde_json::to_string_pretty(&answer).unwrap_or_default()
                );
                Ok(())
            },
        ),
        Command::Cancel { id, cluster } => cluster_command(
            &cluster.coordinator,
            cluster.secret_file.as_deref(),
            |client| {
                client.request(Method::POST, &format!("/jobs/{id}/cancel"), None)?;
                println!("{id} cancelled");
                Ok(())
            },
        ),
    }
}

/// Runs one request against a coordinator's API; exit 1 if it fails.
fn cluster_command(
    url: &str,
    secret_file: Option<&std::path::Path>,
    request: impl FnOnce(&Client) -> Result<(), ClientError>,
) -> ExitCode {
    let client = control::load_secret(secret_file).and_then(|secret| Client::new(url, &secret));
    match client.map(|client| request(&client).map_err(|e| e.to_string())) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) | Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// A location given on the command line as another machine must read it:
/// `latest`, an id or an `s3://` URL as given, a local path made absolute.
fn absolute_location(given: &str) -> String {
    let plain = given == "latest" || given.parse::<u64>().is_ok();
    if plain || given.starts_with("s3://") {
        return given.to_owned();
    }
    let path = given.strip_prefix("file://").unwrap_or(given);
    std::path::absolute(path)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| given.to_owned())
}
