//! The command line (clap derive). Names and defaults are a contract with scripts and docs
//! (design.md); each flag's doc comment is its `--help` text.

use clap::{Args, Parser, Subcommand};

use crate::audit::order::OrderQuery;
use crate::config::{Property, parse_property};

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

/// Where the Kafka cluster is; accepted by every subcommand.
#[derive(Debug, Args)]
#[command(next_help_heading = "Connection (every subcommand)")]
pub struct ConnectionArgs {
    /// Kafka bootstrap servers, comma-separated
    #[arg(
        short = 'b',
        long,
        global = true,
        env = "ORDERFLOW_BROKERS",
        default_value = "localhost:9092",
        value_name = "HOST:PORT,..."
    )]
    pub brokers: String,

    /// Topic the order events flow through
    #[arg(
        short = 't',
        long,
        global = true,
        env = "ORDERFLOW_TOPIC",
        default_value = "order-events",
        value_name = "NAME"
    )]
    pub topic: String,

    /// A librdkafka property, repeatable, as in kcat (security, SASL, SSL, tuning).
    /// Secrets such as sasl.password are never printed
    #[arg(
        short = 'X',
        global = true,
        value_name = "KEY=VALUE",
        value_parser = parse_property
    )]
    pub properties: Vec<Property>,

    /// Whether -b or ORDERFLOW_BROKERS named the cluster (rather than the default): the demo
    /// then runs against that cluster instead of starting a broker of its own.
    #[arg(skip)]
    pub brokers_given: bool,
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
drops the oldest messages of a partition past 5 MB or 100,000 messages. It does not implement
ListGroups, DescribeGroups or CreateTopics, so admin tools such as kafka-consumer-groups do not
work against it. -b and -X do not apply to it.

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

    /// Follow every order's lifecycle; send malformed records and violations to <topic>.dlq
    #[command(
        name = "order-processor",
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

    /// Count events per status and source, completed and in-flight orders, malformed records
    #[command(
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

    /// Append every record to an audit log file, exactly once, even across crashes
    #[command(
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
folder (--dir), where their data, logs (nodeN/server.log) and cluster.json live.

  start       format and start the nodes, create the topic (-t, order-events) with 3 partitions
              and its dead-letter topic <topic>.dlq; prints the bootstrap address for -b
  status      each node up or down; the leader and in-sync replicas of every partition
  kill N      kill node N with SIGKILL: a broker crash, data kept
  restart N   start node N again with its data
  stop        stop every node cleanly (--wipe also deletes the folder's data and logs)

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
pub struct ClusterArgs {
    /// The cluster's folder: its nodes' data, logs and cluster.json [default:
    /// $XDG_STATE_HOME/orderflow/cluster, or ~/.local/state/orderflow/cluster]
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,

    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start the cluster (or start it again with its data) and create the topics
    #[command(
        long_about = "\
Format the storage of --nodes nodes in --dir, start them, wait until each has started and
registered, then create the topic (-t, order-events) with 3 partitions and its dead-letter
topic <topic>.dlq (on three nodes: replication factor 3, min.insync.replicas 2). Prints the
bootstrap address and what to type next. The nodes keep running after this command returns;
Ctrl-C while they start stops them again.

A folder holds one cluster. Run on a folder whose cluster is stopped, start brings the same
nodes back with their data (topics, offsets); on a running one it says so and changes nothing.
Every port is checked before anything starts: a taken one is named.",
        after_help = "\
Examples:
  orderflow cluster start
  orderflow cluster start --nodes 3
  orderflow cluster start --dir /tmp/k1 --port 29092
  orderflow cluster start --kafka ~/kafka_2.13-4.1.0"
    )]
    Start(ClusterStartArgs),

    /// Stop every node cleanly; --wipe also deletes the data and logs
    #[command(after_help = "\
Examples:
  orderflow cluster stop            # data kept: `cluster start` brings it back
  orderflow cluster stop --wipe     # a fresh cluster next time")]
    Stop(ClusterStopArgs),

    /// Kill node N with SIGKILL, as a crash (its data is kept)
    #[command(
        long_about = "\
Kill node N's JVM with SIGKILL: a broker crash, no clean shutdown. Its data stays on disk.
With three nodes, watch the partitions it led get new leaders and the in-sync replica lists
shrink (`cluster status`); producers and consumers carry on. `cluster restart N` brings it
back.",
        after_help = "\
Examples:
  orderflow cluster kill 2 && orderflow cluster status"
    )]
    Kill(ClusterNodeArgs),

    /// Start node N again with its data, after a kill
    #[command(
        long_about = "\
Start node N again with its data, after `cluster kill N`. Within about 9 s of the kill it
takes longer than a first start: the controller keeps a killed broker's registration until its
session times out (broker.session.timeout.ms, 9 s) and refuses the new one until then, which
the progress lines show. On three nodes it then copies what it missed from the leaders and rejoins each
partition's in-sync replicas.",
        after_help = "\
Examples:
  orderflow cluster restart 2 && orderflow cluster status   # node 2 back in every ISR"
    )]
    Restart(ClusterNodeArgs),

    /// Each node up or down, and the leader and in-sync replicas of each partition
    #[command(
        long_about = "\
Each node: up or down, its pid, address and log file. When a node is up, the topic's (-t)
partitions as the cluster reports them: the leader, the replicas and the in-sync replicas
(ISR). Right after a kill the cluster may still name the dead node for a few seconds, until
its controller notices (broker.session.timeout.ms, 9 s).",
        after_help = "\
Examples:
  orderflow cluster status
  orderflow cluster status --json | jq -r .bootstrap"
    )]
    Status(ClusterStatusArgs),
}

#[derive(Debug, Args)]
pub struct ClusterStartArgs {
    /// How many nodes: 1, or 3 for replication and failover [default: 1, or the folder's
    /// cluster's]
    #[arg(long, value_name = "1|3", value_parser = parse_nodes)]
    pub nodes: Option<usize>,

    /// The first client port: node N uses P+N-1 for clients and P+100+N-1 for its
    /// controller [default: 19092, or the folder's cluster's]
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// An unpacked Apache Kafka download (the folder holding libs/), or a folder of its jars
    #[arg(long, value_name = "PATH")]
    pub kafka: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ClusterStopArgs {
    /// Also delete the cluster's data and logs (its nodeN folders and cluster.json)
    #[arg(long)]
    pub wipe: bool,
}

#[derive(Debug, Args)]
pub struct ClusterNodeArgs {
    /// The node: 1, or 1 to 3 on a three-node cluster
    #[arg(value_name = "N")]
    pub node: usize,
}

#[derive(Debug, Args)]
pub struct ClusterStatusArgs {
    /// One JSON object for scripts: dir, bootstrap, nodes, topic with its partitions
    #[arg(long)]
    pub json: bool,
}

fn parse_nodes(arg: &str) -> Result<usize, String> {
    match arg {
        "1" => Ok(1),
        "3" => Ok(3),
        // Two KRaft voters cannot elect a controller when one dies, so two nodes would teach
        // nothing a single node does not; four or more need nothing three cannot show.
        _ => Err(format!(
            "\"{arg}\": a cluster has 1 node, or 3 for replication and failover"
        )),
    }
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print the completion script for
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Events per second the producer sends; 0 sends as fast as the broker takes them
    #[arg(
        long,
        default_value = "20",
        value_name = "EVENTS/S",
        value_parser = parse_rate,
        allow_negative_numbers = true
    )]
    pub rate: f64,

    /// Address of the demo's broker; if it is taken, a free port is used instead
    #[arg(long, default_value = "127.0.0.1:9092", value_name = "HOST:PORT")]
    pub listen: String,

    /// Plain text from every role instead of the live view
    #[arg(long)]
    pub no_tui: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Counts by status, source and partition, time span, complete and in-flight orders
    #[command(
        long_about = "\
What the log holds, in one pass: lines and records; events per status and per source; per
partition the records and the first and last offset; the span of the Kafka timestamps and of
the times the lines were stored; orders complete (DELIVERED) and in flight; malformed records by
kind; lines that are not audit lines. It judges nothing: `verify` does.",
        after_help = "\
Examples:
  orderflow audit summary
  orderflow audit summary /tmp/audit.jsonl
  orderflow audit summary --json | jq .statuses"
    )]
    Summary(AuditFileArgs),

    /// Check the log; name the line of every problem and exit 1 if there is any
    #[command(
        long_about = "\
Check that the log is what storage promises, and name the line of every problem:
  - a line that is not an audit line (and why); a torn last line, left by a crash while
    writing, is reported as such (storage removes it when it starts again);
  - per topic and partition: a gap (offsets missing between two consecutive stored offsets), a
    record stored twice (both lines), an offset below one stored before it;
  - an event that breaks its order's lifecycle (order id, statuses, lines).
A partition's log may start above offset 0 (retention, or a group that started late): that is
said, not counted as a problem, and so are orders whose earlier events precede the log.
Malformed records stored as such are counted as information.
With --against-topic the log is also compared with the topic on -b/-t: records Kafka still
holds that the log lacks (before a partition's first line, after its last, or a partition
without any line) are problems. Run it once storage has caught up (its lag is 0).

Exit status: 0 when the log is sound, 1 when there is any problem or the file cannot be read.
Memory stays flat however large the log is, apart from 32 bytes per order.",
        after_help = "\
Examples:
  orderflow audit verify
  orderflow audit verify /tmp/audit.jsonl || echo \"the log has problems\"
  orderflow audit verify --json | jq -c '.problems[] | select(.kind == \"gap\")'
  orderflow audit verify --against-topic -b localhost:9092 -t order-events"
    )]
    Verify(AuditVerifyArgs),

    /// One order's history: every line of it, and whether its lifecycle is valid
    #[command(
        long_about = "\
One order's history in file order: for every line of it the status, the event time, the
partition and offset, when it was stored, and whether the step keeps the lifecycle
PLACED → CONFIRMED → SHIPPED → DELIVERED valid. Malformed records keyed by the order's id are
shown too. ID is the whole order id or its start (at least the 8 characters tail and the
roles show). Exit status 1 when no line is about the order.",
        after_help = "\
Examples:
  orderflow audit order 6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10
  orderflow audit order 6f1c0a52 /tmp/audit.jsonl
  orderflow audit order 6f1c0a52 --json | jq -r '.history[] | \"\\(.offset) \\(.status)\"'"
    )]
    Order(AuditOrderArgs),

    /// The last lines, one per line; -f follows the file as it grows
    #[command(
        long_about = "\
The last lines of the log, one per line: the record's time (its Kafka timestamp, UTC),
partition@offset, the order's first 8 characters, status and source; or MALFORMED and why.
With -f it keeps going: lines appended later are shown as they arrive (the file is polled a few
times a second), a truncated file is followed from its start, and so is a new file at the same
path. Ctrl-C ends it, with exit status 0.

With --json the audit lines themselves are printed, unchanged, one per line; lines that are not
audit lines and notices go to stderr.",
        after_help = "\
Examples:
  orderflow audit tail                             # the last 10 lines
  orderflow audit tail -n 50 /tmp/audit.jsonl
  orderflow audit tail -f                          # and every line storage appends
  orderflow audit tail -f --json | jq -c 'select(.error_kind)'   # malformed records as they come"
    )]
    Tail(AuditTailArgs),
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    #[command(flatten)]
    pub log: AuditFileArgs,

    /// Also compare the log with the topic on -b/-t: records Kafka still holds that the log
    /// lacks, before a partition's first line or after its last, are problems
    #[arg(long)]
    pub against_topic: bool,
}

/// The file, and the output format.
#[derive(Debug, Args)]
pub struct AuditFileArgs {
    /// The audit log [default: <topic>.audit.jsonl, so order-events.audit.jsonl]
    #[arg(value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,

    /// Print JSON for scripts instead of text (docs/audit-log.md describes it)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AuditOrderArgs {
    /// The order id, or its first characters (at least 8)
    #[arg(value_name = "ID")]
    pub id: OrderQuery,

    #[command(flatten)]
    pub log: AuditFileArgs,
}

#[derive(Debug, Args)]
pub struct AuditTailArgs {
    /// How many of the last lines to show
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 10)]
    pub lines: u64,

    /// Keep following the file: show lines as they are appended, until Ctrl-C
    #[arg(short = 'f', long)]
    pub follow: bool,

    #[command(flatten)]
    pub log: AuditFileArgs,
}

/// Options every consumer role has.
#[derive(Debug, Args)]
pub struct ConsumerArgs {
    /// Consumer group to join [default: the role's name]. A new group starts at the
    /// earliest offset
    #[arg(short = 'g', long, value_name = "ID")]
    pub group: Option<String>,

    /// Stop once every assigned partition is read to its end (after committing), as kcat -e
    #[arg(long)]
    pub exit_at_end: bool,

    /// JSON Lines on stdout, one object per line with a "type": joined, assigned, revoked,
    /// committed, commit_failed, connection, malformed, violation, notice, paused, summary,
    /// left (docs/consumer-output.md)
    #[arg(long)]
    pub json: bool,

    /// Plain text instead of the live view, even in a terminal (the view is never used when
    /// stdout is not a terminal)
    #[arg(long)]
    pub no_tui: bool,
}

#[derive(Debug, Args)]
pub struct OrderProcessorArgs {
    #[command(flatten)]
    pub consumer: ConsumerArgs,

    /// Simulated work per record, in milliseconds, to make the processor slow and its lag grow
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub work_ms: u64,
}

#[derive(Debug, Args)]
pub struct AnalyticsArgs {
    #[command(flatten)]
    pub consumer: ConsumerArgs,
}

#[derive(Debug, Args)]
pub struct StorageArgs {
    #[command(flatten)]
    pub consumer: ConsumerArgs,

    /// The audit log to append to [default: <topic>.audit.jsonl, so order-events.audit.jsonl]
    #[arg(long, value_name = "PATH")]
    pub file: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// Address to accept Kafka clients on (port 0 picks a free one)
    #[arg(long, default_value = "127.0.0.1:9092", value_name = "HOST:PORT")]
    pub listen: String,

    /// Address the broker tells clients to connect to [default: the --listen address].
    /// Set it when clients on other machines connect
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,

    /// Partitions of the topic created at start
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub partitions: i32,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Events per second; 0 sends as fast as the broker takes them
    #[arg(
        long,
        default_value = "10",
        value_name = "EVENTS/S",
        value_parser = parse_rate,
        allow_negative_numbers = true
    )]
    pub rate: f64,

    /// Stop after this many events, once every one is delivered [default: run until Ctrl-C]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Seed of the order generator: the same seed gives the same orders (ids, users,
    /// statuses, sources) on every machine [default: random, printed at start]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Write the events as JSON lines to stdout instead of Kafka (for jq or kcat -P)
    #[arg(long)]
    pub stdout: bool,
}

/// The highest rate we pace at; beyond it `--rate 0` (no pacing) is what is meant.
const MAX_RATE: f64 = 1_000_000.0;

fn parse_rate(arg: &str) -> Result<f64, String> {
    let rate: f64 = arg
        .parse()
        .map_err(|_| format!("\"{arg}\" is not a number of events per second"))?;
    if !rate.is_finite() || rate < 0.0 {
        return Err("the rate must be 0 (as fast as possible) or a positive number".to_owned());
    }
    if rate > MAX_RATE {
        return Err(format!(
            "at most {MAX_RATE} events/s can be paced; use --rate 0 for as fast as possible"
        ));
    }
    Ok(rate)
}

/// Parses the process's arguments as [`Cli`], exiting with clap's message on a usage error.
/// A Kafka tool's name typed as a subcommand (`orderflow kafka-topics --list`) gets a message
/// saying what it is: clap would suggest a subcommand that merely sounds alike (`analytics`).
pub fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let parsed = Cli::command().try_get_matches().and_then(|matches| {
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
    fn rates_are_checked() {
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        assert_eq!(parse_rate("0"), Ok(0.0));
        assert!(parse_rate("-1").is_err());
        assert!(parse_rate("NaN").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("1e9").is_err());
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
