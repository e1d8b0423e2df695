//! The `sluice` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sluice_cluster::run;

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
        Command::Jobs => {
            for (name, about, _) in sluice_cluster::jobs::REGISTRY {
                println!("{name:24} {about}");
            }
            ExitCode::SUCCESS
        }
    }
}
