//! Knative Serving's per-revision autoscaling annotations (`autoscaling.knative.dev/*`,
//! reference section 4.4) and their validation (Serving's `annotation_validation.go`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{key, FieldError};

static ALLOW_ZERO_INITIAL_SCALE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether `config-autoscaler` has `allow-zero-initial-scale: "true"`, as admission reads it
/// (the store sets it when the ConfigMap is written).
pub fn zero_initial_scale_allowed() -> bool {
    ALLOW_ZERO_INITIAL_SCALE.load(std::sync::atomic::Ordering::Relaxed)
}

/// Sets what admission reads of `config-autoscaler`: whether `initial-scale: "0"` is allowed.
pub fn set_zero_initial_scale_allowed(allowed: bool) {
    ALLOW_ZERO_INITIAL_SCALE.store(allowed, std::sync::atomic::Ordering::Relaxed);
}

/// The annotation prefix of autoscaling settings.
pub const GROUP: &str = "autoscaling.knative.dev";
/// `class`: `kpa.autoscaling.knative.dev` (default) or `hpa.autoscaling.knative.dev`.
pub const CLASS: &str = "autoscaling.knative.dev/class";
/// The Knative Pod Autoscaler class.
pub const KPA: &str = "kpa.autoscaling.knative.dev";
/// The Kubernetes Horizontal Pod Autoscaler class.
pub const HPA: &str = "hpa.autoscaling.knative.dev";
/// `min-scale` (legacy `minScale`).
pub const MIN_SCALE: &[&str] = &["autoscaling.knative.dev/min-scale", "autoscaling.knative.dev/minScale"];
/// `max-scale` (legacy `maxScale`).
pub const MAX_SCALE: &[&str] = &["autoscaling.knative.dev/max-scale", "autoscaling.knative.dev/maxScale"];
/// `initial-scale` (legacy `initialScale`).
pub const INITIAL_SCALE: &[&str] = &["autoscaling.knative.dev/initial-scale", "autoscaling.knative.dev/initialScale"];
/// `activation-scale`.
pub const ACTIVATION_SCALE: &[&str] = &["autoscaling.knative.dev/activation-scale"];
/// `scale-down-delay` (legacy `scaleDownDelay`).
pub const SCALE_DOWN_DELAY: &[&str] = &["autoscaling.knative.dev/scale-down-delay", "autoscaling.knative.dev/scaleDownDelay"];
/// `metric`: `concurrency` or `rps` (KPA), anything (HPA).
pub const METRIC: &[&str] = &["autoscaling.knative.dev/metric"];
/// `target`: soft concurrency or RPS target.
pub const TARGET: &[&str] = &["autoscaling.knative.dev/target"];
/// `target-utilization-percentage` (legacy `targetUtilizationPercentage`).
pub const TARGET_UTILIZATION: &[&str] = &[
    "autoscaling.knative.dev/target-utilization-percentage",
    "autoscaling.knative.dev/targetUtilizationPercentage",
];
/// `target-burst-capacity` (legacy `targetBurstCapacity`).
pub const TARGET_BURST_CAPACITY: &[&str] = &[
    "autoscaling.knative.dev/target-burst-capacity",
    "autoscaling.knative.dev/targetBurstCapacity",
];
/// `window`: the stable window.
pub const WINDOW: &[&str] = &["autoscaling.knative.dev/window"];
/// `panic-window-percentage` (legacy `panicWindowPercentage`).
pub const PANIC_WINDOW_PERCENTAGE: &[&str] = &[
    "autoscaling.knative.dev/panic-window-percentage",
    "autoscaling.knative.dev/panicWindowPercentage",
];
/// `panic-threshold-percentage` (legacy `panicThresholdPercentage`).
pub const PANIC_THRESHOLD_PERCENTAGE: &[&str] = &[
    "autoscaling.knative.dev/panic-threshold-percentage",
    "autoscaling.knative.dev/panicThresholdPercentage",
];
/// `scale-to-zero-pod-retention-period` (legacy `scaleToZeroPodRetentionPeriod`).
pub const SCALE_TO_ZERO_POD_RETENTION: &[&str] = &[
    "autoscaling.knative.dev/scale-to-zero-pod-retention-period",
    "autoscaling.knative.dev/scaleToZeroPodRetentionPeriod",
];
/// `metric-aggregation-algorithm` (legacy `metricAggregationAlgorithm`).
pub const METRIC_AGGREGATION_ALGORITHM: &[&str] = &[
    "autoscaling.knative.dev/metric-aggregation-algorithm",
    "autoscaling.knative.dev/metricAggregationAlgorithm",
];

/// The value of the first of `keys` present in `annotations`, with the key found.
pub fn get<'a>(annotations: &'a BTreeMap<String, String>, keys: &[&'static str]) -> Option<(&'static str, &'a str)> {
    keys.iter().find_map(|k| annotations.get(*k).map(|v| (*k, v.as_str())))
}

/// Parses a Go duration (`300ms`, `1.5h`, `2h45m`, `-1s`, `0`), as `time.ParseDuration` does.
/// Returns the magnitude and whether it was negative.
pub fn parse_go_duration(text: &str) -> Result<(Duration, bool), String> {
    let mut s = text;
    let negative = s.starts_with('-');
    s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return Ok((Duration::ZERO, negative));
    }
    if s.is_empty() {
        return Err(format!("invalid duration {text:?}"));
    }
    let mut total = 0f64;
    while !s.is_empty() {
        let num_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
        let (num, rest) = s.split_at(num_end);
        if num.is_empty() || num == "." {
            return Err(format!("invalid duration {text:?}"));
        }
        let value: f64 = num.parse().map_err(|_| format!("invalid duration {text:?}"))?;
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(unit_end);
        let factor = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("missing unit in duration {text:?}")),
            other => return Err(format!("unknown unit {other:?} in duration {text:?}")),
        };
        total += value * factor;
        s = rest;
    }
    if !total.is_finite() {
        return Err(format!("invalid duration {text:?}"));
    }
    Ok((Duration::from_secs_f64(total), negative))
}

/// Validates the autoscaling annotations of a Revision template (or Revision), reporting
/// errors under `path` (e.g. `spec.template.metadata.annotations`).
///
/// Uses Serving's default `config-autoscaler` (class KPA, `allow-zero-initial-scale: false`,
/// no `max-scale-limit`).
pub fn validate_annotations(annotations: &BTreeMap<String, String>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let at = |k: &str| key(path, k);
    let invalid = |k: &str, v: &str| FieldError::invalid(key(path, k), v);

    let class = annotations.get(CLASS).map(String::as_str);
    if let Some(c) = class {
        if c.ends_with(".knative.dev") && c != KPA && c != HPA {
            errs.push(invalid(CLASS, c));
        }
    }

    let int_ge0 = |keys: &[&'static str], errs: &mut Vec<FieldError>| -> i64 {
        match get(annotations, keys) {
            None => 0,
            Some((k, v)) => match v.parse::<i64>() {
                Ok(n) if (0..=i64::from(i32::MAX)).contains(&n) => n,
                Ok(_) => {
                    errs.push(FieldError::new(at(k), format!("expected 0 <= {v} <= {}", i32::MAX)));
                    0
                }
                Err(_) => {
                    errs.push(invalid(k, v));
                    0
                }
            },
        }
    };
    let min = int_ge0(MIN_SCALE, &mut errs);
    let max = int_ge0(MAX_SCALE, &mut errs);
    if max != 0 && max < min {
        errs.push(FieldError::new(
            at(MAX_SCALE[0]),
            format!("max-scale={max} is less than min-scale={min}"),
        ));
    }
    if let Some((k, v)) = get(annotations, ACTIVATION_SCALE) {
        match v.parse::<i64>() {
            Err(_) => errs.push(invalid(k, v)),
            Ok(n) if min > n => errs.push(FieldError::new(
                at(k),
                format!("min-scale={min} is greater than activation-scale={n}"),
            )),
            Ok(n) if max != 0 && max < n => errs.push(FieldError::new(at(k), format!("max-scale={max} is less than activation-scale={n}"))),
            Ok(n) if n < 2 => errs.push(FieldError::new(at(k), format!("activation-scale={n} must be greater than 1"))),
            Ok(_) => {}
        }
    }

    let float = |keys: &[&'static str]| get(annotations, keys).map(|(k, v)| (k, v, v.parse::<f64>().ok()));
    if let Some((k, v, f)) = float(PANIC_WINDOW_PERCENTAGE) {
        match f {
            None => errs.push(invalid(k, v)),
            Some(f) if !(1.0..=100.0).contains(&f) => errs.push(FieldError::new(at(k), format!("expected 1 <= {v} <= 100"))),
            _ => {}
        }
    }
    if let Some((k, v, f)) = float(PANIC_THRESHOLD_PERCENTAGE) {
        match f {
            None => errs.push(invalid(k, v)),
            Some(f) if !(110.0..=1000.0).contains(&f) => errs.push(FieldError::new(at(k), format!("expected 110 <= {v} <= 1000"))),
            _ => {}
        }
    }
    if let Some((k, v, f)) = float(TARGET) {
        match f {
            None => errs.push(invalid(k, v)),
            Some(f) if f < 0.01 => errs.push(FieldError::new(at(k), format!("target {v} should be at least 0.01"))),
            _ => {}
        }
    }
    if let Some((k, v, f)) = float(TARGET_UTILIZATION) {
        match f {
            None => errs.push(invalid(k, v)),
            Some(f) if !(1.0..=100.0).contains(&f) => errs.push(FieldError::new(at(k), format!("expected 1 <= {v} <= 100"))),
            _ => {}
        }
    }
    if let Some((k, v, f)) = float(TARGET_BURST_CAPACITY) {
        if !f.is_some_and(|f| f >= 0.0 || f == -1.0) {
            errs.push(invalid(k, v));
        }
    }

    let hour = Duration::from_secs(3600);
    if let Some((k, v)) = get(annotations, WINDOW) {
        match parse_go_duration(v) {
            Err(_) => errs.push(invalid(k, v)),
            Ok((d, neg)) if neg || d < Duration::from_secs(6) || d > hour => {
                errs.push(FieldError::new(at(k), format!("expected 6s <= {v} <= 1h0m0s")))
            }
            Ok((d, _)) if d.subsec_nanos() != 0 => errs.push(FieldError::new(at(k), "must be specified with at most second precision")),
            Ok(_) => {}
        }
    }
    if let Some((k, v)) = get(annotations, SCALE_DOWN_DELAY) {
        match parse_go_duration(v) {
            Err(_) => errs.push(invalid(k, v)),
            Ok((d, neg)) if neg || d > hour => errs.push(FieldError::new(at(k), format!("expected 0s <= {v} <= 1h0m0s"))),
            Ok((d, _)) if d.subsec_nanos() != 0 => errs.push(FieldError::new(at(k), "must be specified with at most second precision")),
            Ok(_) => {}
        }
    }
    if let Some((k, v)) = get(annotations, SCALE_TO_ZERO_POD_RETENTION) {
        match parse_go_duration(v) {
            Err(_) => errs.push(invalid(k, v)),
            Ok((d, neg)) if neg || d > hour => errs.push(FieldError::new(at(k), format!("expected 0s <= {v} <= 1h0m0s"))),
            Ok(_) => {}
        }
    }

    if let Some((k, metric)) = get(annotations, METRIC) {
        let ok = match class.unwrap_or(KPA) {
            KPA => metric == "concurrency" || metric == "rps",
            HPA => !metric.is_empty(),
            _ => true,
        };
        if !ok {
            errs.push(invalid(k, metric));
        }
    }
    if class.unwrap_or(KPA) == KPA {
        if let Some((k, v)) = get(annotations, METRIC_AGGREGATION_ALGORITHM) {
            if !["linear", "weighted-exponential", "weightedExponential", ""].contains(&v) {
                errs.push(invalid(k, v));
            }
        }
    }
    if let Some((k, v)) = get(annotations, INITIAL_SCALE) {
        match v.parse::<i64>() {
            Err(_) => errs.push(invalid(k, v)),
            Ok(n) if n < 0 => errs.push(FieldError::new(at(k), format!("invalid value: {v}: must be greater than 0"))),
            Ok(0) if zero_initial_scale_allowed() => {}
            Ok(0) => errs.push(FieldError::new(
                at(k),
                format!("invalid value: {v}: initial-scale=0 not allowed by cluster"),
            )),
            Ok(_) => {}
        }
    }
    errs
}

/// Autoscaling annotations belong on the Revision template; on a Service, Configuration or
/// Route they are rejected.
pub fn reject_on_parent(annotations: Option<&BTreeMap<String, String>>, path: &str) -> Vec<FieldError> {
    annotations
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with(GROUP))
        .map(|(k, _)| {
            FieldError::new(
                key(path, k),
                "invalid key name: autoscaling annotations must be put under \"spec.template.metadata.annotations\" to work",
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anns(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("40s").unwrap().0, Duration::from_secs(40));
        assert_eq!(parse_go_duration("1m30s").unwrap().0, Duration::from_secs(90));
        assert_eq!(parse_go_duration("1.5h").unwrap().0, Duration::from_secs(5400));
        assert_eq!(parse_go_duration("300ms").unwrap().0, Duration::from_millis(300));
        assert!(parse_go_duration("-1s").unwrap().1);
        assert!(parse_go_duration("10").is_err());
        assert!(parse_go_duration("1d").is_err());
    }

    #[test]
    fn annotations() {
        let ok = anns(&[
            ("autoscaling.knative.dev/min-scale", "1"),
            ("autoscaling.knative.dev/max-scale", "100"),
            ("autoscaling.knative.dev/target", "10"),
            ("autoscaling.knative.dev/window", "40s"),
            ("autoscaling.knative.dev/panic-window-percentage", "20.0"),
            ("autoscaling.knative.dev/targetBurstCapacity", "-1"),
        ]);
        assert!(validate_annotations(&ok, "a").is_empty());
        let bad = anns(&[
            ("autoscaling.knative.dev/min-scale", "5"),
            ("autoscaling.knative.dev/max-scale", "2"),
        ]);
        let errs = validate_annotations(&bad, "a");
        assert_eq!(errs[0].path, "a[autoscaling.knative.dev/max-scale]");
        let zero = anns(&[("autoscaling.knative.dev/initial-scale", "0")]);
        assert!(validate_annotations(&zero, "a")[0].message.contains("not allowed by cluster"));
        let window = anns(&[("autoscaling.knative.dev/window", "2s")]);
        assert_eq!(validate_annotations(&window, "a").len(), 1);
        let metric = anns(&[("autoscaling.knative.dev/metric", "cpu")]);
        assert_eq!(validate_annotations(&metric, "a").len(), 1);
        let hpa = anns(&[("autoscaling.knative.dev/metric", "cpu"), ("autoscaling.knative.dev/class", HPA)]);
        assert!(validate_annotations(&hpa, "a").is_empty());
    }
}
