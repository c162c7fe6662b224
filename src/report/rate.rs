//! The rate of a growing counter (events delivered, say), measured over a short window.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The rate shown is measured over this window.
const RATE_WINDOW: Duration = Duration::from_secs(2);

/// Rate of a growing counter over the last [`RATE_WINDOW`].
#[derive(Default)]
pub(crate) struct RateMeter {
    samples: VecDeque<(Instant, u64)>,
}

impl RateMeter {
    /// Records the counter's current total; returns its rate per second.
    pub(crate) fn sample(&mut self, total: u64) -> f64 {
        let now = Instant::now();
        self.samples.push_back((now, total));
        while self
            .samples
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        let (first_at, first_total) = self.samples.front().copied().unwrap_or((now, total));
        let span = now.duration_since(first_at).as_secs_f64();
        if span < 0.2 {
            0.0
        } else {
            (total - first_total) as f64 / span
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_zero_until_the_window_spans_a_moment() {
        let mut meter = RateMeter::default();
        assert_eq!(meter.sample(0), 0.0);
        assert_eq!(meter.sample(1_000), 0.0);
    }

    #[test]
    fn the_rate_is_the_growth_per_second_over_the_window() {
        let mut meter = RateMeter::default();
        meter.sample(0);
        std::thread::sleep(Duration::from_millis(250));
        let rate = meter.sample(500);
        // 500 more within at least 250 ms: at most 2,000 a second, and some.
        assert!(rate > 0.0 && rate <= 2_000.0, "{rate}");
    }
}
