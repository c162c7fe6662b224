//! What the producer says when the cluster goes away and when it is back.

use crate::report::activity::Connection;

/// Tells the user when the cluster goes away and when it is back, once each: librdkafka
/// reports an outage many times over, with changing reasons.
pub(crate) struct OutageReport {
    in_outage: bool,
    /// The effective message.timeout.ms, to say how long events can wait.
    timeout_ms: u64,
}

impl OutageReport {
    /// No outage yet; events wait at most `timeout_ms` for delivery.
    pub(crate) fn new(timeout_ms: u64) -> OutageReport {
        OutageReport {
            in_outage: false,
            timeout_ms,
        }
    }

    /// The line to print about the connection's new `state`, if it is news.
    pub(crate) fn line(&mut self, state: &Connection) -> Option<String> {
        let line = match state {
            Connection::Ok if self.in_outage => {
                self.in_outage = false;
                "Kafka is reachable again; sending resumes".to_owned()
            }
            Connection::Unreachable { reason } if !self.in_outage => {
                self.in_outage = true;
                format!(
                    "warning: cannot reach Kafka ({reason}); events wait in memory and fail if \
                     not delivered within {} s",
                    self.timeout_ms / 1000
                )
            }
            Connection::Refused { reason } => {
                format!("error: Kafka refused the connection: {reason}")
            }
            Connection::Fatal { reason } => format!("error: the producer cannot go on: {reason}"),
            Connection::Ok | Connection::Unreachable { .. } => return None,
        };
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable(reason: &str) -> Connection {
        Connection::Unreachable {
            reason: reason.into(),
        }
    }

    #[test]
    fn an_outage_is_told_once_and_its_end_once() {
        let mut outage = OutageReport::new(30_000);
        assert_eq!(outage.line(&Connection::Ok), None);
        assert_eq!(
            outage.line(&unreachable("connection refused")).as_deref(),
            Some(
                "warning: cannot reach Kafka (connection refused); events wait in memory and \
                 fail if not delivered within 30 s"
            )
        );
        assert_eq!(outage.line(&unreachable("timed out")), None);
        assert_eq!(
            outage.line(&Connection::Ok).as_deref(),
            Some("Kafka is reachable again; sending resumes")
        );
        assert_eq!(outage.line(&Connection::Ok), None);
    }

    #[test]
    fn refusals_and_fatal_errors_are_always_told() {
        let mut outage = OutageReport::new(30_000);
        let refused = Connection::Refused {
            reason: "bad credentials".into(),
        };
        for _ in 0..2 {
            assert_eq!(
                outage.line(&refused).as_deref(),
                Some("error: Kafka refused the connection: bad credentials")
            );
        }
        let fatal = Connection::Fatal {
            reason: "fenced".into(),
        };
        assert_eq!(
            outage.line(&fatal).as_deref(),
            Some("error: the producer cannot go on: fenced")
        );
    }
}
