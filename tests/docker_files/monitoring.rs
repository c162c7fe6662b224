//! The `monitoring` profile of docker/compose.yml and docker/compose.cluster.yml (no Docker
//! engine here: the files are parsed and checked, not run): Prometheus scrapes every orderflow service
//! on the port its ORDERFLOW_METRICS gives, Grafana is provisioned with that Prometheus and
//! the orderflow dashboard, and every query of the dashboard names a series orderflow exports
//! (docs/metrics.md lists them; tests/metrics checks that list against the real endpoints).

use std::collections::BTreeSet;
use std::net::SocketAddr;

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

use super::compose::parse_compose;
use super::{read, repo};

/// The series docs/metrics.md documents: the first cell of each table row, in backticks.
pub fn documented_series() -> BTreeSet<String> {
    read("docs/metrics.md")
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(name, _)| name.to_owned())
        .filter(|name| name.starts_with("orderflow_") || name.starts_with("kafka_"))
        .collect()
}

/// The series docs/metrics.md documents as histograms (the row's second cell).
fn documented_histograms() -> BTreeSet<String> {
    read("docs/metrics.md")
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once("` | histogram |"))
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// The metric names a PromQL expression uses: identifiers in orderflow's and Kafka's
/// namespaces (functions, labels and keywords never start so).
fn series_in(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut word = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            if word.starts_with("orderflow_") || word.starts_with("kafka_") {
                names.push(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
    names
}

/// What is wrong with a dashboard: panels without queries, queries naming series that are
/// not exported, panels on another data source than the provisioned one.
pub fn check_dashboard(dashboard: &str, datasource_uid: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let dashboard: Json = match serde_json::from_str(dashboard) {
        Ok(json) => json,
        Err(e) => return vec![format!("the dashboard is not JSON: {e}")],
    };
    let exported = documented_series();
    let histograms = documented_histograms();
    let panels = dashboard["panels"].as_array().cloned().unwrap_or_default();
    if panels.is_empty() {
        problems.push("the dashboard has no panels".to_owned());
    }
    for panel in &panels {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("panel {title:?} has no query"));
        }
        for source in
            std::iter::once(&panel["datasource"]).chain(targets.iter().map(|t| &t["datasource"]))
        {
            if source["uid"] != datasource_uid {
                problems.push(format!(
                    "panel {title:?} uses data source {}, not the provisioned {datasource_uid:?}",
                    source["uid"]
                ));
            }
        }
        for target in &targets {
            let expr = target["expr"].as_str().unwrap_or_default();
            let names = series_in(expr);
            if names.is_empty() {
                problems.push(format!(
                    "panel {title:?}: query {expr:?} names no orderflow series"
                ));
            }
            for name in names {
                // A histogram's series are its name with `_bucket`, `_sum` or `_count`.
                let histogram = ["_bucket", "_sum", "_count"]
                    .iter()
                    .filter_map(|suffix| name.strip_suffix(suffix))
                    .any(|base| histograms.contains(base));
                if !exported.contains(&name) && !histogram {
                    problems.push(format!(
                        "panel {title:?}: {name} is not a series orderflow exports (docs/metrics.md)"
                    ));
                }
            }
        }
    }
    problems
}

/// The provisioned Prometheus data source's uid.
fn provisioned_datasource() -> String {
    let provisioning: Yaml = serde_yaml_ng::from_str(&read(
        "docker/grafana/provisioning/datasources/prometheus.yml",
    ))
    .unwrap();
    let source = &provisioning["datasources"][0];
    assert_eq!(source["type"].as_str(), Some("prometheus"));
    assert_eq!(
        source["url"].as_str(),
        Some("http://prometheus:9090"),
        "Grafana reaches the compose file's Prometheus by its service name"
    );
    source["uid"].as_str().unwrap().to_owned()
}

#[test]
fn every_dashboard_query_names_a_series_orderflow_exports() {
    let problems = check_dashboard(
        &read("docker/grafana/dashboards/orderflow.json"),
        &provisioned_datasource(),
    );
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_dashboard_query_with_a_misspelt_series_is_caught() {
    let dashboard = read("docker/grafana/dashboards/orderflow.json");
    let uid = provisioned_datasource();
    for (from, to, expected) in [
        (
            "kafka_consumergroup_group_lag)",
            "kafka_consumergroup_lag)",
            "kafka_consumergroup_lag is not",
        ),
        (
            "orderflow_dead_letters_total",
            "orderflow_dlq_total",
            "orderflow_dlq_total is not",
        ),
        (
            "\"uid\": \"orderflow-prometheus\"",
            "\"uid\": \"prom\"",
            "not the provisioned",
        ),
    ] {
        assert!(
            dashboard.contains(from),
            "the dashboard no longer contains {from:?}"
        );
        let problems = check_dashboard(&dashboard.replacen(from, to, 1), &uid);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "expected {expected:?} in {problems:#?}"
        );
    }
}

#[test]
fn prometheus_scrapes_every_orderflow_service_on_its_metrics_port() {
    for compose in ["docker/compose.yml", "docker/compose.cluster.yml"] {
        scrapes_every_service(compose);
    }
}

/// `compose`'s monitoring profile: its Prometheus scrapes each of its orderflow services on
/// the port they serve metrics on, and it mounts docker/'s config and dashboards.
fn scrapes_every_service(compose: &str) {
    let file = parse_compose(&read(compose)).unwrap();
    let config: Yaml = serde_yaml_ng::from_str(&read("docker/prometheus/prometheus.yml")).unwrap();
    let discovery = &config["scrape_configs"][0]["dns_sd_configs"][0];
    let scraped: BTreeSet<String> = discovery["names"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    let port = discovery["port"].as_u64().unwrap();
    let roles: BTreeSet<String> = file
        .services
        .iter()
        .filter(|(_, s)| s.runs_orderflow())
        .map(|(name, _)| name.clone())
        .collect();
    assert_eq!(
        scraped, roles,
        "{compose}: the scrape config names every orderflow service"
    );
    for name in &roles {
        let service = &file.services[name];
        let metrics = service
            .env("ORDERFLOW_METRICS")
            .unwrap_or_else(|| panic!("{compose}: {name} serves no metrics (ORDERFLOW_METRICS)"));
        // The same parse as `--metrics` (a SocketAddr); other containers reach it, so not
        // loopback.
        let address: SocketAddr = metrics
            .parse()
            .unwrap_or_else(|e| panic!("{name}: ORDERFLOW_METRICS {metrics:?}: {e}"));
        assert!(
            !address.ip().is_loopback(),
            "{name} serves metrics on loopback only"
        );
        assert_eq!(u64::from(address.port()), port, "{name}");
    }
    for name in ["prometheus", "grafana"] {
        let service = file
            .services
            .get(name)
            .unwrap_or_else(|| panic!("{compose} has no {name} service"));
        assert_eq!(service.profiles, ["monitoring"], "{compose}: {name}");
        for volume in &service.volumes {
            let source = volume.split(':').next().unwrap();
            let path = repo().join("docker").join(source);
            assert!(
                path.exists(),
                "{compose}: {name} mounts {source}, which is not in docker/"
            );
        }
    }
    assert!(
        file.services["prometheus"]
            .volumes
            .iter()
            .any(|v| v.starts_with("./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml")),
        "{compose}"
    );
    // Grafana is given the same provisioning and dashboards in both files.
    for mount in ["./grafana/provisioning:", "./grafana/dashboards:"] {
        assert!(
            file.services["grafana"]
                .volumes
                .iter()
                .any(|v| v.starts_with(mount)),
            "{compose}: grafana does not mount {mount}"
        );
    }
}
