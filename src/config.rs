//! Validated connection settings shared by every subcommand (`-b`, `-t`, `-X`), and the
//! librdkafka client configuration built from them. Anything printed about the configuration
//! goes through [`KafkaSettings::describe`], which redacts secrets.

use std::fmt;

use rdkafka::ClientConfig;

/// Why the connection settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no brokers given: pass -b HOST:PORT (for example -b localhost:9092)")]
    NoBrokers,
    #[error("broker address \"{0}\" is not HOST:PORT (for example localhost:9092)")]
    BadBroker(String),
    #[error(
        "broker address \"{address}\" has {what} in its host: a host is a name or an IP \
         address, without spaces (separate brokers with commas: -b host1:9092,host2:9092)"
    )]
    BadHost { address: String, what: &'static str },
    #[error(
        "topic name \"{0}\" is not valid: use 1 to 249 characters from a-z, A-Z, 0-9, '.', '_' and '-'"
    )]
    BadTopic(String),
    #[error("-X {key}=…: {reason}")]
    BadProperty { key: String, reason: String },
    #[error("{0}")]
    BadGroup(&'static str),
}

/// A librdkafka property given with `-X`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    pub key: String,
    pub value: String,
}

/// Parses `KEY=VALUE` (the value may itself contain `=`). Used by clap, so the message is
/// what the user sees after "invalid value … for '-X <KEY=VALUE>'".
pub(crate) fn parse_property(arg: &str) -> Result<Property, String> {
    match arg.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok(Property {
            key: key.trim().to_owned(),
            value: value.to_owned(),
        }),
        _ => Err(
            "expected KEY=VALUE, a librdkafka property such as -X security.protocol=SASL_SSL"
                .to_owned(),
        ),
    }
}

/// Whether a property's value must never be printed.
pub(crate) fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key == "ssl.key.pem"
        || key == "ssl_key"
        || key == "sasl.oauthbearer.config"
}

/// Where the Kafka cluster is and which topic the order platform uses.
#[derive(Clone, Debug)]
pub struct KafkaSettings {
    /// Bootstrap servers, each `HOST:PORT`.
    pub brokers: Vec<String>,
    /// The order-events topic.
    pub topic: String,
    /// Extra librdkafka properties, applied last so they override our defaults.
    pub properties: Vec<Property>,
}

impl KafkaSettings {
    /// Validates the raw flag values; no I/O.
    pub fn new(
        brokers: &str,
        topic: &str,
        properties: Vec<Property>,
    ) -> Result<KafkaSettings, ConfigError> {
        let brokers: Vec<String> = brokers
            .split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(str::to_owned)
            .collect();
        if brokers.is_empty() {
            return Err(ConfigError::NoBrokers);
        }
        for broker in &brokers {
            validate_broker(broker)?;
        }
        validate_topic(topic)?;
        let settings = KafkaSettings {
            brokers,
            topic: topic.to_owned(),
            properties,
        };
        // librdkafka knows its own properties: ask it now, so a typo in -X fails before any
        // connection is attempted and names the property.
        for property in &settings.properties {
            let mut single = ClientConfig::new();
            single.set(&property.key, &property.value);
            single
                .create_native_config()
                .map_err(|e| ConfigError::BadProperty {
                    key: property.key.clone(),
                    reason: native_config_reason(&e),
                })?;
        }
        Ok(settings)
    }

    /// The bootstrap list as librdkafka takes it.
    pub fn bootstrap(&self) -> String {
        self.brokers.join(",")
    }

    /// A client configuration: bootstrap servers, then `defaults` (the role's own settings),
    /// then every `-X` property, so the user always has the last word.
    pub(crate) fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.bootstrap());
        // After an outage, reconnect within a second instead of librdkafka's growing backoff
        // of up to 10 s: a class watching a broker come back should see the clients follow.
        // (librdkafka also checks message timeouts on that cycle, so they fire on time.)
        config.set("reconnect.backoff.max.ms", "1000");
        // librdkafka spaces new connections by half the initial backoff; at its default
        // (100 ms) every command waits 50 ms at start for its connection to the broker it
        // learnt from the bootstrap server.
        config.set("reconnect.backoff.ms", "20");
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        for property in &self.properties {
            config.set(&property.key, &property.value);
        }
        config
    }

    /// A configuration for a client that reads or asks but never joins a group (a
    /// partition's history, the group view): like [`KafkaSettings::client_config`], without
    /// the `-X` properties that only concern a group's members. With them, `-X
    /// group.protocol=consumer` would make librdkafka refuse such a client over a session
    /// timeout, or run it as a KIP-848 member of the group whose offsets it only reads.
    pub(crate) fn outsider_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = self.client_config(defaults);
        for property in &self.properties {
            if MEMBERSHIP_PROPERTIES.contains(&property.key.as_str()) {
                config.remove(&property.key);
                if let Some((_, value)) = defaults.iter().find(|(k, _)| *k == property.key) {
                    config.set(property.key.as_str(), *value);
                }
            }
        }
        config
    }

    /// Whether the user set `key` with `-X`.
    pub(crate) fn overrides(&self, key: &str) -> bool {
        self.properties.iter().any(|p| p.key == key)
    }

    /// A one-line description for banners and logs, secrets redacted.
    pub(crate) fn describe(&self) -> Described<'_> {
        Described(self)
    }
}

/// The properties that only concern a member of a consumer group.
const MEMBERSHIP_PROPERTIES: [&str; 7] = [
    "group.protocol",
    "group.protocol.type",
    "group.remote.assignor",
    "group.instance.id",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
];

/// Display form of [`KafkaSettings`] with secret values replaced by `[redacted]`.
pub(crate) struct Described<'a>(&'a KafkaSettings);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "topic {} on {}", self.0.topic, self.0.bootstrap())?;
        for property in &self.0.properties {
            let value = if is_secret(&property.key) {
                "[redacted]"
            } else {
                &property.value
            };
            write!(f, " -X {}={}", property.key, value)?;
        }
        Ok(())
    }
}

/// Redacts secrets in a full client configuration, for debug logs.
pub(crate) fn redacted(config: &ClientConfig) -> String {
    let mut pairs: Vec<_> = config
        .config_map()
        .iter()
        .map(|(k, v)| {
            let v: &str = if is_secret(k) { "[redacted]" } else { v };
            format!("{k}={v}")
        })
        .collect();
    pairs.sort();
    pairs.join(" ")
}

fn native_config_reason(error: &rdkafka::error::KafkaError) -> String {
    match error {
        rdkafka::error::KafkaError::ClientConfig(_, description, _, _) => description.clone(),
        other => other.to_string(),
    }
}

fn validate_broker(broker: &str) -> Result<(), ConfigError> {
    let bad = || ConfigError::BadBroker(broker.to_owned());
    // Kafka bootstrap entries may carry a listener prefix such as SASL_SSL://host:port.
    let address = broker.rsplit_once("://").map_or(broker, |(_, a)| a);
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(bad());
    }
    // librdkafka would only find out when resolving the name, ten seconds later, as "no
    // answer".
    if let Some(c) = host.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::BadHost {
            address: broker.to_owned(),
            what: if c.is_whitespace() {
                "a space"
            } else {
                "a control character"
            },
        });
    }
    Ok(())
}

pub(crate) fn validate_topic(topic: &str) -> Result<(), ConfigError> {
    let valid = (1..=249).contains(&topic.len())
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(ConfigError::BadTopic(topic.to_owned()))
    }
}

/// The longest group id the Kafka protocol carries: a STRING, whose length is an int16.
const MAX_GROUP_BYTES: usize = i16::MAX as usize;

/// Checks a consumer group id (`-g`) as Kafka would, before any connection: Kafka accepts
/// almost any string, but an empty one is refused (INVALID_GROUP_ID; librdkafka fails
/// further down with "consumer queue not available"), the KIP-848 protocol also refuses one
/// of only whitespace, and the protocol cannot carry more than 32,767 bytes. Names with
/// control characters are allowed, as in Kafka; plain output strips them when it prints.
pub(crate) fn parse_group(group: &str) -> Result<String, ConfigError> {
    if group.is_empty() {
        Err(ConfigError::BadGroup(
            "a group id cannot be empty (Kafka refuses it): give a name, e.g. -g analytics-2",
        ))
    } else if group.trim().is_empty() {
        Err(ConfigError::BadGroup(
            "a group id cannot be only whitespace (Kafka's consumer protocol refuses it): give \
             a name, e.g. -g analytics-2",
        ))
    } else if group.len() > MAX_GROUP_BYTES {
        Err(ConfigError::BadGroup(
            "a group id can be at most 32,767 bytes long (the Kafka protocol cannot carry more)",
        ))
    } else {
        Ok(group.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_are_checked_as_kafka_checks_them() {
        for good in [
            "analytics",
            "a",
            " padded ",
            "evil\u{1b}[2J",
            "ünïcode/with:colons",
        ] {
            assert_eq!(parse_group(good).unwrap(), good);
        }
        assert!(parse_group(&"g".repeat(MAX_GROUP_BYTES)).is_ok());
        for bad in [
            String::new(),
            " ".into(),
            "\t \n".into(),
            "g".repeat(MAX_GROUP_BYTES + 1),
        ] {
            assert!(parse_group(&bad).is_err(), "{bad:?}");
        }
    }

    fn props(pairs: &[&str]) -> Vec<Property> {
        pairs.iter().map(|p| parse_property(p).unwrap()).collect()
    }

    #[test]
    fn properties_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_property("sasl.jaas=a=b").unwrap(),
            Property {
                key: "sasl.jaas".into(),
                value: "a=b".into()
            }
        );
        assert!(parse_property("novalue").is_err());
        assert!(parse_property("=x").is_err());
    }

    #[test]
    fn secrets_are_redacted_everywhere_config_is_printed() {
        let settings = KafkaSettings::new(
            "b1:9092,b2:9092",
            "order-events",
            props(&[
                "security.protocol=SASL_SSL",
                "sasl.mechanisms=PLAIN",
                "sasl.username=alice",
                "sasl.password=hunter2",
            ]),
        )
        .unwrap();
        let shown = settings.describe().to_string();
        assert!(shown.contains("sasl.username=alice"), "{shown}");
        assert!(shown.contains("sasl.password=[redacted]"), "{shown}");
        assert!(!shown.contains("hunter2"));
        let full = redacted(&settings.client_config(&[("acks", "all")]));
        assert!(full.contains("sasl.password=[redacted]"), "{full}");
        assert!(!full.contains("hunter2"));
        for key in [
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
        ] {
            assert!(is_secret(key), "{key}");
        }
    }

    #[test]
    fn user_properties_override_role_defaults() {
        let settings = KafkaSettings::new("localhost:9092", "t", props(&["linger.ms=50"])).unwrap();
        let config = settings.client_config(&[("linger.ms", "5")]);
        assert_eq!(config.get("linger.ms"), Some("50"));
        assert_eq!(config.get("bootstrap.servers"), Some("localhost:9092"));
    }

    #[test]
    fn clients_outside_the_group_leave_out_membership_properties() {
        let settings = KafkaSettings::new(
            "localhost:9092",
            "t",
            props(&[
                "group.protocol=consumer",
                "session.timeout.ms=10000",
                "fetch.wait.max.ms=7",
            ]),
        )
        .unwrap();
        let config = settings.outsider_config(&[("group.id", "g")]);
        assert_eq!(config.get("group.protocol"), None);
        assert_eq!(config.get("session.timeout.ms"), None);
        assert_eq!(config.get("fetch.wait.max.ms"), Some("7"));
        assert_eq!(config.get("group.id"), Some("g"));
        let member = settings.client_config(&[("group.id", "g")]);
        assert_eq!(member.get("group.protocol"), Some("consumer"));
    }

    #[test]
    fn bad_settings_are_named() {
        assert!(matches!(
            KafkaSettings::new("localhost", "t", vec![]),
            Err(ConfigError::BadBroker(_))
        ));
        assert!(matches!(
            KafkaSettings::new(" , ", "t", vec![]),
            Err(ConfigError::NoBrokers)
        ));
        assert!(matches!(
            KafkaSettings::new("localhost:9092", "no spaces", vec![]),
            Err(ConfigError::BadTopic(_))
        ));
        let err = KafkaSettings::new("localhost:9092", "t", props(&["no.such.thing=1"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no.such.thing"), "{err}");
        assert!(KafkaSettings::new("SASL_SSL://h:9093", "t", vec![]).is_ok());
        for (address, what) in [("local host:9092", "a space"), ("a\tb:1", "a space")] {
            let err = KafkaSettings::new(address, "t", vec![]).unwrap_err();
            assert!(
                matches!(&err, ConfigError::BadHost { what: w, .. } if *w == what),
                "{err}"
            );
        }
        assert!(matches!(
            KafkaSettings::new("a\u{7}b:1", "t", vec![]),
            Err(ConfigError::BadHost { .. })
        ));
    }
}
