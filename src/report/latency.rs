//! End-to-end latency of the records a consumer role handles: from the moment the producer
//! stamped a record (its Kafka `CreateTime`) to the moment the role finished with it. This is
//! lag measured in time rather than in records: how old an event is when its consumer has
//! dealt with it.
//!
//! [`Histogram`] counts latencies in fixed log-linear buckets, so recording costs a few
//! nanoseconds, allocates nothing, and its memory never grows: values below 32 µs get a
//! bucket each, and every power of two above that is cut into 32 equal buckets, so a
//! percentile read from it is at most about 3 % above the true value. The largest value is
//! kept exactly.
//!
//! Kafka timestamps have millisecond resolution and come from the producer's clock: a
//! latency is therefore up to 1 ms too high, and between two machines it is off by the
//! difference of their clocks (a negative one counts as 0).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

/// Values below `1 << SUB_BITS` µs are exact; above, each power of two has `1 << SUB_BITS`
/// buckets.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// The largest power of two with buckets of its own: 2^39 µs is about six days. Longer
/// latencies land in the last bucket (the exact maximum is kept apart).
const TOP_EXPONENT: u32 = 39;
const BUCKETS: usize = (SUB + (TOP_EXPONENT - SUB_BITS + 1) as u64 * SUB) as usize;

/// Latencies counted in log-linear buckets of microseconds.
#[derive(Clone)]
pub struct Histogram {
    /// Records per bucket; see [`bucket`].
    counts: Box<[u64; BUCKETS]>,
    /// Records counted.
    total: u64,
    /// The largest latency counted, exactly, in µs.
    max_us: u64,
    /// The sum of the latencies counted, in µs (a Prometheus histogram's `_sum`).
    sum_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            max_us: 0,
            sum_us: 0,
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("max_us", &self.max_us)
            .finish_non_exhaustive()
    }
}

/// The bucket of a value in µs.
fn bucket(us: u64) -> usize {
    if us < SUB {
        return us as usize;
    }
    let exponent = (63 - us.leading_zeros()).min(TOP_EXPONENT);
    if exponent == TOP_EXPONENT && us >> TOP_EXPONENT > 1 {
        return BUCKETS - 1;
    }
    let shift = exponent - SUB_BITS;
    let mantissa = (us >> shift) - SUB;
    (SUB + u64::from(shift) * SUB + mantissa) as usize
}

/// µs from a Kafka timestamp (ms since the epoch) to `now_us` (µs since the epoch); 0 for a
/// timestamp from the future (another machine's clock).
fn micros_since(create_time_ms: i64, now_us: i64) -> u64 {
    now_us
        .saturating_sub(create_time_ms.saturating_mul(1000))
        .max(0) as u64
}

/// The largest value in µs that falls into `index`.
fn upper_bound(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB {
        return index;
    }
    let shift = (index - SUB) / SUB;
    let mantissa = (index - SUB) % SUB;
    ((SUB + mantissa + 1) << shift) - 1
}

impl Histogram {
    /// Counts one latency.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.add(bucket(us), us);
    }

    fn add(&mut self, index: usize, us: u64) {
        self.counts[index] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
        self.sum_us = self.sum_us.saturating_add(us);
    }

    /// Counts the latency of a record stamped `create_time_ms` (ms since the epoch), handled
    /// at `now_us` (µs since the epoch). A timestamp from the future (another machine's clock)
    /// counts as 0.
    pub fn record_since(&mut self, create_time_ms: i64, now_us: i64) {
        let us = micros_since(create_time_ms, now_us);
        self.add(bucket(us), us);
    }

    /// Counts the time from `since_us` to `now_us` (both µs since the epoch, by the wall
    /// clock); a clock that went back counts as 0.
    pub(crate) fn record_since_micros(&mut self, since_us: i64, now_us: i64) {
        let us = now_us.saturating_sub(since_us).max(0) as u64;
        self.add(bucket(us), us);
    }

    /// Records counted.
    #[cfg(test)]
    fn len(&self) -> u64 {
        self.total
    }

    /// The latency below or at which a fraction `q` (0..=1) of the records fall: the upper
    /// edge of the bucket that holds the record of that rank, never above the maximum. None
    /// when nothing was counted.
    pub(crate) fn quantile(&self, q: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Duration::from_micros(upper_bound(index).min(self.max_us)));
            }
        }
        Some(Duration::from_micros(self.max_us))
    }

    /// The largest latency counted.
    pub(crate) fn max(&self) -> Option<Duration> {
        (self.total > 0).then(|| Duration::from_micros(self.max_us))
    }

    /// p50, p99 and the maximum, or None when nothing was counted.
    pub fn stats(&self) -> Option<LatencyStats> {
        let ms = rounded_ms;
        Some(LatencyStats {
            p50_ms: ms(self.quantile(0.50)?),
            p99_ms: ms(self.quantile(0.99)?),
            max_ms: ms(self.max()?),
            records: self.total,
            buckets: Arc::new(self.coarse()),
        })
    }

    /// p50, p95, p99 and the maximum, or None when nothing was counted.
    pub(crate) fn percentiles(&self) -> Option<LatencyPercentiles> {
        Some(LatencyPercentiles {
            p50_ms: rounded_ms(self.quantile(0.50)?),
            p95_ms: rounded_ms(self.quantile(0.95)?),
            p99_ms: rounded_ms(self.quantile(0.99)?),
            max_ms: rounded_ms(self.max()?),
            records: self.total,
        })
    }

    /// What was counted, in a Prometheus histogram's buckets.
    pub(crate) fn buckets(&self) -> LatencyBuckets {
        self.coarse()
    }

    /// What was counted, in the few buckets a Prometheus histogram exports: each fine bucket
    /// goes to the first bound at or above its upper edge, so a bucket's count never includes
    /// a value above its bound (a value up to about 3 % below a bound may be counted in the
    /// next bucket up, as [`Histogram::quantile`] rounds up too).
    fn coarse(&self) -> LatencyBuckets {
        let mut coarse = LatencyBuckets {
            sum_seconds: self.sum_us as f64 / 1e6,
            ..LatencyBuckets::default()
        };
        for (index, &n) in self.counts.iter().enumerate().filter(|(_, n)| **n > 0) {
            let upper = if index == BUCKETS - 1 {
                u64::MAX
            } else {
                upper_bound(index)
            };
            let slot = BOUNDS_US
                .iter()
                .position(|&bound| upper <= bound)
                .unwrap_or(BOUNDS_US.len());
            coarse.counts[slot] += n;
        }
        coarse
    }

    /// Forgets everything counted.
    pub(crate) fn clear(&mut self) {
        self.counts.fill(0);
        self.total = 0;
        self.max_us = 0;
        self.sum_us = 0;
    }
}

/// The upper bounds, in µs, of the buckets a Prometheus histogram of latencies exports
/// (`le`, in seconds: 0.0005 … 300, then `+Inf`): from a loopback round trip to a consumer
/// minutes behind.
const BOUNDS_US: [u64; 17] = [
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
    300_000_000,
];

/// Latencies in the buckets of a Prometheus histogram: what a window counted (not
/// cumulative: `counts[i]` holds the values above bound i − 1 and at or below bound i; the
/// last, those above every bound), and their sum. Windows add up into a run's.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencyBuckets {
    pub counts: [u64; BOUNDS_US.len() + 1],
    pub sum_seconds: f64,
}

impl LatencyBuckets {
    /// Adds another window's counts.
    pub fn add(&mut self, other: &LatencyBuckets) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
        self.sum_seconds += other.sum_seconds;
    }

    /// The values counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// (upper bound in seconds, values in that bucket), the last bound infinite: what
    /// prometheus-client's histogram encoding takes.
    pub fn by_bound(&self) -> [(f64, u64); BOUNDS_US.len() + 1] {
        std::array::from_fn(|i| {
            let bound = BOUNDS_US
                .get(i)
                .map_or(f64::INFINITY, |&us| us as f64 / 1e6);
            (bound, self.counts[i])
        })
    }
}

/// Milliseconds with two decimals.
fn rounded_ms(d: Duration) -> f64 {
    (d.as_micros() as f64 / 1000.0 * 100.0).round() / 100.0
}

/// Latency percentiles with p95, in milliseconds (two decimals): the producer's delivery
/// latency, where the p95 is what the lesson on acknowledgements compares.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LatencyPercentiles {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The values measured.
    pub records: u64,
}

/// Latency percentiles of a window of records, in milliseconds (two decimals).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencyStats {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The records measured: those with a producer timestamp (`CreateTime`).
    pub records: u64,
    /// The same records in a Prometheus histogram's buckets (for --metrics; not in --json).
    /// Shared, not copied: a summary travels through every sink of a member.
    #[serde(skip)]
    pub buckets: Arc<LatencyBuckets>,
}

/// The windows a consumer reports latency over: since the last progress report (every
/// second), since the last printed summary (every 5 s), and the whole run.
#[derive(Debug, Default)]
pub struct Latencies {
    pub since_progress: Histogram,
    pub since_summary: Histogram,
    pub run: Histogram,
}

impl Latencies {
    /// Counts a record stamped `create_time_ms`, handled at `now_us` (µs since the epoch).
    pub fn record_since(&mut self, create_time_ms: i64, now_us: i64) {
        let us = micros_since(create_time_ms, now_us);
        let index = bucket(us);
        self.since_progress.add(index, us);
        self.since_summary.add(index, us);
        self.run.add(index, us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn every_value_lands_in_a_bucket_whose_bounds_hold_it() {
        let mut previous_upper = None;
        for index in 0..BUCKETS {
            let upper = upper_bound(index);
            assert_eq!(bucket(upper), index, "upper edge of bucket {index}");
            if let Some(p) = previous_upper {
                assert!(upper > p);
                assert_eq!(bucket(p + 1), index, "lower edge of bucket {index}");
            }
            previous_upper = Some(upper);
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket(upper_bound(BUCKETS - 1) + 1), BUCKETS - 1);
    }

    #[test]
    fn buckets_are_at_most_about_three_percent_wide() {
        for us in [33, 100, 999, 1_000, 1_234, 20_000, 5_000_000, 3_600_000_000] {
            let upper = upper_bound(bucket(us));
            assert!(upper >= us);
            assert!((upper - us) as f64 <= us as f64 / 31.0, "{us} → {upper}");
        }
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::default();
        for us in 0..32 {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.quantile(0.5), Some(Duration::from_micros(15)));
        assert_eq!(h.quantile(1.0), Some(Duration::from_micros(31)));
        assert_eq!(h.quantile(0.0), Some(Duration::ZERO));
    }

    #[test]
    fn percentiles_of_one_to_a_thousand_milliseconds() {
        let mut h = Histogram::default();
        // Recorded out of order: the histogram does not care.
        for n in (1..=1000).rev() {
            h.record(ms(n));
        }
        let within = |got: Duration, want: u64| {
            let got = got.as_micros() as f64 / 1000.0;
            assert!(
                got >= want as f64 && got <= want as f64 * 1.033,
                "{got} ms, expected about {want} ms"
            );
        };
        within(h.quantile(0.50).unwrap(), 500);
        within(h.quantile(0.99).unwrap(), 990);
        assert_eq!(h.max(), Some(ms(1000)));
        assert_eq!(h.quantile(1.0), Some(ms(1000)), "never above the maximum");
        let stats = h.stats().unwrap();
        assert_eq!(stats.records, 1000);
        assert_eq!(stats.max_ms, 1000.0);
        assert!(stats.max_ms >= stats.p99_ms && stats.p99_ms >= stats.p50_ms);
    }

    #[test]
    fn one_slow_record_in_a_hundred_sets_p99_but_not_p50() {
        let mut h = Histogram::default();
        for _ in 0..990 {
            h.record(ms(2));
        }
        for _ in 0..10 {
            h.record(ms(250));
        }
        let p50 = h.quantile(0.5).unwrap();
        assert!(
            p50 >= ms(2) && p50 < Duration::from_micros(2_070),
            "{p50:?}"
        );
        assert_eq!(h.quantile(0.99), h.quantile(0.5), "rank 990 is still 2 ms");
        assert!(h.quantile(0.991).unwrap() >= ms(250));
        assert_eq!(h.max(), Some(ms(250)));
    }

    #[test]
    fn nothing_counted_has_no_percentiles() {
        let mut h = Histogram::default();
        assert_eq!(h.stats(), None);
        h.record(ms(5));
        assert!(h.stats().is_some());
        h.clear();
        assert_eq!(h.len(), 0);
        assert_eq!(h.quantile(0.5), None);
        assert_eq!(h.max(), None);
    }

    #[test]
    fn latency_from_a_kafka_timestamp() {
        let mut h = Histogram::default();
        // Stamped at 1,000 ms, handled at 1,003.5 ms.
        h.record_since(1_000, 1_003_500);
        assert_eq!(h.max(), Some(Duration::from_micros(3_500)));
        // A producer clock ahead of ours.
        h.record_since(2_000, 1_003_500);
        assert_eq!(h.quantile(0.0), Some(Duration::ZERO));
    }

    #[test]
    fn the_prometheus_buckets_hold_each_value_at_or_below_their_bound() {
        let mut h = Histogram::default();
        // 0.4 ms, exactly 1 ms, 3 ms, 7 minutes (above every bound).
        for us in [400, 1_000, 3_000, 420_000_000] {
            h.record(Duration::from_micros(us));
        }
        let b = h.stats().unwrap().buckets;
        assert_eq!(b.count(), 4);
        let by_bound = b.by_bound();
        assert_eq!(by_bound[0], (0.0005, 1));
        // 1 ms shares a fine bucket with values up to 3 % above it: counted in the next one.
        assert_eq!(by_bound[1], (0.001, 0));
        assert_eq!(by_bound[2], (0.0025, 1));
        assert_eq!(by_bound[3], (0.005, 1));
        assert_eq!(by_bound[BOUNDS_US.len()], (f64::INFINITY, 1));
        assert!((b.sum_seconds - 420.0044).abs() < 1e-9, "{}", b.sum_seconds);
        let mut run = LatencyBuckets::default();
        run.add(&b);
        run.add(&b);
        assert_eq!(run.count(), 8);
        assert_eq!(run.counts[2], 2);
    }

    #[test]
    fn the_windows_count_the_same_records_until_one_is_cleared() {
        let mut l = Latencies::default();
        l.record_since(0, 4_000);
        l.since_progress.clear();
        l.record_since(0, 9_000);
        assert_eq!(l.since_progress.len(), 1);
        assert_eq!(l.since_summary.len(), 2);
        assert_eq!(l.run.len(), 2);
        assert_eq!(l.run.max(), Some(ms(9)));
        assert_eq!(l.since_progress.quantile(0.5), Some(ms(9)));
    }
}
