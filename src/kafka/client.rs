//! What every orderflow Kafka client shares: librdkafka's log lines routed into `tracing`
//! (target `librdkafka`, hidden unless RUST_LOG asks for them), and its global errors turned
//! into a [`ConnectionHealth`] that commands can show and wait on instead of a wall of logs.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::lock::lock;
use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, Partitioner, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::watch;

pub(crate) use crate::report::activity::Connection;

/// Why a client could not talk to the cluster when it started, in the same words for every
/// command that connects.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "cannot reach Kafka at {brokers}: {reason}\n  Is `orderflow broker` running? Start one in \
         another terminal, or point -b (or ORDERFLOW_BROKERS) at your cluster."
    )]
    Unreachable { brokers: String, reason: String },
    #[error(
        "Kafka at {brokers} refused the connection: {reason}\n  Check the -X security settings."
    )]
    Refused { brokers: String, reason: String },
}

impl ConnectError {
    /// The cluster said nothing at all within `waited`.
    pub(crate) fn no_answer(brokers: String, waited: Duration) -> ConnectError {
        ConnectError::Unreachable {
            brokers,
            reason: format!("no answer within {} s", waited.as_secs()),
        }
    }
}

/// What sets this process's client ids and private group ids apart from other orderflow
/// processes': its process id, except in a container, where it is process 1 in every replica
/// (`docker compose up --scale analytics=2`): there the hostname, which Docker sets to the
/// container's id, tells the replicas apart.
pub(crate) fn process_tag() -> String {
    let pid = std::process::id();
    if pid == 1
        && let Some(host) = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty())
    {
        return host;
    }
    pid.to_string()
}

/// A `ClientContext` that keeps the latest [`Connection`] state in a watch channel.
pub(crate) struct ConnectionHealth {
    state: watch::Sender<Connection>,
    /// Whether the state is anything but Ok: lets [`ConnectionHealth::mark_ok`], called for
    /// every delivered event, return without taking the watch's lock.
    troubled: std::sync::atomic::AtomicBool,
    /// The last transport-level error text, kept to explain a later "all brokers down".
    last_transport_error: Mutex<Option<String>>,
    /// The last refusal (authentication, SASL, SSL): a connection it closed counts as down
    /// too, and the "all brokers down" that follows must not hide why.
    last_refusal: Mutex<Option<String>>,
    /// When the last error was reported; recoveries are inferred from later successes.
    last_error_at: Mutex<Option<Instant>>,
}

impl Default for ConnectionHealth {
    fn default() -> Self {
        ConnectionHealth {
            state: watch::Sender::new(Connection::Ok),
            troubled: std::sync::atomic::AtomicBool::new(false),
            last_transport_error: Mutex::new(None),
            last_refusal: Mutex::new(None),
            last_error_at: Mutex::new(None),
        }
    }
}

impl ConnectionHealth {
    /// A receiver that sees every change of state.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Connection> {
        self.state.subscribe()
    }

    pub(crate) fn current(&self) -> Connection {
        self.state.borrow().clone()
    }

    /// Call when something proves the cluster is reachable again (a delivery, a fetch):
    /// librdkafka reports failures but never an explicit recovery.
    pub(crate) fn mark_ok(&self) {
        if !self.troubled.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        if !matches!(
            *self.state.borrow(),
            Connection::Ok | Connection::Fatal { .. }
        ) {
            self.state.send_replace(Connection::Ok);
            *lock(&self.last_refusal) = None;
            self.troubled
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Whether an error was reported within `window`.
    pub(crate) fn troubled_within(&self, window: Duration) -> bool {
        lock(&self.last_error_at).is_some_and(|at| at.elapsed() < window)
    }

    fn record(&self, error: &KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        *lock(&self.last_error_at) = Some(Instant::now());
        let next = match code {
            Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::Resolve) => {
                *lock(&self.last_transport_error) = Some(tidy_reason(reason));
                // A connection that failed for another reason since: the refusal is history.
                *lock(&self.last_refusal) = None;
                // A single broker failing is routine (librdkafka retries); only when all are
                // down, or a name does not resolve at all, is the cluster unreachable.
                if code == Some(RDKafkaErrorCode::Resolve) {
                    Some(Connection::Unreachable {
                        reason: tidy_reason(reason),
                    })
                } else {
                    None
                }
            }
            Some(RDKafkaErrorCode::AllBrokersDown) => {
                if let Some(reason) = lock(&self.last_refusal).clone() {
                    Some(Connection::Refused { reason })
                } else {
                    let reason = lock(&self.last_transport_error)
                        .clone()
                        .unwrap_or_else(|| tidy_reason(reason));
                    Some(Connection::Unreachable { reason })
                }
            }
            Some(
                RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SaslAuthenticationFailed
                | RDKafkaErrorCode::SSL,
            ) => {
                let reason = refusal_words(&tidy_reason(reason));
                *lock(&self.last_refusal) = Some(reason.clone());
                Some(Connection::Refused { reason })
            }
            Some(RDKafkaErrorCode::Fatal) => Some(Connection::Fatal {
                reason: tidy_reason(reason),
            }),
            _ => None,
        };
        if let Some(next) = next {
            self.troubled
                .store(true, std::sync::atomic::Ordering::Relaxed);
            self.state.send_replace(next);
        }
    }
}

/// A refusal in words, with what it means where librdkafka's words do not say it: a SASL
/// client at a listener without SASL hears "SASL Handshake not supported by broker" (the
/// built-in broker) or an empty list of "broker's supported mechanisms" (Kafka).
pub(crate) fn refusal_words(reason: &str) -> String {
    let no_sasl = reason.contains("SASL Handshake not supported by broker")
        || reason
            .trim_end()
            .ends_with("broker's supported mechanisms:");
    if no_sasl {
        format!(
            "{}; this listener does not use SASL: leave out -X security.protocol=SASL_… and \
             the sasl.* settings, or point -b at the cluster's SASL listener",
            reason.trim_end()
        )
    } else {
        reason.to_owned()
    }
}

/// librdkafka reasons look like `localhost:9092/bootstrap: Connect to ipv4#127.0.0.1:9092
/// failed: Connection refused (after 0ms in state CONNECT)`; keep the part a learner needs.
pub(crate) fn tidy_reason(reason: &str) -> String {
    let reason = reason.trim();
    let reason = reason
        .split_once(": ")
        .filter(|(prefix, _)| prefix.contains('/'))
        .map_or(reason, |(_, rest)| rest);
    match reason.find(" (after ") {
        Some(cut) => reason[..cut].to_owned(),
        None => reason.to_owned(),
    }
}

impl ClientContext for ConnectionHealth {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_to_tracing(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", %error, reason, "client error");
        self.record(&error, reason);
    }
}

/// Plain consumers (outside any group logic) report their health the same way.
impl rdkafka::consumer::ConsumerContext for ConnectionHealth {}

/// librdkafka's own log lines, at their own levels, under the `librdkafka` target. The user
/// sees what [`ConnectionHealth`] makes of them; RUST_LOG=librdkafka=debug shows the raw lines.
pub(crate) fn log_to_tracing(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", facility, "{message}"),
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", facility, "{message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
    }
}

/// Waits up to `timeout` until `producer` has nothing in flight; true when nothing is left.
///
/// rdkafka's own `flush` (and `poll`) serve events for whole 100 ms rounds even when the last
/// acknowledgement arrives at once, which every short-lived command would pay on exit; this
/// serves them in 2 ms steps instead.
pub(crate) fn flush_promptly<C, P>(producer: &BaseProducer<C, P>, timeout: Duration) -> bool
where
    C: ProducerContext<P>,
    P: Partitioner,
{
    let deadline = Instant::now() + timeout;
    // Wakes the broker threads; what lingers still waits out linger.ms (see
    // `OrderProducer::flush`).
    let _ = producer.flush(Duration::ZERO);
    while producer.in_flight_count() > 0 && Instant::now() < deadline {
        producer.poll(Duration::from_millis(2));
    }
    producer.in_flight_count() <= 0
}

/// Closes a consumer that has a `group.id` (for a group member: the final revoke, the last
/// commit callbacks, leaving the group), within `timeout`; true once it is closed.
///
/// rdkafka's `Drop` closes such a consumer itself, but waits for it in `poll(100 ms)` rounds
/// that run to their deadline: 100 ms per client on every exit, for a client that closes in a
/// millisecond. Closing it here, polling in short steps, leaves `Drop` nothing to wait for.
pub(crate) fn close_promptly<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    timeout: Duration,
) -> bool {
    if consumer.closed() {
        return true;
    }
    if consumer.close_queue().is_err() {
        return false;
    }
    let deadline = Instant::now() + timeout;
    while !consumer.closed() && Instant::now() < deadline {
        let _ = consumer.poll(Duration::from_millis(2));
    }
    consumer.closed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_tidied_for_people() {
        assert_eq!(
            tidy_reason(
                "localhost:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused (after 0ms in state CONNECT)"
            ),
            "Connect to ipv4#127.0.0.1:9092 failed: Connection refused"
        );
        assert_eq!(tidy_reason("1/1 brokers are down"), "1/1 brokers are down");
    }

    #[test]
    fn a_sasl_client_at_a_listener_without_sasl_is_told_so_past_all_brokers_down() {
        for said in [
            "sasl_plaintext://127.0.0.1:1/bootstrap: Failed to initialize SASL authentication: \
             SASL Handshake not supported by broker (required by mechanism PLAIN) (after 0ms in \
             state AUTH_LEGACY)",
            "sasl_plaintext://127.0.0.1:1/bootstrap: SASL PLAIN mechanism handshake failed: \
             Broker: Request not valid in current SASL state: broker's supported mechanisms:  \
             (after 0ms in state AUTH_HANDSHAKE)",
        ] {
            let health = ConnectionHealth::default();
            health.record(&KafkaError::Global(RDKafkaErrorCode::Authentication), said);
            health.record(
                &KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
                "1/1 brokers are down",
            );
            let Connection::Refused { reason } = health.current() else {
                panic!("{:?}", health.current());
            };
            assert!(
                reason.contains("this listener does not use SASL"),
                "{reason}"
            );
            // Once the cluster answers again, a later outage is an outage.
            health.mark_ok();
            health.record(
                &KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
                "1/1 brokers are down",
            );
            assert!(
                matches!(health.current(), Connection::Unreachable { .. }),
                "{:?}",
                health.current()
            );
        }
    }

    #[test]
    fn all_brokers_down_is_explained_by_the_last_transport_error() {
        let health = ConnectionHealth::default();
        health.record(
            &KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure),
            "h:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in state CONNECT)",
        );
        assert!(health.current().is_ok(), "one failure is not an outage");
        health.record(
            &KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        assert_eq!(
            health.current(),
            Connection::Unreachable {
                reason: "Connect to ipv4#127.0.0.1:1 failed: Connection refused".into()
            }
        );
        health.mark_ok();
        assert!(health.current().is_ok());
    }
}
