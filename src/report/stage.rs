//! What a read-process-write stage (`orderflow payments`) reports while it runs, as plain
//! values, and its two printers: text for people, JSON Lines (`--json`, one object per line
//! with a `"type"`) for scripts and tests. The Kafka runtime (`kafka::stage`) produces them;
//! nothing here touches Kafka.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use serde_json::json;

use crate::domain::payment::Semantics;

/// Where a stage's current transaction stands (exactly-once only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum TransactionState {
    /// No transaction: the stage does not use them, or is between two.
    None,
    /// Begun: records and offsets are being added to it.
    Open,
    /// The last one committed: its records are visible to read_committed readers.
    Committed,
    /// The last one aborted: its records are invisible to read_committed readers, and the
    /// stage reads its input again from where the transaction began.
    Aborted,
}

impl TransactionState {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            TransactionState::None => "none",
            TransactionState::Open => "open",
            TransactionState::Committed => "committed",
            TransactionState::Aborted => "aborted",
        }
    }
}

/// A stage's counters, since it started.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct StageSummary {
    /// Input records read (again, after an abort or a rebalance: each time).
    pub(crate) consumed: u64,
    /// Output records whose batch was committed (at-most-once: whose produce was asked for
    /// after the commit; exactly-once: whose transaction committed).
    pub(crate) produced: u64,
    /// `produced` by label (a payment's decision).
    pub(crate) by_label: BTreeMap<&'static str, u64>,
    /// Input records the stage had nothing to do with.
    pub(crate) skipped: u64,
    /// Input records that were not what the stage reads.
    pub(crate) malformed: u64,
    /// Batches whose input offsets were committed.
    pub(crate) batches: u64,
    /// Transactions committed and aborted (exactly-once).
    pub(crate) transactions_committed: u64,
    pub(crate) transactions_aborted: u64,
    /// Batches dropped before anything was committed, because the group rebalanced.
    pub(crate) dropped_for_rebalance: u64,
    pub(crate) transaction: Option<TransactionState>,
    /// Input and output records per second over the last interval.
    pub(crate) input_rate: f64,
    pub(crate) output_rate: f64,
}

/// Something a stage did.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StageActivity {
    /// Connected, transactions initialised, subscribed.
    Started {
        stage: &'static str,
        group: String,
        member: String,
        input: String,
        output: String,
        semantics: Semantics,
        /// exactly-once: the producer's transactional.id.
        transactional_id: Option<String>,
    },
    /// The group gave this member partitions (every rebalance gives all of them anew).
    Assigned { partitions: Vec<i32> },
    /// A transaction aborted, and why; its input is read again.
    Aborted { reason: String },
    /// Something worth a line (a rebalance dropped a batch, a commit was refused).
    Notice(String),
    /// The counters, every few seconds (`last`: the final one, as the stage stops).
    Summary { summary: StageSummary, last: bool },
}

/// Where a stage's activity goes.
pub(crate) trait StageReport: Send {
    fn report(&mut self, activity: StageActivity);
}

/// Text or JSON Lines on stdout.
pub(crate) struct StagePrinter {
    json: bool,
    /// The records read when the last summary was printed: a stage with nothing to do
    /// prints no new summary (its final one is always printed).
    last_consumed: Option<u64>,
}

impl StagePrinter {
    pub(crate) fn new(json: bool) -> StagePrinter {
        StagePrinter {
            json,
            last_consumed: None,
        }
    }
}

impl StageReport for StagePrinter {
    fn report(&mut self, activity: StageActivity) {
        if let StageActivity::Summary { summary, last } = &activity {
            if !last && self.last_consumed == Some(summary.consumed) {
                return;
            }
            self.last_consumed = Some(summary.consumed);
        }
        let line = if self.json {
            json_line(&activity)
        } else {
            crate::report::human::plain_text(&text_line(&activity))
        };
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) is not the stage's problem: it keeps its offsets honest.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

fn json_line(activity: &StageActivity) -> String {
    let at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let value = match activity {
        StageActivity::Started {
            stage,
            group,
            member,
            input,
            output,
            semantics,
            transactional_id,
        } => json!({
            "type": "started", "at": at, "stage": stage, "group": group, "member": member,
            "input": input, "output": output, "semantics": semantics,
            "transactional_id": transactional_id,
        }),
        StageActivity::Assigned { partitions } => {
            json!({"type": "assigned", "at": at, "partitions": partitions})
        }
        StageActivity::Aborted { reason } => {
            json!({"type": "aborted", "at": at, "reason": reason})
        }
        StageActivity::Notice(text) => json!({"type": "notice", "at": at, "message": text}),
        StageActivity::Summary { summary, last } => {
            let mut value = serde_json::to_value(summary).expect("a summary serializes");
            value["type"] = json!("summary");
            value["at"] = json!(at);
            value["final"] = json!(last);
            value
        }
    };
    value.to_string()
}

fn text_line(activity: &StageActivity) -> String {
    match activity {
        StageActivity::Started {
            stage,
            group,
            member,
            input,
            output,
            semantics,
            transactional_id,
        } => {
            let txn = transactional_id
                .as_ref()
                .map(|id| format!(", transactional.id {id}"))
                .unwrap_or_default();
            format!("{stage}: {input} → {output}, {semantics}, group {group}, member {member}{txn}")
        }
        StageActivity::Assigned { partitions } => format!("assigned partitions {partitions:?}"),
        StageActivity::Aborted { reason } => {
            format!("transaction aborted ({reason}): its input is read again")
        }
        StageActivity::Notice(text) => text.clone(),
        StageActivity::Summary { summary: s, last } => {
            let labels: Vec<String> = s.by_label.iter().map(|(l, n)| format!("{l} {n}")).collect();
            let txn = match s.transaction {
                Some(state) => format!(
                    ", transactions {} committed / {} aborted ({})",
                    s.transactions_committed,
                    s.transactions_aborted,
                    state.as_str()
                ),
                None => String::new(),
            };
            format!(
                "{}read {} ({:.0}/s), produced {} ({:.0}/s: {}), skipped {}, malformed {}{txn}",
                if *last { "final: " } else { "" },
                s.consumed,
                s.input_rate,
                s.produced,
                s.output_rate,
                labels.join(", "),
                s.skipped,
                s.malformed,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_final_summary_is_one_json_object_with_its_type() {
        let mut summary = StageSummary {
            consumed: 10,
            produced: 3,
            transaction: Some(TransactionState::Committed),
            ..StageSummary::default()
        };
        summary.by_label.insert("APPROVED", 3);
        let line = json_line(&StageActivity::Summary {
            summary: summary.clone(),
            last: true,
        });
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(value["type"], "summary");
        assert_eq!(value["final"], true);
        assert_eq!(value["by_label"]["APPROVED"], 3);
        assert_eq!(value["transaction"], "committed");
        let text = text_line(&StageActivity::Summary {
            summary,
            last: true,
        });
        assert!(text.starts_with("final: read 10"), "{text}");
        assert!(text.contains("aborted (committed)"), "{text}");
    }
}
