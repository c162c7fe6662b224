//! The JSON Lines printer (`--json`): one object per line with a `"type"`
//! (docs/consumer-output.md).

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use super::emit;
use crate::domain::event::OrderKey;
use crate::report::activity::{Activity, ClusterChange, Connection, LostCause, Outcome};

/// JSON Lines for scripts.
#[derive(Default)]
pub struct JsonPrinter;

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl crate::report::activity::Report for JsonPrinter {
    fn report(&mut self, activity: Activity) {
        let value: Value = match activity {
            Activity::Joined {
                role,
                group,
                member,
                topic,
                brokers,
                protocol,
                assignor,
            } => json!({
                "type": "joined", "at": now(), "role": role, "group": group,
                "member": member, "topic": topic, "brokers": brokers,
                "group_protocol": protocol, "assignor": assignor,
            }),
            Activity::Assigned {
                partitions,
                waited,
                took,
                now_owned,
            } => json!({
                "type": "assigned", "at": now(),
                "partitions": partitions.iter().map(|p| p.partition).collect::<Vec<_>>(),
                "starts": partitions,
                "waited_ms": waited.as_millis() as u64,
                "took_ms": took.as_millis() as u64,
                "owned": now_owned,
            }),
            Activity::Revoked {
                partitions,
                lost,
                uncommitted,
                now_owned,
            } => json!({
                "type": "revoked", "at": now(), "partitions": partitions,
                "lost": lost.is_some(), "lost_because": lost.map(LostCause::as_str),
                "uncommitted": uncommitted, "owned": now_owned,
            }),
            Activity::Committed { offsets } => {
                let offsets: serde_json::Map<String, Value> = offsets
                    .iter()
                    .map(|(p, o)| (p.to_string(), json!(o)))
                    .collect();
                json!({"type": "committed", "at": now(), "offsets": offsets})
            }
            Activity::CommitFailed { reason } => {
                json!({"type": "commit_failed", "at": now(), "reason": reason})
            }
            Activity::Connection(state) => {
                let (name, reason) = match &state {
                    Connection::Ok => ("ok", None),
                    Connection::Unreachable { reason } => ("unreachable", Some(reason)),
                    Connection::Refused { reason } => ("refused", Some(reason)),
                    Connection::Fatal { reason } => ("fatal", Some(reason)),
                };
                json!({"type": "connection", "at": now(), "state": name, "reason": reason})
            }
            Activity::Cluster(change) => cluster_json(&change),
            Activity::Record(note) => match &note.outcome {
                Outcome::Malformed(error) => json!({
                    "type": "malformed", "at": now(), "partition": note.partition,
                    "offset": note.offset, "kind": error.kind(), "error": error.to_string(),
                    "routed_to": note.routed_to,
                }),
                Outcome::Violation {
                    order_id,
                    status,
                    violation,
                } => json!({
                    "type": "violation", "at": now(), "partition": note.partition,
                    "offset": note.offset, "order_id": OrderKey::new(*order_id).as_str(),
                    "status": status.as_str(), "kind": violation.kind(),
                    "violation": violation.to_string(), "routed_to": note.routed_to,
                }),
                Outcome::Order { .. } | Outcome::AlreadyStored => return,
            },
            Activity::Notice(message) => json!({"type": "notice", "at": now(), "message": message}),
            Activity::Progress(_) => return,
            Activity::Paused(paused) => json!({"type": "paused", "at": now(), "paused": paused}),
            Activity::Left => json!({"type": "left", "at": now()}),
            Activity::Summary(summary) => {
                let mut map = serde_json::Map::new();
                map.insert("type".into(), json!("summary"));
                map.insert("at".into(), json!(now()));
                if let Ok(Value::Object(fields)) = serde_json::to_value(&summary) {
                    map.extend(fields);
                }
                Value::Object(map)
            }
        };
        emit(&value.to_string());
    }
}

/// A cluster change as one JSON object: `broker` (unreachable / reachable), `leaders`, or
/// `coordinator`, each with `message`, the text line's words.
fn cluster_json(change: &ClusterChange) -> Value {
    let message = change.to_string();
    match change {
        ClusterChange::BrokerUnreachable {
            broker,
            address,
            reason,
        } => json!({
            "type": "broker", "at": now(), "broker": broker, "address": address,
            "state": "unreachable", "reason": reason, "message": message,
        }),
        ClusterChange::BrokerLeft { broker, address } => json!({
            "type": "broker", "at": now(), "broker": broker, "address": address,
            "state": "left", "message": message,
        }),
        ClusterChange::BrokerShutDown { broker, address } => json!({
            "type": "broker", "at": now(), "broker": broker, "address": address,
            "state": "shut down", "message": message,
        }),
        ClusterChange::ClusterUnreachable { brokers } => json!({
            "type": "cluster", "at": now(), "brokers": brokers, "state": "unreachable",
            "message": message,
        }),
        ClusterChange::BrokerBack {
            broker,
            address,
            after,
            rejoined,
        } => json!({
            "type": "broker", "at": now(), "broker": broker, "address": address,
            "state": if *rejoined { "rejoined" } else { "reachable" },
            "after_ms": after.as_millis() as u64, "message": message,
        }),
        ClusterChange::LeadersMoved(moves) => json!({
            "type": "leaders", "at": now(),
            "moves": moves.iter().map(|m| json!({
                "partition": m.partition, "from": m.from, "to": m.to,
            })).collect::<Vec<_>>(),
            "message": message,
        }),
        ClusterChange::CoordinatorMoved { from, to } => json!({
            "type": "coordinator", "at": now(), "from": from, "to": to, "message": message,
        }),
    }
}
