//! `orderflow broker`: starts the development broker, says plainly what it is and is not, and
//! serves until Ctrl-C.

use std::process::ExitCode;

use crate::cli::BrokerArgs;
use crate::config::validate_topic;
use crate::kafka::broker::{
    BrokerOptions, DevBroker, Faults, RETENTION_BYTES, RETENTION_MESSAGES, is_local_only,
};
use crate::shutdown::Shutdown;

pub async fn run(
    topic: &str,
    args: &BrokerArgs,
    mut shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    validate_topic(topic)?;
    let options = BrokerOptions {
        listen: args.listen.clone(),
        advertise: args.advertise.clone(),
        topic: topic.to_owned(),
        partitions: args.partitions,
    };
    let mut broker = DevBroker::start(&options).await?;
    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
    let address = broker.advertised().to_owned();
    let client_flag = if address == "localhost:9092" || address == "127.0.0.1:9092" {
        "the default, no -b needed".to_owned()
    } else {
        format!("clients use -b {address}")
    };
    println!("orderflow broker listening on {address} ({client_flag})");
    println!(
        "  what        librdkafka {librdkafka} mock cluster: one broker, real Kafka protocol, in this process"
    );
    println!(
        "  topic       {topic}: {} partitions, created now; other topics are created on first use with 4",
        args.partitions
    );
    println!(
        "  holds       everything in memory, lost when it stops; per partition it drops the oldest \
         messages past {} MB or {} messages",
        RETENTION_BYTES / (1024 * 1024),
        crate::report::human::count(RETENTION_MESSAGES)
    );
    println!(
        "  groups      real group coordination; a rebalance waits for the members' session timeout"
    );
    println!(
        "  front       answers as Kafka 4.1 would: refuses a joiner without the group's protocol, a member's \
         commit to a group nobody joined here (a client of an earlier broker), corrupt batches and invalid topic names; serves DescribeGroups, ListGroups and CreateTopics"
    );
    println!(
        "  unlike      Kafka: a group keeps its first member's protocol (Kafka may switch to another common one); \
         a KIP-848 member cannot join a classic group nor the reverse (Kafka converts the group); \
         compressed batches are checked only to their CRC; transactions are not faithful \
         (aborted records visible to read_committed, transactional offset commits not stored); \
         no DescribeConfigs (kafka-topics --describe fails)"
    );
    if broker.local_addr().ip().is_unspecified() && args.advertise.is_none() {
        println!(
            "  note        listening on all interfaces but advertising {address}: clients on other machines need --advertise <this-host>:{}",
            broker.local_addr().port()
        );
    } else if !is_local_only(broker.local_addr().ip()) {
        println!(
            "  note        reachable from other machines: anyone who can connect can read and write"
        );
    }
    println!(
        "Type `down` (or `down 5` for five seconds) to simulate an outage, `up` to end it; Ctrl-C stops the broker."
    );

    tokio::spawn(outage_commands(broker.faults()));
    broker.serve(shutdown.requested_async()).await;
    println!("broker stopped; its topics and offsets are gone");
    Ok(ExitCode::SUCCESS)
}

/// Reads `down [SECONDS]` and `up` from stdin: the built-in broker's fault injection, for a
/// class (what do producers and consumers do when the broker goes away?) and for the tests.
async fn outage_commands(faults: Faults) {
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    loop {
        let line = match next_command(&mut stdin).await {
            Command::Line(line) => line,
            Command::TooLong(length) => {
                println!("ignored a line of {length} bytes: type `down`, `down SECONDS` or `up`");
                continue;
            }
            Command::NotCommands => {
                println!(
                    "stdin is not a stream of commands (over {} KiB without a line break): \
                     the broker no longer reads it, and serves on",
                    NOT_COMMANDS / 1024
                );
                return;
            }
            Command::End => return,
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            ["down"] => take_down(&faults),
            ["down", seconds] => match outage_length(seconds) {
                Ok(length) => {
                    take_down(&faults);
                    let faults = faults.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(length).await;
                        bring_up(&faults);
                    });
                }
                Err(why) => println!("`down {seconds}`: {why}; the broker stays up"),
            },
            ["up"] => bring_up(&faults),
            _ => println!(
                "unknown command `{}`: type `down`, `down SECONDS` or `up`",
                line.trim()
            ),
        }
    }
}

/// The longest command line kept: `down 3600` is nine bytes. A longer line is counted and
/// dropped as it is read, never held whole: stdin may be anything (`< /dev/zero` once took a
/// broker to 22 GB, reading one endless line).
const LONGEST_COMMAND: usize = 256;

/// Bytes without a line break after which stdin is taken for something other than commands
/// and no longer read (reading it on would spin a core for nothing).
const NOT_COMMANDS: usize = 64 * 1024;

/// What one read of stdin gave.
#[derive(Debug, PartialEq)]
enum Command {
    Line(String),
    TooLong(usize),
    NotCommands,
    End,
}

/// Reads up to the next line break, keeping at most [`LONGEST_COMMAND`] bytes.
async fn next_command(reader: &mut (impl tokio::io::AsyncBufRead + Unpin)) -> Command {
    use tokio::io::AsyncBufReadExt;
    let mut line = Vec::new();
    let mut length = 0usize;
    loop {
        let chunk = match reader.fill_buf().await {
            Ok(chunk) => chunk,
            Err(_) => return Command::End,
        };
        if chunk.is_empty() {
            if length == 0 {
                return Command::End;
            }
            break;
        }
        let (part, used, ends) = match chunk.iter().position(|&b| b == b'\n') {
            Some(at) => (&chunk[..at], at + 1, true),
            None => (chunk, chunk.len(), false),
        };
        let room = LONGEST_COMMAND.saturating_sub(line.len());
        line.extend_from_slice(&part[..part.len().min(room)]);
        length += part.len();
        reader.consume(used);
        if ends {
            break;
        }
        if length > NOT_COMMANDS {
            return Command::NotCommands;
        }
    }
    if length > LONGEST_COMMAND {
        Command::TooLong(length)
    } else {
        Command::Line(String::from_utf8_lossy(&line).into_owned())
    }
}

/// The longest outage `down SECONDS` takes: longer ones are a typo, and `down` without a
/// length lasts until `up` anyway.
const LONGEST_OUTAGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// The length of `down SECONDS`, checked before the broker goes down, so that a length that
/// cannot be slept (`1e20`, `inf`, `-3`) never leaves it down for good.
fn outage_length(seconds: &str) -> Result<std::time::Duration, String> {
    let value: f64 = seconds
        .parse()
        .map_err(|_| "the duration must be a number of seconds, e.g. `down 5`".to_owned())?;
    match std::time::Duration::try_from_secs_f64(value) {
        Ok(length) if !length.is_zero() && length <= LONGEST_OUTAGE => Ok(length),
        _ => Err(format!(
            "the duration must be more than 0 and at most {} seconds (`down` alone lasts until `up`)",
            LONGEST_OUTAGE.as_secs()
        )),
    }
}

fn take_down(faults: &Faults) {
    match faults.down() {
        Ok(()) => println!(
            "broker DOWN: every connection closed, new ones refused; clients retry (type `up` to end the outage)"
        ),
        Err(e) => println!("error: {e}"),
    }
}

fn bring_up(faults: &Faults) {
    match faults.up() {
        Ok(()) => println!("broker UP: accepting connections again; nothing it held was lost"),
        Err(e) => println!("error: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(input: &[u8]) -> Vec<Command> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut reader = tokio::io::BufReader::with_capacity(16, input);
            let mut read = Vec::new();
            loop {
                // As outage_commands does: no more reading after the end or NotCommands.
                match next_command(&mut reader).await {
                    Command::End => return read,
                    Command::NotCommands => {
                        read.push(Command::NotCommands);
                        return read;
                    }
                    command => read.push(command),
                }
            }
        })
    }

    #[test]
    fn commands_are_read_a_line_at_a_time_and_long_lines_are_never_held() {
        let long = format!("down {}\nup", "9".repeat(1000));
        assert_eq!(
            commands(long.as_bytes()),
            vec![Command::TooLong(1005), Command::Line("up".to_owned())]
        );
        assert_eq!(
            commands(b"down 5\n\nup\n"),
            vec![
                Command::Line("down 5".to_owned()),
                Command::Line(String::new()),
                Command::Line("up".to_owned())
            ]
        );
        let zeros = vec![0u8; NOT_COMMANDS + 100];
        assert_eq!(commands(&zeros), vec![Command::NotCommands]);
    }

    #[test]
    fn an_outage_length_is_checked_before_the_broker_goes_down() {
        assert_eq!(outage_length("5"), Ok(std::time::Duration::from_secs(5)));
        assert_eq!(
            outage_length("0.5"),
            Ok(std::time::Duration::from_millis(500))
        );
        assert_eq!(outage_length("3600"), Ok(LONGEST_OUTAGE));
        for bad in ["1e20", "inf", "NaN", "-3", "0", "3601", "five", ""] {
            assert!(outage_length(bad).is_err(), "{bad}");
        }
    }
}
