//! One `match` from subcommand to code, and the commands that are infrastructure rather than
//! a role of the order platform (`broker`, `cluster`, `audit`, `completions`).

mod audit;
mod broker;
mod cluster;
mod completions;
mod consume;
mod demo;
mod payments;
mod produce;

use std::process::ExitCode;

use crate::cli::{Cli, Command, ConnectionArgs};
use crate::config::KafkaSettings;
use crate::shutdown::Shutdown;

/// Runs the parsed command line to completion.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let shutdown = Shutdown::listen();
    match cli.command {
        Command::Broker(args) => broker::run(&cli.connection.topic, &args, shutdown).await,
        Command::Produce(args) => {
            let settings = settings(cli.connection)?;
            let outcome = produce::run(&settings, &args, shutdown).await?;
            Ok(exit_code(outcome.succeeded()))
        }
        Command::OrderProcessor(args) => {
            let settings = settings(cli.connection)?;
            consume::order_processor(&settings, &args, shutdown).await
        }
        Command::Analytics(args) => {
            let settings = settings(cli.connection)?;
            consume::analytics(&settings, &args, shutdown).await
        }
        Command::Storage(args) => {
            let settings = settings(cli.connection)?;
            consume::storage(&settings, &args, shutdown).await
        }
        Command::Payments(args) => {
            let settings = settings(cli.connection)?;
            payments::run(&settings, &args, shutdown).await
        }
        Command::Demo(args) => demo::run(cli.connection, &args, shutdown).await,
        Command::Cluster(args) => cluster::run(&cli.connection.topic, args, shutdown).await,
        Command::Audit(args) => audit::run(&cli.connection, args, shutdown).await,
        Command::Completions(args) => completions::run(args.shell),
    }
}

fn settings(connection: ConnectionArgs) -> anyhow::Result<KafkaSettings> {
    Ok(KafkaSettings::new(
        &connection.brokers,
        &connection.topic,
        connection.properties,
    )?)
}

fn exit_code(success: bool) -> ExitCode {
    if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
