//! What every role does alike with a record it handled: it tallies the problems it found by
//! kind, and tells what became of the record in one [`RecordNote`].

use std::collections::BTreeMap;

use super::ConsumedRecord;
use crate::domain::event::{EventError, OrderEvent};
use crate::report::activity::{Activity, Outcome, RecordNote};

/// Problems counted, in all and by kind: malformed records by [`EventError::kind`],
/// lifecycle violations by their kind.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    total: u64,
    by_kind: BTreeMap<&'static str, u64>,
}

impl Tally {
    /// Counts one problem of `kind`.
    pub(crate) fn add(&mut self, kind: &'static str) {
        self.total += 1;
        *self.by_kind.entry(kind).or_default() += 1;
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn by_kind(&self) -> &BTreeMap<&'static str, u64> {
        &self.by_kind
    }

    /// The total and the counts by kind, as [`super::Role::malformed`] returns them.
    pub(crate) fn counts(&self) -> (u64, BTreeMap<&'static str, u64>) {
        (self.total, self.by_kind.clone())
    }
}

/// The outcome of a record for a role that does not follow lifecycles: the order event it
/// holds, or not an event, counted in `malformed`.
pub(crate) fn plain_outcome(
    parsed: Result<OrderEvent, EventError>,
    malformed: &mut Tally,
) -> Outcome {
    match parsed {
        Ok(event) => Outcome::order(&event, None),
        Err(error) => {
            malformed.add(error.kind());
            Outcome::Malformed(error)
        }
    }
}

/// The activity that tells what became of `record`, and where it was sent besides.
pub(crate) fn note(
    record: &ConsumedRecord<'_>,
    outcome: Outcome,
    routed_to: Option<String>,
) -> Activity {
    Activity::Record(RecordNote {
        partition: record.partition,
        offset: record.offset,
        outcome,
        routed_to,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_counts_in_all_and_by_kind() {
        let mut tally = Tally::default();
        assert_eq!(tally.counts(), (0, BTreeMap::new()));
        tally.add("not-json");
        tally.add("empty");
        tally.add("not-json");
        assert_eq!(tally.total(), 3);
        assert_eq!(
            tally.counts(),
            (3, BTreeMap::from([("empty", 1), ("not-json", 2)]))
        );
    }

    #[test]
    fn a_malformed_record_is_counted_by_kind_and_kept_in_the_outcome() {
        let mut malformed = Tally::default();
        let outcome = plain_outcome(Err(EventError::Empty), &mut malformed);
        assert_eq!(outcome, Outcome::Malformed(EventError::Empty));
        assert_eq!(malformed.counts(), (1, BTreeMap::from([("empty", 1)])));
    }
}
