//! Per-second metric windows: what the autoscaler averages (Knative's timed buckets, 1 s
//! granularity) and the maximum it keeps over the scale-down delay.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Whole seconds since `origin` (0 for an earlier instant).
fn second(origin: Instant, now: Instant) -> u64 {
    now.saturating_duration_since(origin).as_secs()
}

/// The sum of a metric per second, for the last `retention`.
#[derive(Clone, Debug)]
pub struct Window {
    retention: Duration,
    origin: Option<Instant>,
    /// (second, sum of that second's values), oldest first.
    buckets: VecDeque<(u64, f64)>,
    /// The first second anything was recorded in.
    first: u64,
}

impl Window {
    /// A window that keeps `retention` (the longest window averaged).
    pub fn new(retention: Duration) -> Self {
        Self {
            retention,
            origin: None,
            buckets: VecDeque::new(),
            first: 0,
        }
    }

    /// Adds `value` to the second of `now` (concurrency summed over instances, or requests).
    pub fn record(&mut self, now: Instant, value: f64) {
        let origin = *self.origin.get_or_insert(now);
        let s = second(origin, now);
        if self.buckets.is_empty() {
            self.first = s;
        }
        match self.buckets.back_mut() {
            Some((last, sum)) if *last == s => *sum += value,
            _ => self.buckets.push_back((s, value)),
        }
        let keep = self.retention.as_secs().max(1);
        while self.buckets.front().is_some_and(|(b, _)| b + keep <= s) {
            self.buckets.pop_front();
        }
    }

    /// The average per second over the `window` that ends at `now`: seconds without a record
    /// count as 0, and before the first record the window is shorter. `None` when nothing was
    /// recorded within the window (Knative's "no data").
    pub fn average(&self, now: Instant, window: Duration) -> Option<f64> {
        let origin = self.origin?;
        let now_s = second(origin, now);
        let w = window.as_secs().max(1);
        let (last, _) = self.buckets.back()?;
        if last + w <= now_s {
            return None;
        }
        let start = (now_s + 1).saturating_sub(w);
        let sum: f64 = self
            .buckets
            .iter()
            .filter(|(b, _)| (start..=now_s).contains(b))
            .map(|(_, v)| v)
            .sum();
        let seconds = w.min(now_s.saturating_sub(self.first) + 1);
        Some(sum / seconds as f64)
    }
}

/// The largest value recorded within the last `delay` (the scale-down delay: a lower scale
/// applies only once it has been wanted for the whole delay).
#[derive(Clone, Debug)]
pub struct MaxWindow {
    delay: Duration,
    values: VecDeque<(Instant, i32)>,
}

impl MaxWindow {
    /// A window over `delay`.
    pub fn new(delay: Duration) -> Self {
        Self {
            delay,
            values: VecDeque::new(),
        }
    }

    /// Records `value` at `now` and returns the largest value of the window.
    pub fn record(&mut self, now: Instant, value: i32) -> i32 {
        self.values.push_back((now, value));
        while self
            .values
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= self.delay)
        {
            self.values.pop_front();
        }
        self.values.iter().map(|(_, v)| *v).max().unwrap_or(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_count_silent_seconds_as_zero_and_start_at_the_first_record() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w = Window::new(Duration::from_secs(60));
        assert_eq!(w.average(t0, Duration::from_secs(60)), None, "no data yet");
        w.record(at(0), 10.0);
        w.record(at(0), 5.0);
        assert_eq!(w.average(at(0), Duration::from_secs(60)), Some(15.0));
        w.record(at(1), 3.0);
        // Seconds 0..=3 have passed: (15 + 3 + 0 + 0) / 4.
        assert_eq!(w.average(at(3), Duration::from_secs(60)), Some(4.5));
        // A 2-second window sees seconds 2 and 3 only, and the last record is older: no data.
        assert_eq!(w.average(at(3), Duration::from_secs(2)), None);
        assert_eq!(w.average(at(2), Duration::from_secs(2)), Some(1.5));
        // Long after: nothing in the window.
        assert_eq!(w.average(at(70), Duration::from_secs(60)), None);
    }

    #[test]
    fn the_max_window_holds_a_value_for_its_delay() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut m = MaxWindow::new(Duration::from_secs(10));
        assert_eq!(m.record(at(0), 5), 5);
        assert_eq!(m.record(at(4), 2), 5);
        assert_eq!(m.record(at(9), 1), 5);
        assert_eq!(m.record(at(10), 1), 2, "5 is older than the delay");
        assert_eq!(m.record(at(14), 1), 1);
    }
}
