//! The command line (clap derive). Names and defaults are a contract with scripts and docs
//! (design.md); each flag's doc comment is its `--help` text.
//!
//! Here: the top level, the subcommands with their help, and parsing. Each command's flags
//! live in a file of their own: [`connection`] (`-b`/`-t`/`-X`, every subcommand),
//! [`consumer`] (the consumer roles), [`metrics`] (`--metrics`), [`produce`] (`produce`, `demo`, `broker`), [`cluster`],
//! [`audit`].

mod audit;
mod cluster;
mod connection;
mod consumer;
mod metrics;
mod payments;
mod produce;

use clap::{Args, Parser, Subcommand};

use crate::roles::registry;
pub use audit::{
    AuditArgs, AuditCommand, AuditFileArgs, AuditOrderArgs, AuditPaymentsArgs, AuditTailArgs,
    AuditVerifyArgs,
};
pub use cluster::{
    ClusterArgs, ClusterCommand, ClusterNodeArgs, ClusterStartArgs, ClusterStatusArgs,
    ClusterStopArgs,
};
pub use connection::ConnectionArgs;
pub use consumer::{AnalyticsArgs, ConsumerArgs, OrderProcessorArgs, StorageArgs};
pub use metrics::MetricsArgs;
pub use payments::PaymentsArgs;
pub use produce::{BrokerArgs, DemoArgs, ProduceArgs};

const ABOUT: &str = "A Kafka teaching toolkit: one binary plays every role of an order platform, \
each in its own terminal, so you can watch Kafka work.";

const LONG_ABOUT: &str = "\
A Kafka teaching toolkit: one binary plays every role of an order platform, each in its own
terminal, so you can watch fan-out, consumer groups, rebalancing, lag, ordering by key and
offset commits happen live.

  orderflow produce ──► topic order-events (3 partitions, key = order_id)
                            ├──► orderflow order-processor   (group order-processor)
                            ├──► orderflow analytics         (group analytics)
                            └──► orderflow storage           (group storage, audit log file)

Every subcommand talks to the cluster given by -b (default localhost:9092) and the topic given
by -t (default order-events). `orderflow broker` runs a development broker there, no Docker or
Java needed. For real Apache Kafka, `orderflow cluster start` runs one or three KRaft nodes on
this machine from Apache's jars (Java 17, no Docker), and docker/ in the repository has Compose
files (one broker, or a three-broker cluster for failover).";

const EXAMPLES: &str = "\
Examples:
  orderflow broker                              # terminal 1: a broker on localhost:9092
  orderflow produce --rate 20                   # terminal 2: 20 order events per second
  orderflow order-processor                     # terminals 3, 4, 5: the consumer roles
  orderflow analytics
  orderflow storage
  orderflow produce --stdout --count 5 --seed 1 | jq .
  orderflow audit verify order-events.audit.jsonl   # what storage wrote, checked
  orderflow -b kafka.example.com:9092 -X security.protocol=SASL_SSL \\
      -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=me -X sasl.password=… produce
  orderflow cluster start --nodes 3             # real Apache Kafka, no Docker (Java 17)
  orderflow completions bash > ~/.local/share/bash-completion/completions/orderflow";

#[derive(Debug, Parser)]
#[command(
    name = "orderflow",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a development Kafka broker in this terminal (no Docker, no Java)
    #[command(
        long_about = "\
Run a development Kafka broker in this terminal: librdkafka's mock cluster, which speaks the
real Kafka protocol and runs real consumer-group coordination, kept in memory. Any
librdkafka-based client (orderflow, kcat, confluent-kafka) can use it. The topic (-t) is
created at start with --partitions partitions.

It is for learning and tests, not for keeping data: everything is lost when it stops, and it
drops the oldest messages of a partition past 5 MB or 100,000 messages. The mock lacks
ListGroups, DescribeGroups and CreateTopics; the front before it answers them as Kafka 4.1 does,
so kafka-consumer-groups and kafka-topics --create work (kafka-topics --describe does not: no
DescribeConfigs). It refuses -b (that names brokers to connect to; the address it listens on is
--listen) and ignores -X.

Outages on demand: type `down` in its terminal (or `down 5` for five seconds) and it closes
every connection and refuses new ones, as a crashed broker would, keeping its data; `up` ends
the outage. Producers keep events in memory and deliver them when it is back; consumers resume
where they committed.",
        after_help = "\
Examples:
  orderflow broker                                   # localhost:9092, topic order-events
  orderflow broker --listen 127.0.0.1:9093 --partitions 6
  orderflow broker --listen 0.0.0.0:9092 --advertise 192.168.1.20:9092   # for a classroom"
    )]
    Broker(BrokerArgs),

    /// Generate realistic order events onto the topic
    #[command(
        long_about = "\
Generate realistic order events onto the topic: a pool of open orders, new ones arriving, each
moving PLACED → CONFIRMED → SHIPPED → DELIVERED after a random delay. The key is the order_id,
so all events of an order land in one partition, in order.

Every delivery is accounted for: Ctrl-C (or SIGTERM) stops generating and waits for the events
in flight; a second Ctrl-C abandons them. The last line says how many were delivered and how
many failed, and the exit status is 1 if any failed. Events not acknowledged within
message.timeout.ms (30 s unless set with -X) count as failed, and the first failure stops the
generator: what it would send next would fail the same way.",
        after_help = "\
Examples:
  orderflow produce                          # 10 events/s until Ctrl-C
  orderflow produce --rate 200 --count 1000  # 1000 events, then exit
  orderflow produce --rate 0 --count 100000  # as fast as the broker takes them
  orderflow produce --stdout --count 5 --seed 1 | jq .
  orderflow produce --stdout --rate 5 | kcat -b localhost:9092 -t order-events -P"
    )]
    Produce(ProduceArgs),

    #[command(
        name = "order-processor",
        about = registry::ORDER_PROCESSOR.about,
        long_about = "\
Follow every order through PLACED → CONFIRMED → SHIPPED → DELIVERED and report what breaks a
lifecycle: a skipped step, a step backwards, a duplicate, an order whose first event is not
PLACED. Malformed records and violations are copied to the dead-letter topic <topic>.dlq with
headers saying why and where they came from (orderflow.reason, orderflow.error,
orderflow.source.topic/partition/offset/timestamp, orderflow.group); the processor never stops
on them.

An order's events share a key, so they share a partition, and the order's state belongs to
that partition: when this member is given a partition, it first rebuilds the state of its
orders from the partition's history, so a rebalance never causes false violations.

Offsets are committed only after a record is processed and its dead letter (if any) is
acknowledged: nothing is lost if the processor crashes; at worst a few records are processed
again.",
        after_help = "\
Examples:
  orderflow order-processor                       # group order-processor
  orderflow order-processor --work-ms 200         # slow: at most 5 records/s, lag grows
  orderflow order-processor -g replay-1 --exit-at-end --json   # a new group reads everything"
    )]
    OrderProcessor(OrderProcessorArgs),

    #[command(
        about = registry::ANALYTICS.about,
        long_about = "\
Count what the shop does: events per status and per source, orders completed (DELIVERED) and
in flight, malformed records, events per second. Run a second `orderflow analytics` to see the
two members of the group split the partitions; stop one and the other takes them over.

In a terminal it opens the live view: the counters, events per second over the last minute,
this member's partitions with their offsets and lag, every group reading the topic with its
members and lag, and the rebalances as they happen. Keys: p pause/resume (lag grows), ? help,
q quit. --no-tui (or a pipe) gives plain text; --json gives JSON Lines.",
        after_help = "\
Examples:
  orderflow analytics                             # group analytics
  orderflow analytics                             # again, in another terminal: they share
  orderflow analytics -g analytics-2              # a second group: it gets every event too
  orderflow analytics --exit-at-end --json | jq 'select(.type == \"summary\")'"
    )]
    Analytics(AnalyticsArgs),

    #[command(
        about = registry::STORAGE.about,
        long_about = "\
Append every record to the audit log (JSON Lines: topic, partition, offset, key, the Kafka
timestamp, the time it was stored, and either the parsed event or the raw bytes with the
error; see docs/audit-log.md). A record's offset is committed only after its line is written
and fsynced. On start, the last stored offset of each partition is read from the end of the
file and records already there are skipped, so a crash never duplicates or loses a line; a
torn last line left by a crash is reported and cut off. A second storage process on the same
file is refused.",
        after_help = "\
Examples:
  orderflow storage                               # writes order-events.audit.jsonl
  orderflow storage --file /tmp/audit.jsonl
  kill -9 <pid>; orderflow storage                # resumes; nothing lost, nothing twice"
    )]
    Storage(StorageArgs),

    #[command(
        about = registry::PAYMENTS.about,
        long_about = "\
A read-process-write stage: read order events, decide (seeded, --decline-rate) whether each
PLACED order's payment is approved or declined, and produce a payment event (JSON, key
order_id; docs/payments.md) to --out-topic. Other statuses are skipped.

--semantics says when the input offsets are committed, which is what a crash (kill -9) shows:
  at-most-once   commit, then produce: a crash in between loses payments, never repeats one
  at-least-once  produce and wait for delivery, then commit: a crash repeats, never loses
  exactly-once   payments and offsets in one Kafka transaction: each payment once, for
                 readers with isolation.level=read_committed
`orderflow audit payments` counts, per semantics, the orders lost and paid twice. The built-in
broker's transactions are not faithful, so exactly-once refuses to run on it.",
        after_help = "\
Examples:
  orderflow payments --semantics exactly-once -g payments-eos
  kill -9 <pid>; orderflow payments --semantics exactly-once -g payments-eos
  orderflow audit payments"
    )]
    Payments(PaymentsArgs),

    /// The whole platform in one terminal: a broker, a producer, the three roles, the view
    #[command(
        long_about = "\
The whole order platform in one terminal: a development broker, a producer (about 20 events
per second), order-processor, analytics and storage, each in its own consumer group, and the
live view with a panel per role, the groups reading the topic and the rebalances.

Other terminals can join in: the broker listens on --listen (127.0.0.1:9092 when free, a free
port otherwise; the status line shows it), so `orderflow analytics` in a second terminal
joins the analytics group and the view shows the partitions move. The storage role writes its
audit log to the temporary directory; the path is printed when the demo ends.

With -b (or ORDERFLOW_BROKERS) the demo starts no broker: the producer and the three roles
run against that cluster, real Kafka for example, and --listen does not apply.",
        after_help = "\
Examples:
  orderflow demo                     # q quits, p pauses the selected role, tab selects
  orderflow demo --rate 200
  orderflow -b 127.0.0.1:19092 demo  # the platform on a real cluster, no built-in broker
  orderflow demo --no-tui            # plain text from every role, Ctrl-C stops"
    )]
    Demo(DemoArgs),

    /// Start, crash, restart and stop a real Apache Kafka on this machine (Java 17, no Docker)
    #[command(
        long_about = "\
Run real Apache Kafka (KRaft mode: no ZooKeeper) on this machine from Apache's jars, with Java
17 or newer and no Docker: one node, or three for the failover lessons (every partition
replicated three times, a write accepted once two replicas have it, so one broker may die
without losing anything). The nodes listen on 127.0.0.1 only and keep running in the background
after `cluster start` returns; later `cluster` commands find them again through the cluster's
folder (--dir), where their data, logs (nodeN/server.log) and cluster.json live. The commands
below are listed from the subcommands themselves; `orderflow cluster help COMMAND` says more.

Node N serves clients on port P+N-1 and its controller on P+100+N-1 (P: --port, 19092).

Kafka is found, in this order: --kafka PATH (an unpacked Apache download), ORDERFLOW_KAFKA_LIBS
(a folder of Kafka's jars), $KAFKA_HOME/libs, ../shared/kafka/libs beside the current folder
or the repository of this binary. Get it from kafka.apache.org/downloads (kafka_2.13-4.1.0.tgz,
the version docker/ runs). -b and -X do not apply here: the cluster is on its own ports.",
        after_help = "\
Examples:
  orderflow cluster start                            # one node on 127.0.0.1:19092
  export ORDERFLOW_BROKERS=127.0.0.1:19092           # then every command uses it without -b
  orderflow cluster start --nodes 3                  # 127.0.0.1:19092,19093,19094
  orderflow cluster status                           # who leads each partition, who is in sync
  orderflow cluster kill 2; orderflow cluster status # a broker crash: leaders move
  orderflow cluster restart 2
  orderflow cluster stop --wipe
  orderflow cluster start --kafka ~/kafka_2.13-4.1.0 --dir /tmp/k1 --port 29092"
    )]
    Cluster(ClusterArgs),

    /// Inspect an audit log: summary, verify, one order's history, tail (no Kafka needed)
    #[command(
        long_about = "\
Inspect an audit log written by `orderflow storage` (docs/audit-log.md). Reads the file only;
no Kafka needed.

  summary    what it holds: counts by status, source and partition, the time span, complete
             and in-flight orders, malformed records by kind
  verify     whether it is sound: every line an audit line, offsets contiguous in every
             partition, no record stored twice, every order's lifecycle valid. Exit status 1
             and the line of each problem otherwise
  order ID   one order's history, line by line, and whether its lifecycle is valid
  tail       the last lines, one per line; -f follows the file as storage appends to it

FILE defaults to <topic>.audit.jsonl (order-events.audit.jsonl), the file storage writes by
default. Every subcommand takes --json for scripts.",
        after_help = "\
Examples:
  orderflow audit summary                                  # order-events.audit.jsonl
  orderflow audit verify order-events.audit.jsonl && echo sound
  orderflow audit order 6f1c0a52 order-events.audit.jsonl  # the first 8 characters will do
  orderflow audit tail -f                                  # Ctrl-C stops
  orderflow audit verify --json | jq -c '.problems[]'"
    )]
    Audit(AuditArgs),

    /// Print a tab-completion script for your shell (bash, zsh, fish, powershell, elvish)
    #[command(
        long_about = "\
Print a script that teaches your shell to complete orderflow's subcommands and flags with the
Tab key: `orderflow or<Tab>` becomes `orderflow order-processor`, `--ex<Tab>` becomes
`--exit-at-end`. The script goes to stdout; install it once where your shell looks for
completions, then open a new shell.

  bash        mkdir -p ~/.local/share/bash-completion/completions
              orderflow completions bash > ~/.local/share/bash-completion/completions/orderflow
              (that directory needs the bash-completion package; without it, add this line
              to ~/.bashrc instead: source <(orderflow completions bash))
  zsh         mkdir -p ~/.zfunc && orderflow completions zsh > ~/.zfunc/_orderflow
              and in ~/.zshrc, before compinit runs: fpath=(~/.zfunc $fpath)
              (no compinit in ~/.zshrc yet? add: autoload -Uz compinit && compinit)
  fish        orderflow completions fish > ~/.config/fish/completions/orderflow.fish
  powershell  orderflow completions powershell | Out-String | Invoke-Expression
              (add that line to $PROFILE to keep it)
  elvish      add to ~/.config/elvish/rc.elv: eval (orderflow completions elvish | slurp)

Run it again after upgrading orderflow, so new flags complete too.",
        after_help = "\
Examples:
  orderflow completions bash > ~/.local/share/bash-completion/completions/orderflow
  orderflow completions zsh > ~/.zfunc/_orderflow
  orderflow completions fish > ~/.config/fish/completions/orderflow.fish
  source <(orderflow completions bash)        # this shell only, to try it"
    )]
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print the completion script for
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// Parses the process's arguments as [`Cli`], exiting with clap's message on a usage error.
/// A Kafka tool's name typed as a subcommand (`orderflow kafka-topics --list`) gets a message
/// saying what it is: clap would suggest a subcommand that merely sounds alike (`analytics`).
pub fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let parsed = Cli::command().try_get_matches().and_then(|matches| {
        if let Some(message) = brokers_given_to_the_broker(&matches) {
            eprintln!("{message}");
            std::process::exit(2);
        }
        let mut cli = Cli::from_arg_matches(&matches)?;
        cli.connection.brokers_given = brokers_given(&matches);
        Ok(cli)
    });
    match parsed {
        Ok(cli) => cli,
        Err(error) => {
            if let Some(message) = kafka_tool_typed_as_subcommand(&error) {
                eprintln!("{message}");
                std::process::exit(2);
            }
            error.exit()
        }
    }
}

/// Whether `-b` (before or after the subcommand) or ORDERFLOW_BROKERS set the brokers.
fn brokers_given(matches: &clap::ArgMatches) -> bool {
    use clap::parser::ValueSource;
    let given = |m: &clap::ArgMatches| {
        matches!(
            m.value_source("brokers"),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    given(matches) || matches.subcommand().is_some_and(|(_, sub)| given(sub))
}

/// The message for `orderflow broker -b ADDRESS`: -b names brokers to connect to, and the
/// broker would otherwise listen on its default 127.0.0.1:9092 while the user believes it is
/// on ADDRESS (two brokers of a class then collide on 9092). ORDERFLOW_BROKERS is not
/// refused: it is set for the clients of a shell, which may also start a broker.
fn brokers_given_to_the_broker(matches: &clap::ArgMatches) -> Option<String> {
    use clap::parser::ValueSource;
    let typed = |m: &clap::ArgMatches| {
        (m.value_source("brokers") == Some(ValueSource::CommandLine))
            .then(|| m.get_one::<String>("brokers").cloned())
            .flatten()
    };
    let (name, sub) = matches.subcommand()?;
    if name != "broker" {
        return None;
    }
    let address = typed(sub).or_else(|| typed(matches))?;
    let listen = crate::report::human::shell_word(&address);
    Some(format!(
        "error: `orderflow broker` takes no -b: -b names the brokers a client connects to. \
         To listen on {}, run `orderflow broker --listen {listen}`; clients then use -b {listen}.",
        crate::report::human::without_hidden(&address)
    ))
}

/// The message for a usage error whose unknown subcommand is one of Kafka's own tools.
fn kafka_tool_typed_as_subcommand(error: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if error.kind() != ErrorKind::InvalidSubcommand {
        return None;
    }
    let Some(ContextValue::String(word)) = error.get(ContextKind::InvalidSubcommand) else {
        return None;
    };
    let tool = word.trim_end_matches(".sh");
    if !(tool.starts_with("kafka-") || tool == "kcat" || tool == "kafkacat") {
        return None;
    }
    let commands: Vec<String> = <Cli as clap::CommandFactory>::command()
        .get_subcommands()
        .filter(|c| c.get_name() != "help")
        .map(|c| c.get_name().to_owned())
        .collect();
    Some(format!(
        "error: `{word}` is not an orderflow command: it is a tool of its own ({}), run it \
         by itself, e.g. `{tool} --bootstrap-server localhost:9092 …`.\n  orderflow's \
         commands: {} (`orderflow --help`). The live view shows what kafka-consumer-groups \
         would: every group reading the topic, its members and the lag.",
        if tool.starts_with("kafka-") {
            "Apache Kafka's, in the bin/ folder of its download"
        } else {
            "kcat"
        },
        commands.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_kafka_tool_typed_as_a_subcommand_is_named_as_such() {
        let error = Cli::try_parse_from(["orderflow", "kafka-topics", "--list"]).unwrap_err();
        let message = kafka_tool_typed_as_subcommand(&error).expect("a Kafka tool");
        assert!(
            message.contains("`kafka-topics` is not an orderflow command"),
            "{message}"
        );
        assert!(!message.contains("similar"), "{message}");
        let error = Cli::try_parse_from(["orderflow", "analytic"]).unwrap_err();
        assert_eq!(
            kafka_tool_typed_as_subcommand(&error),
            None,
            "clap's tip is right here"
        );
    }

    #[test]
    fn the_brokers_count_as_given_from_the_command_line_either_side_of_the_subcommand() {
        let given = |args: &[&str]| {
            let matches = <Cli as clap::CommandFactory>::command()
                .try_get_matches_from(args)
                .unwrap();
            brokers_given(&matches)
        };
        assert!(given(&["orderflow", "-b", "k:1", "demo"]));
        assert!(given(&["orderflow", "demo", "-b", "k:1"]));
        if std::env::var_os("ORDERFLOW_BROKERS").is_none() {
            assert!(!given(&["orderflow", "demo"]));
        }
    }

    #[test]
    fn the_broker_refuses_b_and_points_to_listen() {
        let refused = |args: &[&str]| {
            let matches = <Cli as clap::CommandFactory>::command()
                .try_get_matches_from(args)
                .unwrap();
            brokers_given_to_the_broker(&matches)
        };
        for args in [
            &["orderflow", "broker", "-b", "127.0.0.1:22092"][..],
            &["orderflow", "-b", "127.0.0.1:22092", "broker"][..],
        ] {
            let message = refused(args).expect("refused");
            assert!(
                message.contains("run `orderflow broker --listen 127.0.0.1:22092`"),
                "{message}"
            );
        }
        assert_eq!(
            refused(&["orderflow", "broker", "--listen", "127.0.0.1:0"]),
            None
        );
        assert_eq!(
            refused(&["orderflow", "produce", "-b", "127.0.0.1:22092"]),
            None
        );
    }

    #[test]
    fn global_options_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "orderflow",
            "produce",
            "-b",
            "k:1",
            "-t",
            "x",
            "-X",
            "a=b",
            "-X",
            "c=d",
        ])
        .unwrap();
        assert_eq!(cli.connection.brokers, "k:1");
        assert_eq!(cli.connection.topic, "x");
        assert_eq!(cli.connection.properties.len(), 2);
    }
}
