//! The two group protocols a member can use, and which of orderflow's group settings apply
//! under each.
//!
//! - **classic** (librdkafka's default): the members run the rebalance. The client picks the
//!   assignor (`partition.assignment.strategy`; orderflow: cooperative-sticky) and the session
//!   timeout and heartbeat interval (orderflow: 6 s and 1 s, so a member that dies is
//!   replaced within seconds).
//! - **consumer** (KIP-848, `-X group.protocol=consumer`): the broker runs it. It assigns the
//!   partitions with a server-side assignor (`group.remote.assignor`: uniform or range; unset,
//!   the broker chooses) and sets the session timeout and heartbeat interval itself
//!   (`group.consumer.session.timeout.ms`, 45 s, and `group.consumer.heartbeat.interval.ms`,
//!   5 s, by default). librdkafka 2.12 refuses to create a consumer that sets any of the
//!   client-side properties under it (`rd_kafka_conf_finalize` in rdkafka_conf.c), so
//!   orderflow sets none of them there, and says so when the user does.

use crate::config::KafkaSettings;
pub use crate::report::group_view::GroupProtocol;

/// The assignor orderflow's classic members use: rebalances move only the partitions that
/// must move, and the others keep being read meanwhile.
pub(crate) const CLASSIC_ASSIGNOR: &str = "cooperative-sticky";

/// The session timeout classic members use: short, so that a member that dies is replaced
/// within seconds (on the built-in broker a rebalance waits for it), long enough for a slow
/// laptop.
const SESSION_TIMEOUT_MS: &str = "6000";

/// How often classic members heartbeat: a rebalance reaches each member at its next heartbeat.
const HEARTBEAT_INTERVAL_MS: &str = "1000";

/// Said at join to a consumer-protocol member on the built-in broker, whose KIP-848 support
/// is partial (measured with librdkafka 2.12's mock cluster).
pub(crate) const BUILT_IN_KIP848_NOTICE: &str = "the built-in broker's KIP-848 is partial: a \
    classic member joining this group would get every partition while these members keep \
    theirs, and their commits would then fail (Unknown member); consumer-protocol members alone \
    split the partitions as Kafka does. Real Kafka converts a group a classic member joins and \
    hands partitions over instead. Keep one protocol per group here, or use real Kafka \
    (docker/) to study KIP-848";

/// What to tell a classic member that its group refuses (INCONSISTENT_GROUP_PROTOCOL):
/// Kafka keeps the assignors of the members the group already has, and refuses a joiner
/// that offers none of them. Measured on Kafka 4.1: whichever client joins an empty group
/// first decides, so a plain `kcat -G` (range,roundrobin) that got there first keeps
/// orderflow out until it leaves.
pub(crate) fn inconsistent_protocol_notice(group: &str, offered: &str) -> String {
    // Against orderflow's default, the usual other side is librdkafka's own default.
    let likely = if offered == CLASSIC_ASSIGNOR {
        ", probably librdkafka's default range,roundrobin (a plain kcat -G)"
    } else {
        ""
    };
    format!(
        "group {group} refuses this member (Inconsistent group protocol): its members use an \
         assignor this member does not offer ({offered}){likely}. A group keeps the assignors \
         of the members it has; this member keeps asking and gets partitions once they leave. \
         Start the others with -X partition.assignment.strategy={offered}"
    )
}

/// The properties librdkafka refuses under `group.protocol=consumer`, each with where that
/// setting lives instead.
const BROKER_SIDE: [(&str, &str); 4] = [
    (
        "session.timeout.ms",
        "the broker sets the session timeout of consumer-protocol groups \
         (group.consumer.session.timeout.ms, 45 s unless the cluster changed it)",
    ),
    (
        "heartbeat.interval.ms",
        "the broker sets the heartbeat interval of consumer-protocol groups \
         (group.consumer.heartbeat.interval.ms, 5 s unless the cluster changed it)",
    ),
    (
        "partition.assignment.strategy",
        "the broker assigns the partitions; choose its assignor with \
         -X group.remote.assignor=uniform or range",
    ),
    (
        "group.protocol.type",
        "only classic groups have a protocol type",
    ),
];

/// The Kafka client's side of a [`GroupProtocol`] (the type itself lives with the group view,
/// which knows nothing of librdkafka).
pub(crate) trait MemberProtocol: Sized {
    /// The protocol `-X group.protocol` asks for (classic when it is not given).
    fn of(settings: &KafkaSettings) -> Self;
    fn member_properties(self) -> &'static [(&'static str, &'static str)];
    /// Refuses a `-X` property that librdkafka would refuse under this protocol, naming it
    /// as the user's and saying where that setting lives instead.
    fn check(self, settings: &KafkaSettings) -> Result<(), BrokerSideProperty>;
    fn requested_assignor(self, settings: &KafkaSettings) -> Option<String>;
}

impl MemberProtocol for GroupProtocol {
    fn of(settings: &KafkaSettings) -> GroupProtocol {
        // librdkafka checked the value when the settings were parsed.
        match last_value(settings, "group.protocol") {
            Some(v) if v.eq_ignore_ascii_case("consumer") => GroupProtocol::Consumer,
            _ => GroupProtocol::Classic,
        }
    }

    /// The group properties orderflow sets for a member, before the user's `-X`.
    fn member_properties(self) -> &'static [(&'static str, &'static str)] {
        match self {
            GroupProtocol::Classic => &[
                ("partition.assignment.strategy", CLASSIC_ASSIGNOR),
                ("session.timeout.ms", SESSION_TIMEOUT_MS),
                ("heartbeat.interval.ms", HEARTBEAT_INTERVAL_MS),
            ],
            // The broker owns all three.
            GroupProtocol::Consumer => &[],
        }
    }

    fn check(self, settings: &KafkaSettings) -> Result<(), BrokerSideProperty> {
        if self != GroupProtocol::Consumer {
            return Ok(());
        }
        match BROKER_SIDE.iter().find(|(key, _)| settings.overrides(key)) {
            Some(&(key, instead)) => Err(BrokerSideProperty { key, instead }),
            None => Ok(()),
        }
    }

    /// The assignor this member asks for: classic members name it themselves (the first one
    /// all members support is used); a consumer-protocol member may request one of the
    /// broker's, or leave the choice to the broker (None).
    fn requested_assignor(self, settings: &KafkaSettings) -> Option<String> {
        match self {
            GroupProtocol::Classic => Some(
                last_value(settings, "partition.assignment.strategy")
                    .unwrap_or(CLASSIC_ASSIGNOR)
                    .to_owned(),
            ),
            GroupProtocol::Consumer => {
                last_value(settings, "group.remote.assignor").map(str::to_owned)
            }
        }
    }
}

/// The value of the last `-X key=…` (the one librdkafka applies).
fn last_value<'a>(settings: &'a KafkaSettings, key: &str) -> Option<&'a str> {
    settings
        .properties
        .iter()
        .rev()
        .find(|p| p.key == key)
        .map(|p| p.value.trim())
}

/// A `-X` property that cannot be used under `group.protocol=consumer`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "your -X {key} cannot be used with -X group.protocol=consumer (KIP-848): {instead}. Remove \
     -X {key}, or leave out -X group.protocol=consumer to use the classic protocol"
)]
pub struct BrokerSideProperty {
    pub key: &'static str,
    pub instead: &'static str,
}

#[cfg(test)]
mod tests {
    use rdkafka::ClientConfig;

    use super::*;
    use crate::config::parse_property;

    fn settings(properties: &[&str]) -> KafkaSettings {
        KafkaSettings::new(
            "localhost:9092",
            "order-events",
            properties
                .iter()
                .map(|p| parse_property(p).unwrap())
                .collect(),
        )
        .unwrap()
    }

    /// librdkafka's own verdict on a consumer configuration (no connection is made).
    fn librdkafka_accepts(config: &ClientConfig) -> Result<(), String> {
        use rdkafka::consumer::BaseConsumer;
        config
            .create::<BaseConsumer>()
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn member_config(settings: &KafkaSettings) -> ClientConfig {
        let protocol = GroupProtocol::of(settings);
        let mut defaults = vec![("group.id", "g")];
        defaults.extend_from_slice(protocol.member_properties());
        settings.client_config(&defaults)
    }

    #[test]
    fn the_protocol_is_what_group_protocol_says() {
        assert_eq!(GroupProtocol::of(&settings(&[])), GroupProtocol::Classic);
        assert_eq!(
            GroupProtocol::of(&settings(&["group.protocol=consumer"])),
            GroupProtocol::Consumer
        );
        assert_eq!(
            GroupProtocol::of(&settings(&[
                "group.protocol=consumer",
                "group.protocol=classic"
            ])),
            GroupProtocol::Classic,
            "the last -X wins, as in librdkafka"
        );
    }

    #[test]
    fn librdkafka_accepts_what_orderflow_sets_under_either_protocol() {
        for s in [settings(&[]), settings(&["group.protocol=consumer"])] {
            assert_eq!(librdkafka_accepts(&member_config(&s)), Ok(()));
        }
        // The reason this module exists: classic's properties under the consumer protocol.
        let mut config = member_config(&settings(&["group.protocol=consumer"]));
        config.set("session.timeout.ms", SESSION_TIMEOUT_MS);
        assert!(librdkafka_accepts(&config).is_err());
    }

    #[test]
    fn every_property_librdkafka_refuses_under_kip848_is_caught_first_and_named_as_yours() {
        for (key, _) in BROKER_SIDE {
            let value = match key {
                "partition.assignment.strategy" => "range",
                "group.protocol.type" => "consumer",
                _ => "10000",
            };
            let property = format!("{key}={value}");
            let s = settings(&["group.protocol=consumer", &property]);
            assert!(
                librdkafka_accepts(&member_config(&s)).is_err(),
                "librdkafka refuses {key}: the list matches its rules"
            );
            let refused = GroupProtocol::Consumer.check(&s).unwrap_err();
            assert_eq!(refused.key, key);
            let message = refused.to_string();
            assert!(message.starts_with(&format!("your -X {key} ")), "{message}");
            // Under classic the same property is fine.
            let classic = settings(&[&property]);
            assert_eq!(GroupProtocol::Classic.check(&classic), Ok(()));
            assert_eq!(librdkafka_accepts(&member_config(&classic)), Ok(()));
        }
        assert_eq!(
            GroupProtocol::Consumer.check(&settings(&[
                "group.protocol=consumer",
                "group.remote.assignor=range"
            ])),
            Ok(())
        );
    }

    #[test]
    fn a_refused_member_is_told_what_to_type() {
        let notice = inconsistent_protocol_notice("analytics", "cooperative-sticky");
        assert!(
            notice.starts_with("group analytics refuses this member"),
            "{notice}"
        );
        assert!(
            notice.ends_with("-X partition.assignment.strategy=cooperative-sticky"),
            "{notice}"
        );
    }

    #[test]
    fn the_requested_assignor_is_reported() {
        assert_eq!(
            GroupProtocol::Classic.requested_assignor(&settings(&[])),
            Some("cooperative-sticky".into())
        );
        assert_eq!(
            GroupProtocol::Classic
                .requested_assignor(&settings(&["partition.assignment.strategy=range"])),
            Some("range".into())
        );
        assert_eq!(
            GroupProtocol::Consumer.requested_assignor(&settings(&["group.protocol=consumer"])),
            None
        );
        assert_eq!(
            GroupProtocol::Consumer.requested_assignor(&settings(&[
                "group.protocol=consumer",
                "group.remote.assignor=uniform"
            ])),
            Some("uniform".into())
        );
    }
}
