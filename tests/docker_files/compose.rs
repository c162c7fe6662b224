//! The Compose model (only the keys these files use; unknown keys are refused, so a typo such
//! as `helthcheck:` fails here, and a real Compose key new to these files must be added) and
//! the Kafka listener lists of the apache/kafka image's KAFKA_* variables.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml_ng::Value;

/// The image the compose files build from docker/Dockerfile for the orderflow roles.
pub const ORDERFLOW_IMAGE: &str = "orderflow:dev";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeFile {
    pub name: Option<String>,
    pub services: BTreeMap<String, Service>,
    #[serde(default)]
    pub volumes: BTreeMap<String, Option<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub image: Option<String>,
    pub build: Option<Build>,
    pub hostname: Option<String>,
    pub container_name: Option<String>,
    #[serde(default)]
    pub profiles: Vec<String>,
    /// Exec form only (a list): the checks need the exact arguments.
    pub entrypoint: Option<Vec<String>>,
    /// Exec form only (a list), for the same reason.
    pub command: Option<Vec<String>>,
    /// Map form only (`KEY: value`); values may be YAML numbers.
    #[serde(default)]
    pub environment: BTreeMap<String, Value>,
    #[serde(default)]
    pub ports: Vec<String>,
    #[serde(default)]
    pub volumes: Vec<String>,
    /// Long form only, so that every dependency says what it waits for.
    #[serde(default)]
    pub depends_on: BTreeMap<String, Dependency>,
    pub healthcheck: Option<Healthcheck>,
    pub restart: Option<String>,
    pub stop_grace_period: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    pub context: String,
    pub dockerfile: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    pub condition: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: String,
    pub timeout: String,
    pub start_period: String,
    pub retries: u32,
}

impl Service {
    pub fn env(&self, key: &str) -> Option<String> {
        self.environment.get(key).map(|value| match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => format!("{other:?}"),
        })
    }

    /// A service running the orderflow image (the Dockerfile's ENTRYPOINT is orderflow).
    pub fn runs_orderflow(&self) -> bool {
        self.build.is_some() || self.image.as_deref() == Some(ORDERFLOW_IMAGE)
    }

    /// A Kafka broker: the apache/kafka image running its own start script.
    pub fn is_broker(&self) -> bool {
        self.image
            .as_deref()
            .is_some_and(|i| i.starts_with("apache/kafka:"))
            && self.entrypoint.is_none()
            && self.command.is_none()
    }

    /// (host port, container port) of every published port.
    pub fn published(&self) -> Vec<Result<(u16, u16), String>> {
        self.ports
            .iter()
            .map(|mapping| {
                let parts: Vec<&str> = mapping.split(':').collect();
                let [.., host, container] = parts.as_slice() else {
                    return Err(format!("port {mapping:?} is not HOST:CONTAINER"));
                };
                match (host.parse(), container.parse()) {
                    (Ok(h), Ok(c)) => Ok((h, c)),
                    _ => Err(format!("port {mapping:?} is not HOST:CONTAINER")),
                }
            })
            .collect()
    }
}

/// Parses a compose file as Compose does: YAML with anchors and `<<` merge keys, top-level
/// `x-` keys being extension fields that Compose ignores.
pub fn parse_compose(text: &str) -> Result<ComposeFile, String> {
    let mut value: Value = serde_yaml_ng::from_str(text).map_err(|e| format!("not YAML: {e}"))?;
    value
        .apply_merge()
        .map_err(|e| format!("bad `<<` merge: {e}"))?;
    if let Value::Mapping(top) = &mut value {
        top.retain(|key, _| !key.as_str().is_some_and(|k| k.starts_with("x-")));
    }
    serde_yaml_ng::from_value(value)
        .map_err(|e| format!("not a compose file these checks know: {e}"))
}

// Kafka listeners, as the apache/kafka image's KAFKA_* variables spell them.

#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

pub fn parse_listeners(list: &str) -> Result<Vec<Listener>, String> {
    list.split(',')
        .map(|entry| {
            let (name, address) = entry
                .trim()
                .split_once("://")
                .ok_or_else(|| format!("listener {entry:?} is not NAME://HOST:PORT"))?;
            let (host, port) = address
                .rsplit_once(':')
                .ok_or_else(|| format!("listener {entry:?} has no port"))?;
            let port = port
                .parse()
                .map_err(|_| format!("listener {entry:?} has a bad port"))?;
            Ok(Listener {
                name: name.to_owned(),
                host: host.to_owned(),
                port,
            })
        })
        .collect()
}

/// A broker as the checks see it.
pub struct Broker {
    pub service: String,
    pub node_id: String,
    pub listeners: Vec<Listener>,
    pub advertised: Vec<Listener>,
}

impl Broker {
    /// The addresses other containers use: advertised, not on localhost.
    pub fn container_addresses(&self) -> Vec<String> {
        self.advertised
            .iter()
            .filter(|l| l.host != "localhost")
            .map(|l| format!("{}:{}", l.host, l.port))
            .collect()
    }

    pub fn listener(&self, name: &str) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.name == name)
    }
}
