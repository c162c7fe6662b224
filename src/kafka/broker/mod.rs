//! The built-in development broker: librdkafka's mock cluster (one broker, in memory) behind a
//! protocol-aware front on a fixed address.
//!
//! The mock listens on a random loopback port. A forwarder alone would not do: clients
//! bootstrap through it, then connect to whatever address the broker *advertises* in its
//! Metadata and FindCoordinator responses. So the mock is told to advertise the front's
//! address, and every connection, first or later, goes through `--listen`. The front
//! ([`front`]) relays the Kafka protocol and answers, as Kafka 4.1 would, what the mock gets
//! wrong or lacks.

mod answers;
mod batch;
pub(crate) mod front;
mod groups;
mod topics;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use rdkafka::ClientConfig;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::client::log_to_tracing;
use super::mock;
use front::Front;

/// The id librdkafka gives the mock cluster's only broker.
const BROKER_ID: i32 = 1;

/// Retention the mock applies to every partition (librdkafka 2.12 `rdkafka_mock.c`).
pub(crate) const RETENTION_BYTES: u64 = 5 * 1024 * 1024;
pub(crate) const RETENTION_MESSAGES: u64 = 100_000;

/// The longest a Fetch waits at the mock for data, in ms. The mock holds an empty fetch for
/// the whole `max_wait_ms` and no produce wakes it (Kafka answers within a few ms of the
/// produce), so every consumer's latency had a floor of `fetch.wait.max.ms` (librdkafka: 500,
/// orderflow: 100). Capped, an idle consumer asks again every few ms instead.
pub(crate) const FETCH_WAIT_CAP_MS: i32 = 5;

/// How long the mock waits for more members before a new group's first assignment. Real
/// brokers default to 3 s; a class (and the tests) should not wait that long to see a member
/// get its partitions, yet members started together should still land in one rebalance.
const INITIAL_REBALANCE_DELAY_MS: i32 = 1_000;

/// Whether a cluster id is that of a librdkafka mock cluster, the built-in broker's engine
/// (`rd_kafka_mock_cluster_new` names it `mockCluster<address>`; Kafka's ids are random
/// base64 UUIDs).
pub(crate) fn is_built_in_broker(cluster_id: &str) -> bool {
    cluster_id.starts_with("mockCluster")
}

/// Why the development broker could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BrokerError {
    #[error("--listen {0}: expected HOST:PORT, for example 127.0.0.1:9092")]
    BadAddress(String),
    #[error(
        "cannot listen on {address}: it is already in use (another `orderflow broker` or a Kafka \
         broker?). Stop it, or pick another port with --listen 127.0.0.1:9093 and pass \
         -b 127.0.0.1:9093 to the other commands"
    )]
    AddressInUse { address: SocketAddr },
    #[error("cannot listen on {address}: {reason}")]
    Listen {
        address: SocketAddr,
        reason: io::Error,
    },
    #[error("cannot start librdkafka's mock cluster: {0}")]
    Mock(String),
}

/// Options of `orderflow broker`.
#[derive(Clone, Debug)]
pub(crate) struct BrokerOptions {
    /// Where clients connect (`--listen`); port 0 picks a free port.
    pub(crate) listen: String,
    /// What the broker tells clients to connect to (`--advertise`); default: the listen address.
    pub(crate) advertise: Option<String>,
    /// Topic created at start.
    pub(crate) topic: String,
    /// Its partition count.
    pub(crate) partitions: i32,
}

/// The mock cluster's owner: a producer handle created with `test.mock.num.brokers`. Its log
/// lines (and the mock's, which logs through it) go to tracing.
struct MockOwner;

impl rdkafka::ClientContext for MockOwner {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        log_to_tracing(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", %error, reason, "mock owner error");
    }
}

impl ProducerContext for MockOwner {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

/// A running development broker. Dropping it stops the forwarder and destroys the cluster
/// and everything it holds.
pub(crate) struct DevBroker {
    /// Owns the mock cluster; dropping the last reference destroys the cluster.
    owner: Arc<BaseProducer<MockOwner>>,
    /// The protocol-aware front every connection goes through.
    front: Arc<Front>,
    /// The bound `--listen` socket, taken by [`DevBroker::serve`].
    listener: Option<TcpListener>,
    /// The address actually bound (port 0 resolved).
    local: SocketAddr,
    /// `host:port` advertised to clients.
    advertised: String,
}

impl DevBroker {
    /// Binds `--listen`, starts the mock cluster, creates the topic and makes the mock
    /// advertise the listen address. Clients can connect once this returns (the forwarder
    /// starts accepting in [`DevBroker::serve`]; until then the kernel queues connections).
    pub(crate) async fn start(options: &BrokerOptions) -> Result<DevBroker, BrokerError> {
        let listen = resolve(&options.listen)?;
        let listener = TcpListener::bind(listen).await.map_err(|source| {
            if source.kind() == io::ErrorKind::AddrInUse {
                BrokerError::AddressInUse { address: listen }
            } else {
                BrokerError::Listen {
                    address: listen,
                    reason: source,
                }
            }
        })?;
        let local = listener
            .local_addr()
            .map_err(|source| BrokerError::Listen {
                address: listen,
                reason: source,
            })?;
        let advertised = match &options.advertise {
            Some(advertise) => {
                let (host, port) = split_host_port(advertise)
                    .ok_or_else(|| BrokerError::BadAddress(advertise.clone()))?;
                (host.to_owned(), port)
            }
            // A wildcard address cannot be connected to; loopback works on this machine, and
            // the banner tells the user about --advertise for the others.
            None if local.ip().is_unspecified() => (Ipv4Addr::LOCALHOST.to_string(), local.port()),
            None => (local.ip().to_string(), local.port()),
        };

        let owner: BaseProducer<MockOwner> = BaseProducer::from_config_and_context(
            ClientConfig::new().set("test.mock.num.brokers", "1"),
            MockOwner,
        )
        .map_err(|e| BrokerError::Mock(e.to_string()))?;
        let cluster = owner
            .client()
            .mock_cluster()
            .ok_or_else(|| BrokerError::Mock("no mock cluster was created".into()))?;
        let upstream = cluster
            .bootstrap_servers()
            .parse::<SocketAddr>()
            .map_err(|e| BrokerError::Mock(format!("unexpected mock address: {e}")))?;
        cluster
            .create_topic(&options.topic, options.partitions, 1)
            .map_err(|e| BrokerError::Mock(format!("creating topic {}: {e}", options.topic)))?;
        drop(cluster);
        mock::advertise(owner.client(), BROKER_ID, &advertised.0, advertised.1)
            .map_err(|e| BrokerError::Mock(e.to_string()))?;
        mock::set_initial_rebalance_delay(owner.client(), INITIAL_REBALANCE_DELAY_MS)
            .map_err(|e| BrokerError::Mock(e.to_string()))?;

        let owner = Arc::new(owner);
        let api_versions = front::advertised_versions(upstream)
            .await
            .map_err(|e| BrokerError::Mock(format!("asking the mock for its API versions: {e}")))?;
        let front = Arc::new(Front::new(
            upstream,
            MockTopics {
                owner: Arc::clone(&owner),
            },
            FETCH_WAIT_CAP_MS,
            api_versions,
        ));
        Ok(DevBroker {
            owner,
            front,
            listener: Some(listener),
            local,
            advertised: format!("{}:{}", advertised.0, advertised.1),
        })
    }

    /// The address the forwarder is bound to.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The `host:port` clients are told to use.
    pub(crate) fn advertised(&self) -> &str {
        &self.advertised
    }

    /// Forwards client connections to the mock until `stop` completes; then closes them all.
    pub(crate) async fn serve(&mut self, stop: impl std::future::Future<Output = ()>) {
        let listener = self.listener.take().expect("serve runs once");
        let mut forwards = JoinSet::new();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                accepted = listener.accept() => match accepted {
                    Ok((client, peer)) => {
                        let front = Arc::clone(&self.front);
                        forwards.spawn(async move {
                            if let Err(e) = front::relay(front, client, peer).await {
                                tracing::debug!(%peer, error = %e, "connection ended");
                            }
                        });
                    }
                    // Running out of file descriptors and the like: log and keep serving the
                    // connections we have rather than take the whole class down.
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                // Reap finished forwards so the set does not grow without bound.
                Some(_) = forwards.join_next(), if !forwards.is_empty() => {}
            }
        }
        forwards.shutdown().await;
    }
}

/// Takes the broker down and brings it back: the built-in broker's fault injection, for
/// showing (and testing) what clients do in an outage. Data is kept across an outage.
#[derive(Clone)]
pub(crate) struct Faults {
    owner: Arc<BaseProducer<MockOwner>>,
}

impl Faults {
    /// Closes every connection and refuses new ones, as a crashed broker would.
    pub(crate) fn down(&self) -> Result<(), BrokerError> {
        self.cluster()?
            .broker_down(BROKER_ID)
            .map_err(|e| BrokerError::Mock(format!("taking the broker down: {e}")))
    }

    /// Accepts connections again.
    pub(crate) fn up(&self) -> Result<(), BrokerError> {
        self.cluster()?
            .broker_up(BROKER_ID)
            .map_err(|e| BrokerError::Mock(format!("bringing the broker up: {e}")))
    }

    fn cluster(&self) -> Result<rdkafka::mocking::MockCluster<'_, MockOwner>, BrokerError> {
        self.owner
            .client()
            .mock_cluster()
            .ok_or_else(|| BrokerError::Mock("no mock cluster".into()))
    }
}

impl DevBroker {
    /// A handle to take the broker down and up while it serves.
    pub(crate) fn faults(&self) -> Faults {
        Faults {
            owner: Arc::clone(&self.owner),
        }
    }
}

/// The mock's topics, as CreateTopics needs them.
#[derive(Clone)]
pub(crate) struct MockTopics {
    owner: Arc<BaseProducer<MockOwner>>,
}

impl MockTopics {
    /// Every topic the mock holds. Blocks (a metadata round trip to the mock).
    fn names(&self) -> Result<Vec<String>, KafkaError> {
        Ok(self
            .partitions()?
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }

    /// Every topic the mock holds with its partition count. Blocks.
    fn partitions(&self) -> Result<Vec<(String, i32)>, KafkaError> {
        let metadata = self
            .owner
            .client()
            .fetch_metadata(None, std::time::Duration::from_secs(5))?;
        Ok(metadata
            .topics()
            .iter()
            .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
            .collect())
    }

    /// Creates a topic; Kafka's code and message when the mock refuses. Blocks.
    fn create(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
    ) -> Result<(), answers::Refusal> {
        let cluster = self
            .owner
            .client()
            .mock_cluster()
            .ok_or((-1, "no mock cluster".to_owned()))?;
        cluster
            .create_topic(name, partitions, i32::from(replication))
            .map_err(|e| match e.rdkafka_error_code() {
                Some(rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists) => {
                    (36, format!("Topic '{name}' already exists."))
                }
                _ => (-1, format!("the mock could not create {name}: {e}")),
            })
    }
}

fn split_host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

/// `HOST:PORT` to a socket address; `localhost` and other names are resolved, preferring IPv4
/// (the mock itself only listens on IPv4 loopback).
fn resolve(address: &str) -> Result<SocketAddr, BrokerError> {
    let bad = || BrokerError::BadAddress(address.to_owned());
    split_host_port(address).ok_or_else(bad)?;
    let candidates: Vec<SocketAddr> = address.to_socket_addrs().map_err(|_| bad())?.collect();
    candidates
        .iter()
        .find(|a| a.is_ipv4())
        .or(candidates.first())
        .copied()
        .ok_or_else(bad)
}

/// Whether clients on other machines can reach an address bound to `ip`.
pub(crate) fn is_local_only(ip: IpAddr) -> bool {
    ip.is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_parsed_or_named() {
        assert_eq!(
            resolve("127.0.0.1:9092").unwrap(),
            "127.0.0.1:9092".parse().unwrap()
        );
        assert!(resolve("localhost:0").unwrap().ip().is_loopback());
        assert!(matches!(resolve("9092"), Err(BrokerError::BadAddress(_))));
        assert!(matches!(
            resolve("host:port"),
            Err(BrokerError::BadAddress(_))
        ));
        assert_eq!(split_host_port("[::1]:9092"), Some(("::1", 9092)));
    }
}
