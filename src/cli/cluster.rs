//! `orderflow cluster`: its subcommands and their flags.

use clap::{Args, Subcommand};

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
    /// Format and start the nodes (or start them again with their data), create the topic
    /// (-t, order-events) and <topic>.dlq, print the bootstrap address for -b
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

    /// Kill node N with SIGKILL: a broker crash, its data kept
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

    /// Stop node N cleanly (SIGTERM), as a broker taken down for maintenance
    #[command(
        long_about = "\
Stop node N's JVM with SIGTERM: a clean shutdown. Kafka moves the leadership of the partitions
it led to other nodes before it exits (a controlled shutdown), so clients see fewer errors than
after `cluster kill N`. Its data stays on disk; `cluster restart N` brings it back.",
        after_help = "\
Examples:
  orderflow cluster stop-node 2 && orderflow cluster status"
    )]
    StopNode(ClusterNodeArgs),

    /// Start node N again with its data, after a kill or a stop-node
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

    /// Each node up or down and since when, the controller, each partition's leader and
    /// in-sync replicas, each group's coordinator
    #[command(
        long_about = "\
Each node: up or down and since when (what `cluster start`, `kill`, `stop-node` or `restart`
did to it; a node that ended without such a command is 'down since it was last seen up at …'),
its pid and address. When a node is up: the active controller (the node leading the KRaft
quorum), the topic's (-t) partitions as the cluster reports them (the leader, the replicas and
the in-sync replicas, ISR), and every consumer group with its coordinator (Kafka's
FindCoordinator). Right after a kill the cluster may still name the dead node for a few
seconds, until its controller notices (broker.session.timeout.ms, 9 s).",
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
    /// One JSON object for scripts: dir, bootstrap, nodes (state, since), controller, topic
    /// with its partitions, groups with their coordinators
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
