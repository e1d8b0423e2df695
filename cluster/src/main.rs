//! The `sluice` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sluice_cluster::{nexmark_generate, run};

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
    },
    /// Checks a job file without running it.
    Check { job: PathBuf },
    /// Lists the registered jobs.
    Jobs,
    /// The Nexmark benchmark.
    Nexmark {
        #[command(subcommand)]
        command: NexmarkCommand,
    },
}

#[derive(Subcommand)]
enum NexmarkCommand {
    /// Writes the events the `nexmark` source produces, for checking results
    /// with other tools.
    Generate {
        /// Number of events.
        #[arg(long)]
        events: u64,
        /// Generator seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: nexmark_generate::GenerateFormat,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { job } => match run::run(&job) {
            Ok((file, report)) => {
                eprintln!("{}", run::summary(&file, &report));
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
        Command::Nexmark {
            command:
                NexmarkCommand::Generate {
                    events,
                    seed,
                    format,
                    out,
                },
        } => match nexmark_generate::generate(events, seed, format, &out) {
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
        Command::Jobs => {
            for (name, about, _) in sluice_cluster::jobs::REGISTRY {
                println!("{name:24} {about}");
            }
            ExitCode::SUCCESS
        }
    }
}
