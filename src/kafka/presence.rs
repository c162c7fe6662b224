//! A member's announcements on `<topic>.members`: a [`Report`] sink that turns the member's
//! own activity (joined, assigned, revoked, progress, paused, left) into [`Announcement`]s, so
//! that group views can show who owns what where the cluster cannot describe its groups.
//!
//! Announcements are best effort: a cluster that refuses the topic costs the view the
//! members, never the role its work.

use std::time::Duration;

use chrono::Utc;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::producer::{BaseProducer, BaseRecord};

use super::client::{ConnectionHealth, flush_promptly};
use crate::config::KafkaSettings;
use crate::report::activity::{Activity, Report};
use crate::report::group_view::{Announcement, MemberState, announcement_topic};

/// Publishes one member's announcements.
pub(crate) struct Presence {
    producer: BaseProducer<PresenceContext>,
    topic: String,
    /// The announcement as it stands; sent again whenever something changes, and on every
    /// progress report as a heartbeat.
    current: Option<Announcement>,
}

/// Quiet: a failed announcement is not worth a line of the role's output.
#[derive(Default)]
pub(crate) struct PresenceContext {
    health: ConnectionHealth,
}

impl rdkafka::ClientContext for PresenceContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        rdkafka::ClientContext::log(&self.health, level, facility, message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "presence producer");
    }
}

impl rdkafka::producer::ProducerContext for PresenceContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            tracing::debug!(%error, "announcement not delivered");
        }
    }
}

/// The name of this machine, for announcements.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

impl Presence {
    pub fn new(settings: &KafkaSettings) -> Result<Presence, rdkafka::error::KafkaError> {
        let config = settings.client_config(&[
            // Announcements are heartbeats: an old one is worthless, so do not keep retrying.
            ("message.timeout.ms", "5000"),
            ("queue.buffering.max.messages", "1000"),
            ("linger.ms", "0"),
            ("log.connection.close", "false"),
        ]);
        Ok(Presence {
            producer: BaseProducer::from_config_and_context(&config, PresenceContext::default())?,
            topic: announcement_topic(&settings.topic),
            current: None,
        })
    }

    fn publish(&mut self) {
        let Some(announcement) = &mut self.current else {
            return;
        };
        announcement.at = Utc::now();
        let Ok(value) = serde_json::to_vec(announcement) else {
            return;
        };
        let record = BaseRecord::<'_, str, [u8]>::to(&self.topic)
            .key(&announcement.member)
            .payload(&value);
        if let Err((error, _)) = self.producer.send(record) {
            tracing::debug!(%error, "announcement not queued");
        }
        // Serve delivery reports without blocking the role.
        self.producer.poll(Duration::ZERO);
    }
}

impl Report for Presence {
    fn report(&mut self, activity: Activity) {
        match activity {
            Activity::Joined {
                role,
                group,
                member,
                topic,
                protocol,
                assignor,
                ..
            } => {
                self.current = Some(Announcement {
                    member,
                    host: host_name(),
                    group,
                    role: role.to_owned(),
                    topic,
                    owns: Vec::new(),
                    paused: false,
                    state: MemberState::Active,
                    at: Utc::now(),
                    group_protocol: Some(protocol),
                    assignor,
                });
                self.publish();
            }
            Activity::Assigned { now_owned, .. } | Activity::Revoked { now_owned, .. } => {
                if let Some(a) = &mut self.current {
                    a.owns = now_owned;
                }
                self.publish();
            }
            Activity::Paused(paused) => {
                if let Some(a) = &mut self.current {
                    a.paused = paused;
                }
                self.publish();
            }
            Activity::Progress(_) => self.publish(),
            Activity::Left => {
                if let Some(a) = &mut self.current {
                    a.state = MemberState::Left;
                    a.owns.clear();
                }
                self.publish();
                flush_promptly(&self.producer, Duration::from_secs(1));
            }
            _ => {}
        }
    }
}
