//! The checks of one compose file. Each pushes the problems it finds, as sentences naming the
//! file and the service, so a failing test says what to fix.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use clap::{CommandFactory, Parser};
use orderflow::cli::{Cli, Command};

use crate::compose::{Broker, ComposeFile, Service, parse_compose, parse_listeners};
use crate::{PARTITIONS, read, repo};

pub struct Checked {
    pub problems: Vec<String>,
    pub brokers: Vec<Broker>,
    pub topics: Vec<TopicCreation>,
    /// The topic the orderflow services use, and the subcommands they run.
    pub role_topic: Option<String>,
    pub roles: BTreeSet<String>,
}

pub fn check_compose(label: &str, text: &str) -> Checked {
    let mut checked = Checked {
        problems: Vec::new(),
        brokers: Vec::new(),
        topics: Vec::new(),
        role_topic: None,
        roles: BTreeSet::new(),
    };
    let file = match parse_compose(text) {
        Ok(file) => file,
        Err(e) => {
            checked.problems.push(format!("{label}: {e}"));
            return checked;
        }
    };
    let p = &mut checked.problems;
    if file.name.is_none() {
        p.push(format!(
            "{label}: give the project a `name:` so its volumes do not collide with another file's"
        ));
    }
    check_services(label, &file, p);
    check_ports(label, &file, p);
    checked.brokers = check_brokers(label, &file, p);
    let (topic, roles) = check_roles(label, &file, &checked.brokers, p);
    checked.topics = check_topic_creation(label, &file, &checked.brokers, topic.as_deref(), p);
    checked.role_topic = topic;
    checked.roles = roles;
    checked
}

fn check_services(label: &str, file: &ComposeFile, p: &mut Vec<String>) {
    let docker_dir = repo().join("docker");
    for (name, service) in &file.services {
        let at = format!("{label}: service {name}");
        if service.image.is_none() && service.build.is_none() {
            p.push(format!("{at} has neither image nor build"));
        }
        if let Some(build) = &service.build {
            let context = docker_dir.join(&build.context);
            if !context.join(&build.dockerfile).is_file() {
                p.push(format!(
                    "{at}: build context {:?} has no {:?}",
                    build.context, build.dockerfile
                ));
            }
        }
        for (target, dependency) in &service.depends_on {
            let Some(other) = file.services.get(target) else {
                p.push(format!("{at} depends on {target}, which is not a service"));
                continue;
            };
            match dependency.condition.as_str() {
                "service_started" => {}
                "service_healthy" if other.healthcheck.is_none() => p.push(format!(
                    "{at} waits for {target} to be healthy, but {target} has no healthcheck"
                )),
                "service_completed_successfully" if other.restart.as_deref() != Some("no") => p
                    .push(format!(
                        "{at} waits for {target} to complete, but {target} is not a one-shot \
                         (restart: \"no\")"
                    )),
                "service_healthy" | "service_completed_successfully" => {}
                condition => p.push(format!("{at}: unknown depends_on condition {condition:?}")),
            }
            // Compose refuses to start a service whose dependency is in a profile not enabled.
            if service.profiles.is_empty() && !other.profiles.is_empty() {
                p.push(format!(
                    "{at} is always started but depends on {target}, which only starts with a profile"
                ));
            }
        }
        if let Some(grace) = &service.stop_grace_period
            && !is_seconds(grace)
        {
            p.push(format!("{at}: stop_grace_period {grace:?} is not like 30s"));
        }
        for volume in &service.volumes {
            match volume.split_once(':') {
                Some((source, _)) if !source.starts_with(['.', '/']) => {
                    if !file.volumes.contains_key(source) {
                        p.push(format!(
                            "{at} mounts volume {source:?}, not declared under top-level volumes"
                        ));
                    }
                }
                Some(_) => {}
                None => p.push(format!("{at}: volume {volume:?} is not SOURCE:TARGET")),
            }
        }
        if let Some(check) = &service.healthcheck {
            if !matches!(
                check.test.first().map(String::as_str),
                Some("CMD" | "CMD-SHELL")
            ) || check.test.len() < 2
            {
                p.push(format!(
                    "{at}: healthcheck test must be [\"CMD\", program, args…]"
                ));
            }
            for (what, duration) in [
                ("interval", &check.interval),
                ("timeout", &check.timeout),
                ("start_period", &check.start_period),
            ] {
                if !is_seconds(duration) {
                    p.push(format!(
                        "{at}: healthcheck {what} {duration:?} is not like 5s"
                    ));
                }
            }
            if check.retries == 0 {
                p.push(format!("{at}: healthcheck retries must be at least 1"));
            }
        }
    }
}

/// A Compose duration in whole seconds, such as `5s`: the only form these files use.
fn is_seconds(duration: &str) -> bool {
    duration
        .strip_suffix('s')
        .is_some_and(|n| n.parse::<u32>().is_ok())
}

fn check_ports(label: &str, file: &ComposeFile, p: &mut Vec<String>) {
    let mut taken: BTreeMap<u16, &str> = BTreeMap::new();
    for (name, service) in &file.services {
        for mapping in service.published() {
            match mapping {
                Ok((host, _)) => {
                    if let Some(other) = taken.insert(host, name) {
                        p.push(format!(
                            "{label}: host port {host} is published by both {other} and {name}"
                        ));
                    }
                }
                Err(e) => p.push(format!("{label}: service {name}: {e}")),
            }
        }
    }
}

fn check_brokers(label: &str, file: &ComposeFile, p: &mut Vec<String>) -> Vec<Broker> {
    let brokers: Vec<Broker> = file
        .services
        .iter()
        .filter(|(_, s)| s.is_broker())
        .map(|(name, service)| check_broker(&format!("{label}: broker {name}"), name, service, p))
        .collect();
    if brokers.is_empty() {
        p.push(format!("{label}: no Kafka broker service"));
    } else {
        check_quorum(label, file, &brokers, p);
    }
    brokers
}

/// One broker's settings: its listeners reach who they must, and its health check asks it.
fn check_broker(at: &str, name: &str, service: &Service, p: &mut Vec<String>) -> Broker {
    let required = |key: &str, p: &mut Vec<String>| {
        let value = service.env(key);
        if value.is_none() {
            p.push(format!("{at} lacks {key}"));
        }
        value.unwrap_or_default()
    };
    let roles = required("KAFKA_PROCESS_ROLES", p);
    let node_id = required("KAFKA_NODE_ID", p);
    required("CLUSTER_ID", p);
    let listeners = parse_listeners(&required("KAFKA_LISTENERS", p)).unwrap_or_else(|e| {
        p.push(format!("{at}: {e}"));
        Vec::new()
    });
    let advertised =
        parse_listeners(&required("KAFKA_ADVERTISED_LISTENERS", p)).unwrap_or_else(|e| {
            p.push(format!("{at}: {e}"));
            Vec::new()
        });
    let protocols: BTreeMap<String, String> = required("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", p)
        .split(',')
        .filter_map(|pair| pair.split_once(':'))
        .map(|(l, proto)| (l.to_owned(), proto.to_owned()))
        .collect();
    let controller_names = required("KAFKA_CONTROLLER_LISTENER_NAMES", p);
    let inter_broker = required("KAFKA_INTER_BROKER_LISTENER_NAME", p);
    if !roles.split(',').any(|r| r == "broker") {
        p.push(format!("{at}: KAFKA_PROCESS_ROLES {roles:?} lacks broker"));
    }
    for listener in &listeners {
        if !protocols.contains_key(&listener.name) {
            p.push(format!(
                "{at}: listener {} is missing from KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                listener.name
            ));
        }
    }
    let own_names = [Some(name), service.hostname.as_deref()];
    for ad in &advertised {
        let Some(listener) = listeners.iter().find(|l| l.name == ad.name) else {
            p.push(format!(
                "{at} advertises {}, which it does not listen on",
                ad.name
            ));
            continue;
        };
        if controller_names.split(',').any(|c| c == ad.name) {
            p.push(format!(
                "{at} advertises its controller listener {}",
                ad.name
            ));
        }
        if ad.host == "localhost" {
            // A host client is told localhost:<port>: that host port must lead to this
            // listener's port in the container.
            let published = service
                .published()
                .into_iter()
                .flatten()
                .any(|(host, container)| host == ad.port && container == listener.port);
            if !published {
                p.push(format!(
                    "{at} advertises localhost:{} for {}, but does not publish host port {} \
                         to container port {}",
                    ad.port, ad.name, ad.port, listener.port
                ));
            }
        } else {
            if !own_names.contains(&Some(ad.host.as_str())) {
                p.push(format!(
                    "{at} advertises {}:{}, which is not its own name on the compose network",
                    ad.host, ad.port
                ));
            }
            if ad.port != listener.port {
                p.push(format!(
                    "{at} advertises port {} for {} but listens on {}",
                    ad.port, ad.name, listener.port
                ));
            }
        }
    }
    if !advertised.iter().any(|l| l.host == "localhost") {
        p.push(format!(
            "{at} advertises no localhost listener for host clients"
        ));
    }
    if !advertised
        .iter()
        .any(|l| l.name == inter_broker && l.host != "localhost")
    {
        p.push(format!(
            "{at}: the inter-broker listener {inter_broker} must be advertised under the \
                 broker's network name"
        ));
    }
    match &service.healthcheck {
        None => p.push(format!("{at} has no healthcheck")),
        Some(check) => {
            // It must ask this broker, on one of its own ports.
            let asks_itself = check.test.windows(2).any(|pair| {
                pair[0] == "--bootstrap-server"
                    && listeners
                        .iter()
                        .any(|l| pair[1] == format!("localhost:{}", l.port))
            });
            if !asks_itself
                || !check
                    .test
                    .iter()
                    .any(|arg| arg.starts_with("/opt/kafka/bin/"))
            {
                p.push(format!(
                    "{at}: the healthcheck must run a Kafka tool with --bootstrap-server \
                         localhost:<one of its listener ports>"
                ));
            }
        }
    }
    Broker {
        service: name.to_owned(),
        node_id,
        listeners,
        advertised,
    }
}

/// One cluster: one id, unique node ids, every voter a controller of this file, internal
/// topics with no more replicas than brokers.
fn check_quorum(label: &str, file: &ComposeFile, brokers: &[Broker], p: &mut Vec<String>) {
    let ids: BTreeSet<Option<String>> = file
        .services
        .values()
        .filter(|s| s.is_broker())
        .map(|s| s.env("CLUSTER_ID"))
        .collect();
    if ids.len() != 1 {
        p.push(format!("{label}: brokers disagree on CLUSTER_ID: {ids:?}"));
    }
    let node_ids: BTreeSet<&str> = brokers.iter().map(|b| b.node_id.as_str()).collect();
    if node_ids.len() != brokers.len() {
        p.push(format!("{label}: two brokers share a KAFKA_NODE_ID"));
    }
    for (name, service) in file.services.iter().filter(|(_, s)| s.is_broker()) {
        let voters = service
            .env("KAFKA_CONTROLLER_QUORUM_VOTERS")
            .unwrap_or_default();
        let controller = service
            .env("KAFKA_CONTROLLER_LISTENER_NAMES")
            .unwrap_or_default();
        let mut voter_ids = BTreeSet::new();
        for voter in voters.split(',') {
            let parsed = voter.split_once('@').and_then(|(id, address)| {
                let (host, port) = address.rsplit_once(':')?;
                Some((id, host, port.parse::<u16>().ok()?))
            });
            let Some((id, host, port)) = parsed else {
                p.push(format!(
                    "{label}: broker {name}: voter {voter:?} is not ID@HOST:PORT"
                ));
                continue;
            };
            voter_ids.insert(id);
            let target = brokers.iter().find(|b| b.service == host);
            let fits = target.is_some_and(|b| {
                b.node_id == id && b.listener(&controller).is_some_and(|l| l.port == port)
            });
            if !fits {
                p.push(format!(
                    "{label}: broker {name}: voter {voter} is not a broker of this file with node \
                     id {id} and its {controller} listener on port {port}"
                ));
            }
        }
        if voter_ids.len() != brokers.len() {
            p.push(format!(
                "{label}: broker {name}: {} voters for {} combined brokers",
                voter_ids.len(),
                brokers.len()
            ));
        }
        // Internal topics cannot have more replicas than there are brokers.
        for key in [
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
            "KAFKA_DEFAULT_REPLICATION_FACTOR",
        ] {
            if let Some(rf) = service.env(key).and_then(|v| v.parse::<usize>().ok())
                && rf > brokers.len()
            {
                p.push(format!(
                    "{label}: broker {name}: {key} {rf} but only {} brokers",
                    brokers.len()
                ));
            }
        }
        if service
            .env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR")
            .is_none()
            && brokers.len() < 3
        {
            p.push(format!(
                "{label}: broker {name}: set KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR (the default, 3, \
                 needs 3 brokers, and consumer groups need that topic)"
            ));
        }
    }
}

/// Checks every orderflow service; returns the topic they use and the subcommands they run.
fn check_roles(
    label: &str,
    file: &ComposeFile,
    brokers: &[Broker],
    p: &mut Vec<String>,
) -> (Option<String>, BTreeSet<String>) {
    let container_addresses: BTreeSet<String> = brokers
        .iter()
        .flat_map(Broker::container_addresses)
        .collect();
    let default_topic = default_of("topic");
    let mut topics = BTreeSet::new();
    let mut roles = BTreeSet::new();
    for (name, service) in file.services.iter().filter(|(_, s)| s.runs_orderflow()) {
        let at = format!("{label}: orderflow service {name}");
        if service.entrypoint.is_some() {
            p.push(format!(
                "{at} overrides the entrypoint; the image's ENTRYPOINT is orderflow, so give \
                 orderflow's arguments as `command`"
            ));
        }
        if service.container_name.is_some() || !service.ports.is_empty() {
            p.push(format!(
                "{at} has a container_name or published ports, so `--scale` cannot run two"
            ));
        }
        let Some(args) = &service.command else {
            p.push(format!(
                "{at} has no command (it would print --help and exit)"
            ));
            continue;
        };
        // The real command line decides: an unknown subcommand, flag or value fails here just
        // as it would in the container.
        let cli = match Cli::try_parse_from(
            std::iter::once("orderflow").chain(args.iter().map(String::as_str)),
        ) {
            Ok(cli) => cli,
            Err(e) => {
                p.push(format!(
                    "{at}: `orderflow {}` is not an orderflow command: {}",
                    args.join(" "),
                    e.render()
                ));
                continue;
            }
        };
        let role = match &cli.command {
            Command::Produce(a) => {
                if a.stdout {
                    p.push(format!("{at}: produce --stdout would not send to Kafka"));
                }
                "produce"
            }
            Command::OrderProcessor(a) => {
                consumer_role("order-processor", a.consumer.no_tui, &at, p)
            }
            Command::Analytics(a) => consumer_role("analytics", a.consumer.no_tui, &at, p),
            Command::Storage(a) => {
                match &a.file {
                    Some(path) => check_on_volume(&at, path, service, file, p),
                    None => p.push(format!(
                        "{at}: give storage --file on a named volume, or the audit log is lost \
                         with the container"
                    )),
                }
                consumer_role("storage", a.consumer.no_tui, &at, p)
            }
            other => {
                p.push(format!(
                    "{at} runs {other:?}, which is not a role of the platform"
                ));
                continue;
            }
        };
        roles.insert(role.to_owned());
        if args
            .iter()
            .any(|a| a == "-b" || a == "--brokers" || a.starts_with("--brokers="))
        {
            p.push(format!(
                "{at}: say the brokers once, in ORDERFLOW_BROKERS, not with -b"
            ));
        }
        match service.env("ORDERFLOW_BROKERS") {
            None => p.push(format!(
                "{at} lacks ORDERFLOW_BROKERS (the default, localhost:9092, is the container itself)"
            )),
            Some(list) => {
                for address in list.split(',') {
                    if !container_addresses.contains(address) {
                        p.push(format!(
                            "{at}: ORDERFLOW_BROKERS names {address}, which no broker of this \
                             file advertises to containers (they advertise {container_addresses:?})"
                        ));
                    }
                }
            }
        }
        topics.insert(
            service
                .env("ORDERFLOW_TOPIC")
                .unwrap_or_else(|| default_topic.clone()),
        );
        if !service.depends_on.iter().any(|(target, d)| {
            d.condition == "service_completed_successfully"
                && file.services.get(target).is_some_and(creates_topics)
        }) {
            p.push(format!(
                "{at} must wait for the topic creation (depends_on: <it>: condition: \
                 service_completed_successfully)"
            ));
        }
    }
    if topics.len() > 1 {
        p.push(format!(
            "{label}: the orderflow services use different topics: {topics:?}"
        ));
    }
    for role in ["produce", "order-processor", "analytics", "storage"] {
        if !roles.contains(role) {
            p.push(format!("{label}: no service runs orderflow {role}"));
        }
    }
    (topics.into_iter().next(), roles)
}

fn consumer_role(role: &'static str, no_tui: bool, at: &str, p: &mut Vec<String>) -> &'static str {
    if !no_tui {
        p.push(format!(
            "{at}: a container has no terminal for the live view; pass --no-tui"
        ));
    }
    role
}

/// The audit log must be on a named volume, in a directory the image's user owns.
fn check_on_volume(
    at: &str,
    path: &Path,
    service: &Service,
    file: &ComposeFile,
    p: &mut Vec<String>,
) {
    let on_volume = service.volumes.iter().any(|v| {
        v.split_once(':').is_some_and(|(source, target)| {
            file.volumes.contains_key(source) && path.parent() == Some(Path::new(target))
        })
    });
    if !on_volume {
        p.push(format!(
            "{at}: {} is not in a named volume's directory",
            path.display()
        ));
    }
    let dockerfile = read("docker/Dockerfile");
    let dir = path
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    if !dockerfile
        .lines()
        .any(|line| line.contains("chown") && line.contains(&dir))
    {
        p.push(format!(
            "{at}: docker/Dockerfile must create {dir} owned by its user, or storage cannot write there"
        ));
    }
}

/// The default of a global flag, read from the clap definition itself.
fn default_of(flag: &str) -> String {
    let command = Cli::command();
    let arg = command
        .get_arguments()
        .find(|a| a.get_id() == flag)
        .unwrap_or_else(|| panic!("no --{flag} in the command line"));
    arg.get_default_values()
        .first()
        .and_then(|v| v.to_str())
        .unwrap_or_else(|| panic!("--{flag} has no default"))
        .to_owned()
}
// Topic creation: the one-shot service running kafka-topics.sh --create.

#[derive(Debug)]
pub struct TopicCreation {
    pub topic: String,
    pub partitions: Option<u32>,
    pub replication_factor: Option<u32>,
    pub configs: BTreeMap<String, String>,
    pub bootstrap: String,
}

fn creates_topics(service: &Service) -> bool {
    script_of(service).contains("kafka-topics.sh") && script_of(service).contains("--create")
}

fn script_of(service: &Service) -> String {
    let mut words = service.entrypoint.clone().unwrap_or_default();
    words.extend(service.command.clone().unwrap_or_default());
    words.join(" ")
}

/// Reads the kafka-topics.sh --create invocations of a plain shell script: one command per
/// line or separated by `&&` / `;`, no quoting (the script has none; the check says so).
fn parse_topic_creations(script: &str) -> Result<Vec<TopicCreation>, String> {
    if script.contains(['"', '\'', '$', '`']) {
        return Err(
            "the topic script must not quote or expand (this check reads it word by word)".into(),
        );
    }
    let mut creations = Vec::new();
    for command in script.split(['\n', ';']).flat_map(|c| c.split("&&")) {
        let words: Vec<&str> = command.split_whitespace().collect();
        if !words
            .first()
            .is_some_and(|w| w.ends_with("kafka-topics.sh"))
            || !words.contains(&"--create")
        {
            continue;
        }
        let value = |flag: &str| {
            words
                .windows(2)
                .find(|pair| pair[0] == flag)
                .map(|pair| pair[1].to_owned())
        };
        let number = |flag: &str| value(flag).and_then(|v| v.parse().ok());
        let configs = words
            .windows(2)
            .filter(|pair| pair[0] == "--config")
            .filter_map(|pair| pair[1].split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        creations.push(TopicCreation {
            topic: value("--topic").ok_or("a --create without --topic")?,
            partitions: number("--partitions"),
            replication_factor: number("--replication-factor"),
            configs,
            bootstrap: value("--bootstrap-server")
                .ok_or("a --create without --bootstrap-server")?,
        });
    }
    Ok(creations)
}

fn check_topic_creation(
    label: &str,
    file: &ComposeFile,
    brokers: &[Broker],
    role_topic: Option<&str>,
    p: &mut Vec<String>,
) -> Vec<TopicCreation> {
    let creators: Vec<(&String, &Service)> = file
        .services
        .iter()
        .filter(|(_, s)| creates_topics(s))
        .collect();
    let [(name, service)] = creators.as_slice() else {
        p.push(format!(
            "{label}: expected one service running kafka-topics.sh --create, found {}",
            creators.len()
        ));
        return Vec::new();
    };
    let at = format!("{label}: topic service {name}");
    if !service.profiles.is_empty() {
        p.push(format!("{at} must run on a plain `up`, without a profile"));
    }
    for broker in brokers {
        let waits = service
            .depends_on
            .get(&broker.service)
            .is_some_and(|d| d.condition == "service_healthy");
        if !waits {
            p.push(format!(
                "{at} must wait for {} to be healthy",
                broker.service
            ));
        }
    }
    let creations = match parse_topic_creations(&script_of(service)) {
        Ok(creations) => creations,
        Err(e) => {
            p.push(format!("{at}: {e}"));
            return Vec::new();
        }
    };
    let container_addresses: BTreeSet<String> = brokers
        .iter()
        .flat_map(Broker::container_addresses)
        .collect();
    for creation in &creations {
        for address in creation.bootstrap.split(',') {
            if !container_addresses.contains(address) {
                p.push(format!(
                    "{at}: --bootstrap-server {address} is not a broker address containers can use"
                ));
            }
        }
        if creation
            .replication_factor
            .is_none_or(|rf| rf as usize > brokers.len())
        {
            p.push(format!(
                "{at}: {} needs a --replication-factor of at most {} (the brokers in this file)",
                creation.topic,
                brokers.len()
            ));
        }
    }
    if let Some(topic) = role_topic {
        for wanted in [topic.to_owned(), format!("{topic}.dlq")] {
            match creations.iter().find(|c| c.topic == wanted) {
                None => p.push(format!(
                    "{at} does not create {wanted}, which the roles use"
                )),
                Some(c) if c.partitions != Some(PARTITIONS) => p.push(format!(
                    "{at} creates {wanted} with {:?} partitions; the lessons need {PARTITIONS}",
                    c.partitions
                )),
                Some(_) => {}
            }
        }
    }
    creations
}
