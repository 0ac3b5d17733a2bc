//! The KPA decision (knative-reference 4.5): from the observed metric, how many instances a
//! revision wants ([`Autoscaler`]), then within its bounds and Knative's scale-to-zero rules
//! how many it runs ([`Scaler`]).

use std::time::Instant;

use crate::config::RevisionSpec;
use crate::window::{MaxWindow, Window};

/// One decision of the autoscaler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleResult {
    /// Instances wanted.
    pub desired: u32,
    /// Excess burst capacity: spare capacity beyond the target burst capacity; negative keeps
    /// the activator in the path (-1 when the burst capacity is -1, 0 when it is 0).
    pub excess_burst_capacity: i64,
    /// Whether there was data to decide on (without, the current scale stands).
    pub valid: bool,
}

/// The autoscaler of one revision: observations in, [`ScaleResult`]s out.
#[derive(Clone, Debug)]
pub struct Autoscaler {
    spec: RevisionSpec,
    window: Window,
    /// When the current panic started or was last extended.
    panic_time: Option<Instant>,
    /// The most instances wanted during the current panic (a panic never scales down).
    max_panic: u32,
    delay: Option<MaxWindow>,
}

impl Autoscaler {
    /// An autoscaler with `spec`.
    pub fn new(spec: RevisionSpec) -> Self {
        let delay = (!spec.scale_down_delay.is_zero()).then(|| MaxWindow::new(spec.scale_down_delay));
        Self {
            window: Window::new(spec.stable_window),
            spec,
            panic_time: None,
            max_panic: 0,
            delay,
        }
    }

    /// The settings it decides with.
    pub fn spec(&self) -> &RevisionSpec {
        &self.spec
    }

    /// Records one observation at `now`: requests in flight summed over the revision's
    /// instances (or, for `rps`, requests that arrived), added to the second of `now`.
    pub fn record(&mut self, now: Instant, value: f64) {
        self.window.record(now, value);
    }

    /// Whether it is panicking.
    pub fn panicking(&self) -> bool {
        self.panic_time.is_some()
    }

    /// Decides at `now` with `ready` instances serving; `reachable` is whether a route sends
    /// traffic to the revision (an unreachable one may scale down at once).
    pub fn scale(&mut self, now: Instant, ready: u32, reachable: bool) -> ScaleResult {
        let spec = &self.spec;
        let Some(stable) = self.window.average(now, spec.stable_window) else {
            return ScaleResult {
                desired: 0,
                excess_burst_capacity: 0,
                valid: false,
            };
        };
        let panic = self.window.average(now, spec.panic_window).unwrap_or(0.0);
        let ready_count = f64::from(ready.max(1));
        let max_up = (spec.max_scale_up_rate * ready_count).ceil();
        let max_down = if reachable {
            (ready_count / spec.max_scale_down_rate).floor()
        } else {
            0.0
        };
        let mut dspc = (stable / spec.target_value).ceil();
        let mut dppc = (panic / spec.target_value).ceil();
        let activation = f64::from(spec.activation_scale);
        if activation > 1.0 {
            if dspc > 0.0 && activation > dspc {
                dspc = activation;
            }
            if dppc > 0.0 && activation > dppc {
                dppc = activation;
            }
        }
        let desired_stable = dspc.max(max_down).min(max_up) as u32;
        let desired_panic = dppc.max(max_down).min(max_up) as u32;

        let over_threshold = dppc / ready_count >= spec.panic_threshold;
        match self.panic_time {
            _ if over_threshold => self.panic_time = Some(now),
            Some(since) if now > since + spec.stable_window => {
                self.panic_time = None;
                self.max_panic = 0;
            }
            _ => {}
        }
        let mut desired = if self.panic_time.is_some() {
            self.max_panic = self.max_panic.max(desired_stable.max(desired_panic));
            self.max_panic
        } else {
            desired_stable
        };
        if let Some(delay) = &mut self.delay {
            desired = delay.record(now, desired as i32).max(0) as u32;
        }
        let tbc = spec.target_burst_capacity;
        let excess_burst_capacity = if tbc == 0.0 {
            0
        } else if tbc < 0.0 {
            -1
        } else {
            (f64::from(ready) * spec.total_value - tbc - panic).floor() as i64
        };
        ScaleResult {
            desired,
            excess_burst_capacity,
            valid: true,
        }
    }
}

/// The last step: the autoscaler's wish within the revision's bounds (min, max, initial scale)
/// and Knative's scale-to-zero rules.
#[derive(Clone, Debug)]
pub struct Scaler {
    spec: RevisionSpec,
    /// Whether the revision has once run its initial scale.
    initialised: bool,
    /// Since when zero instances have been wanted while some run.
    zero_wanted_since: Option<Instant>,
}

impl Scaler {
    /// A scaler for a new revision.
    pub fn new(spec: RevisionSpec) -> Self {
        Self {
            initialised: spec.initial_scale == 0,
            spec,
            zero_wanted_since: None,
        }
    }

    /// How many instances to run at `now`, given the autoscaler's `result` and the `current`
    /// instances (ready or starting).
    pub fn decide(&mut self, now: Instant, result: &ScaleResult, current: u32) -> u32 {
        let spec = &self.spec;
        if current >= spec.initial_scale {
            self.initialised = true;
        }
        // Until it has run its initial scale once, a revision runs at least that many.
        let min = if self.initialised {
            spec.min_scale
        } else {
            spec.min_scale.max(spec.initial_scale)
        };
        // Without data the current scale stands (a revision at zero stays there).
        let wanted = if result.valid { result.desired } else { current };
        let mut desired = wanted.max(min);
        if spec.max_scale > 0 {
            desired = desired.min(spec.max_scale);
        }
        if desired > 0 {
            self.zero_wanted_since = None;
            return desired;
        }
        if !spec.enable_scale_to_zero {
            return 1;
        }
        if current == 0 {
            return 0;
        }
        // The last instances go once zero has been wanted for the grace period (and the pod
        // retention period, when longer): meanwhile the activator takes over the route.
        let since = *self.zero_wanted_since.get_or_insert(now);
        let hold = spec.scale_to_zero_grace_period.max(spec.scale_to_zero_pod_retention_period);
        if now.saturating_duration_since(since) >= hold {
            0
        } else {
            current
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::config::Config;

    fn spec(annotations: &[(&str, &str)], cc: u32) -> RevisionSpec {
        let a: BTreeMap<String, String> = annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        RevisionSpec::new(&Config::default(), &a, cc).unwrap()
    }

    /// Replays one observation per second from `from` (inclusive) with `value`, deciding after
    /// each with `ready` instances; returns the decisions.
    fn replay(a: &mut Autoscaler, t0: Instant, seconds: std::ops::Range<u64>, value: f64, ready: u32) -> Vec<u32> {
        seconds
            .map(|s| {
                let now = t0 + Duration::from_secs(s);
                a.record(now, value);
                a.scale(now, ready, true).desired
            })
            .collect()
    }

    #[test]
    fn steady_demand_wants_demand_over_target_instances() {
        // Target 70 per instance (100 × 0.7): 140 in flight wants 2, 141 wants 3.
        let t0 = Instant::now();
        let mut a = Autoscaler::new(spec(&[], 0));
        assert_eq!(replay(&mut a, t0, 0..60, 140.0, 2), vec![2; 60]);
        let mut a = Autoscaler::new(spec(&[], 0));
        assert_eq!(replay(&mut a, t0, 0..10, 141.0, 3).last(), Some(&3));
        // containerConcurrency 10: target 7.
        let mut a = Autoscaler::new(spec(&[], 10));
        assert_eq!(replay(&mut a, t0, 0..5, 21.0, 3).last(), Some(&3));
    }

    #[test]
    fn no_data_is_no_decision() {
        let t0 = Instant::now();
        let mut a = Autoscaler::new(spec(&[], 0));
        let r = a.scale(t0, 0, true);
        assert!(!r.valid);
        a.record(t0, 1.0);
        assert!(!a.scale(t0 + Duration::from_secs(61), 1, true).valid, "the window is empty again");
    }

    #[test]
    fn a_burst_panics_scales_up_at_once_and_never_down_until_a_stable_window_is_calm() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut a = Autoscaler::new(spec(&[], 10)); // target 7 per instance
                                                    // 60 s at 7: one instance, no panic.
        assert_eq!(replay(&mut a, t0, 0..60, 7.0, 1).last(), Some(&1));
        assert!(!a.panicking());
        // A burst of 70 in flight: the panic window (6 s) averages it at once.
        a.record(at(60), 70.0);
        let r = a.scale(at(60), 1, true);
        assert!(a.panicking());
        // Panic window: (7×5 + 70) / 6 = 17.5 → 3 instances; stable: (7×59 + 70)/60 = 8.05 → 2.
        assert_eq!(r.desired, 3);
        // The burst goes on: demand 10 per instance on 1 ready; the scale-up rate allows it.
        let ds = replay(&mut a, t0, 61..66, 70.0, 3);
        assert!(ds.windows(2).all(|w| w[1] >= w[0]), "panic never scales down: {ds:?}");
        assert_eq!(ds.last(), Some(&10), "70 / 7 once the panic window is all burst");
        // Calm again at 7: still panicking (extended while over the threshold, then held for a
        // stable window), so the scale stays at its panic maximum...
        let calm = replay(&mut a, t0, 66..100, 7.0, 10);
        assert!(calm.iter().all(|d| *d == 10), "{calm:?}");
        assert!(a.panicking());
        // ...until a stable window has passed since the last second over the threshold.
        let later = replay(&mut a, t0, 100..140, 7.0, 10);
        assert!(!a.panicking());
        assert!(*later.last().unwrap() < 10, "{later:?}");
    }

    #[test]
    fn scale_down_is_limited_by_the_rate_when_reachable() {
        let t0 = Instant::now();
        let mut a = Autoscaler::new(spec(&[], 0));
        a.record(t0, 0.0);
        // 10 ready, nothing wanted: at most halved (max-scale-down-rate 2) while reachable.
        assert_eq!(a.scale(t0, 10, true).desired, 5);
        assert_eq!(a.scale(t0, 10, false).desired, 0);
    }

    #[test]
    fn activation_scale_and_scale_down_delay() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut a = Autoscaler::new(spec(&[("autoscaling.knative.dev/activation-scale", "3")], 0));
        a.record(t0, 1.0);
        assert_eq!(a.scale(t0, 0, true).desired, 3, "leaving zero goes to activation-scale");
        // A 6 s window with a 10 s scale-down delay: 140 in flight for 6 s, then nothing.
        let mut a = Autoscaler::new(spec(
            &[
                ("autoscaling.knative.dev/window", "6s"),
                ("autoscaling.knative.dev/scale-down-delay", "10s"),
            ],
            0,
        ));
        let mut decided = Vec::new();
        for s in 0..22 {
            a.record(at(s), if s < 6 { 140.0 } else { 0.0 });
            decided.push(a.scale(at(s), 2, false).desired);
        }
        // Without the delay the stable average wants 2, 2, 1, 1, 1 at 6..=10 and 0 from 11;
        // with it each second takes the most wanted in the 10 s before.
        assert_eq!(decided[11], 2, "held for the delay: {decided:?}");
        assert_eq!(decided[17], 1, "{decided:?}");
        assert_eq!(decided[21], 0, "{decided:?}");
    }

    #[test]
    fn excess_burst_capacity_follows_the_formula() {
        let t0 = Instant::now();
        let mut a = Autoscaler::new(spec(&[], 0));
        a.record(t0, 50.0);
        // 3 ready × 100 − 211 − 50 = 39.
        assert_eq!(a.scale(t0, 3, true).excess_burst_capacity, 39);
        let mut a = Autoscaler::new(spec(&[("autoscaling.knative.dev/target-burst-capacity", "-1")], 0));
        a.record(t0, 50.0);
        assert_eq!(a.scale(t0, 3, true).excess_burst_capacity, -1);
        let mut a = Autoscaler::new(spec(&[("autoscaling.knative.dev/target-burst-capacity", "0")], 0));
        a.record(t0, 50.0);
        assert_eq!(a.scale(t0, 3, true).excess_burst_capacity, 0);
    }

    #[test]
    fn idle_revisions_reach_zero_after_the_window_and_the_grace_period() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let s = spec(&[], 0);
        let (mut a, mut scaler) = (Autoscaler::new(s.clone()), Scaler::new(s));
        // A new revision runs its initial scale (1) before any traffic.
        let none = ScaleResult {
            desired: 0,
            excess_burst_capacity: 0,
            valid: false,
        };
        assert_eq!(scaler.decide(t0, &none, 0), 1);
        // One request in flight for a second, then silence reported every second.
        a.record(t0, 1.0);
        let mut current = 1;
        let mut zero_at = None;
        for s in 0..200 {
            if s > 0 {
                a.record(at(s), 0.0);
            }
            let r = a.scale(at(s), current, true);
            current = scaler.decide(at(s), &r, current);
            if current == 0 {
                zero_at = Some(s);
                break;
            }
        }
        // The stable average is above zero for 60 s; then 30 s of grace.
        assert_eq!(zero_at, Some(90));
    }

    #[test]
    fn bounds_and_disabled_scale_to_zero() {
        let t0 = Instant::now();
        let want = |desired| ScaleResult {
            desired,
            excess_burst_capacity: 0,
            valid: true,
        };
        let s = spec(
            &[
                ("autoscaling.knative.dev/min-scale", "2"),
                ("autoscaling.knative.dev/max-scale", "4"),
            ],
            0,
        );
        let mut scaler = Scaler::new(s);
        assert_eq!(scaler.decide(t0, &want(0), 2), 2);
        assert_eq!(scaler.decide(t0, &want(9), 2), 4);
        let s = spec(&[("autoscaling.knative.dev/initial-scale", "3")], 0);
        let mut scaler = Scaler::new(s);
        assert_eq!(scaler.decide(t0, &want(1), 0), 3, "initial scale first");
        assert_eq!(scaler.decide(t0, &want(1), 3), 1, "then what is wanted");
        let config = Config {
            enable_scale_to_zero: false,
            ..Config::default()
        };
        let s = RevisionSpec::new(&config, &BTreeMap::new(), 0).unwrap();
        let mut scaler = Scaler::new(s);
        assert_eq!(scaler.decide(t0 + Duration::from_secs(3600), &want(0), 1), 1);
    }
}
