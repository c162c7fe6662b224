//! One partition's stored offsets while reading: in order, after a gap, stored again, or out of
//! order.

/// A stored offset and the line it is at.
#[derive(Clone, Copy, Debug)]
pub(super) struct At {
    pub(super) offset: i64,
    pub(super) line: u64,
}

/// A partition while reading.
#[derive(Debug, Default)]
pub(super) struct PartitionState {
    /// The highest offset stored so far.
    pub(super) last: Option<At>,
    pub(super) records: u64,
    /// The stored offsets as sorted, disjoint ranges: one range for a partition without
    /// gaps, so this grows only with the gaps.
    pub(super) stored: Vec<(i64, i64)>,
}

/// Where a line's offset falls in its partition.
pub(super) enum Placement {
    /// The next offset, or the first of the partition.
    InOrder,
    /// After a gap: `from..=to` are missing; the offset before it is at `before`.
    AfterGap { from: i64, to: i64, before: At },
    /// Stored before, at `first_line` when that is known without looking back.
    Duplicate { first_line: Option<u64> },
    /// Below the highest offset stored so far, and not stored yet.
    OutOfOrder { after: At },
}

impl PartitionState {
    pub(super) fn place(&mut self, offset: i64, line: u64) -> Placement {
        let here = At { offset, line };
        let Some(last) = self.last else {
            self.last = Some(here);
            self.stored.push((offset, offset));
            return Placement::InOrder;
        };
        if offset == last.offset {
            return Placement::Duplicate {
                first_line: Some(last.line),
            };
        }
        if offset < last.offset {
            if self.holds(offset) {
                return Placement::Duplicate { first_line: None };
            }
            self.insert(offset);
            return Placement::OutOfOrder { after: last };
        }
        self.last = Some(here);
        let run = self.stored.last_mut().expect("a stored offset");
        if offset == last.offset + 1 {
            run.1 = offset;
            Placement::InOrder
        } else {
            self.stored.push((offset, offset));
            Placement::AfterGap {
                from: last.offset + 1,
                to: offset - 1,
                before: last,
            }
        }
    }

    fn holds(&self, offset: i64) -> bool {
        let i = self.stored.partition_point(|&(start, _)| start <= offset);
        i > 0 && self.stored[i - 1].1 >= offset
    }

    /// Adds an offset below the highest one, merging it with its neighbours.
    fn insert(&mut self, offset: i64) {
        let i = self.stored.partition_point(|&(start, _)| start <= offset);
        let joins_left = i > 0 && self.stored[i - 1].1 + 1 == offset;
        let joins_right = i < self.stored.len() && self.stored[i].0 == offset + 1;
        match (joins_left, joins_right) {
            (true, true) => {
                self.stored[i - 1].1 = self.stored[i].1;
                self.stored.remove(i);
            }
            (true, false) => self.stored[i - 1].1 = offset,
            (false, true) => self.stored[i].0 = offset,
            (false, false) => self.stored.insert(i, (offset, offset)),
        }
    }

    /// The lowest offset stored.
    pub(super) fn first(&self) -> Option<i64> {
        self.stored.first().map(|&(start, _)| start)
    }

    pub(super) fn missing(&self) -> u64 {
        self.stored
            .windows(2)
            .map(|w| offsets_between(w[0].1 + 1, w[1].0 - 1))
            .sum()
    }
}

/// How many offsets `from..=to` holds. Offsets come from the file, so they may be anything,
/// negative ones included: the difference of two can overflow an `i64`.
pub(super) fn offsets_between(from: i64, to: i64) -> u64 {
    (i128::from(to) - i128::from(from) + 1).clamp(0, i128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Places `offsets` in order, one line each; returns what each was found to be.
    fn place(offsets: &[i64]) -> (PartitionState, Vec<&'static str>) {
        let mut state = PartitionState::default();
        let found = offsets
            .iter()
            .enumerate()
            .map(
                |(line, &offset)| match state.place(offset, line as u64 + 1) {
                    Placement::InOrder => "in order",
                    Placement::AfterGap { .. } => "after gap",
                    Placement::Duplicate { .. } => "duplicate",
                    Placement::OutOfOrder { .. } => "out of order",
                },
            )
            .collect();
        (state, found)
    }

    #[test]
    fn offsets_are_placed_in_their_partition() {
        let (state, found) = place(&[5, 6, 9, 9, 7, 6, 8, 10]);
        assert_eq!(
            found,
            [
                "in order",
                "in order",
                "after gap",
                "duplicate",
                "out of order",
                "duplicate",
                "out of order",
                "in order"
            ]
        );
        assert_eq!(
            state.stored,
            vec![(5, 10)],
            "the late offsets filled the gap"
        );
        assert_eq!((state.first(), state.missing()), (Some(5), 0));
    }

    #[test]
    fn any_offsets_are_counted_without_overflow() {
        let (state, found) = place(&[i64::MIN, -1, i64::MAX, i64::MAX, 0]);
        assert_eq!(
            found,
            [
                "in order",
                "after gap",
                "after gap",
                "duplicate",
                "out of order"
            ]
        );
        assert_eq!(state.missing(), u64::MAX - 3, "all but the four stored");
    }
}
