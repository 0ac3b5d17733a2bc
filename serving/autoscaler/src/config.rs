//! `config-autoscaler` (namespace `knative-serving`) with Knative's defaults (4.4), and the
//! settings of one revision: the config overridden by its `autoscaling.knative.dev/*`
//! annotations and its `containerConcurrency`.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_crds::autoscaling as ann;

/// A key of `config-autoscaler` or an annotation that could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// The ConfigMap key or annotation.
    pub key: String,
    /// What is wrong with its value.
    pub message: String,
}

fn error(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        message: message.into(),
    }
}

/// What the autoscaler measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Requests in flight, summed over instances (the default).
    Concurrency,
    /// Requests per second.
    Rps,
}

/// `config-autoscaler`, with Knative's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `container-concurrency-target-default`: the soft target when `containerConcurrency` is 0.
    pub container_concurrency_target_default: f64,
    /// `container-concurrency-target-percentage` as a fraction (70 → 0.7).
    pub target_utilization: f64,
    /// `requests-per-second-target-default`.
    pub rps_target_default: f64,
    /// `target-burst-capacity` (0: the activator only at zero; -1: always in the path).
    pub target_burst_capacity: f64,
    /// `stable-window`.
    pub stable_window: Duration,
    /// `panic-window-percentage` (of the stable window).
    pub panic_window_percentage: f64,
    /// `panic-threshold-percentage`.
    pub panic_threshold_percentage: f64,
    /// `max-scale-up-rate`.
    pub max_scale_up_rate: f64,
    /// `max-scale-down-rate`.
    pub max_scale_down_rate: f64,
    /// `enable-scale-to-zero`.
    pub enable_scale_to_zero: bool,
    /// `scale-to-zero-grace-period`.
    pub scale_to_zero_grace_period: Duration,
    /// `scale-to-zero-pod-retention-period`.
    pub scale_to_zero_pod_retention_period: Duration,
    /// `scale-down-delay`.
    pub scale_down_delay: Duration,
    /// `initial-scale`.
    pub initial_scale: u32,
    /// `allow-zero-initial-scale`.
    pub allow_zero_initial_scale: bool,
    /// `min-scale`.
    pub min_scale: u32,
    /// `max-scale` (0: unbounded).
    pub max_scale: u32,
    /// `max-scale-limit` (0: none).
    pub max_scale_limit: u32,
    /// `activator-capacity`.
    pub activator_capacity: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            container_concurrency_target_default: 100.0,
            target_utilization: 0.7,
            rps_target_default: 200.0,
            target_burst_capacity: 211.0,
            stable_window: Duration::from_secs(60),
            panic_window_percentage: 10.0,
            panic_threshold_percentage: 200.0,
            max_scale_up_rate: 1000.0,
            max_scale_down_rate: 2.0,
            enable_scale_to_zero: true,
            scale_to_zero_grace_period: Duration::from_secs(30),
            scale_to_zero_pod_retention_period: Duration::ZERO,
            scale_down_delay: Duration::ZERO,
            initial_scale: 1,
            allow_zero_initial_scale: false,
            min_scale: 0,
            max_scale: 0,
            max_scale_limit: 0,
            activator_capacity: 100.0,
        }
    }
}

/// A number of `key` (as `strconv.ParseFloat` reads it).
fn number(key: &str, value: &str) -> Result<f64, ConfigError> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| error(key, format!("{value:?} is not a number")))
}

fn whole(key: &str, value: &str) -> Result<u32, ConfigError> {
    value
        .trim()
        .parse::<u32>()
        .map_err(|_| error(key, format!("{value:?} is not a whole number ≥ 0")))
}

fn duration(key: &str, value: &str) -> Result<Duration, ConfigError> {
    match ann::parse_go_duration(value.trim()) {
        Ok((d, false)) => Ok(d),
        Ok((_, true)) => Err(error(key, format!("{value:?} is negative"))),
        Err(e) => Err(error(key, e)),
    }
}

fn boolean(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(error(key, format!("{value:?} is not true or false"))),
    }
}

/// A percentage that may be written as a fraction: values ≤ 1 are read as fractions (4.4).
fn fraction(key: &str, value: &str) -> Result<f64, ConfigError> {
    let v = number(key, value)?;
    let f = if v <= 1.0 { v } else { v / 100.0 };
    if f <= 0.0 || f > 1.0 {
        return Err(error(key, format!("{value:?} must be in (0, 100]")));
    }
    Ok(f)
}

impl Config {
    /// The config from the `data` of `config-autoscaler`; a key it does not set keeps its
    /// default. Every bad key is reported, and then nothing is used.
    pub fn from_data(data: &BTreeMap<String, String>) -> Result<Self, Vec<ConfigError>> {
        let mut c = Config::default();
        let mut errors = Vec::new();
        for (key, value) in data {
            let result = match key.as_str() {
                "container-concurrency-target-default" => number(key, value).map(|v| c.container_concurrency_target_default = v),
                "container-concurrency-target-percentage" => fraction(key, value).map(|v| c.target_utilization = v),
                "requests-per-second-target-default" => number(key, value).map(|v| c.rps_target_default = v),
                "target-burst-capacity" => number(key, value).map(|v| c.target_burst_capacity = v),
                "stable-window" => duration(key, value).map(|v| c.stable_window = v),
                "panic-window-percentage" => number(key, value).map(|v| c.panic_window_percentage = v),
                "panic-threshold-percentage" => number(key, value).map(|v| c.panic_threshold_percentage = v),
                "max-scale-up-rate" => number(key, value).map(|v| c.max_scale_up_rate = v),
                "max-scale-down-rate" => number(key, value).map(|v| c.max_scale_down_rate = v),
                "enable-scale-to-zero" => boolean(key, value).map(|v| c.enable_scale_to_zero = v),
                "scale-to-zero-grace-period" => duration(key, value).map(|v| c.scale_to_zero_grace_period = v),
                "scale-to-zero-pod-retention-period" => duration(key, value).map(|v| c.scale_to_zero_pod_retention_period = v),
                "scale-down-delay" => duration(key, value).map(|v| c.scale_down_delay = v),
                "initial-scale" => whole(key, value).map(|v| c.initial_scale = v),
                "allow-zero-initial-scale" => boolean(key, value).map(|v| c.allow_zero_initial_scale = v),
                "min-scale" => whole(key, value).map(|v| c.min_scale = v),
                "max-scale" => whole(key, value).map(|v| c.max_scale = v),
                "max-scale-limit" => whole(key, value).map(|v| c.max_scale_limit = v),
                "activator-capacity" => number(key, value).map(|v| c.activator_capacity = v),
                // Keys of the HPA class, of Knative versions before these, and `_example`.
                _ => Ok(()),
            };
            errors.extend(result.err());
        }
        errors.extend(c.check());
        if errors.is_empty() {
            Ok(c)
        } else {
            Err(errors)
        }
    }

    /// Knative's ranges for the settings (4.4).
    fn check(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let window = self.stable_window;
        if window < Duration::from_secs(6) || window > Duration::from_secs(3600) || window.subsec_nanos() != 0 {
            errors.push(error("stable-window", format!("{window:?} must be whole seconds in [6s, 1h]")));
        }
        if !(1.0..=100.0).contains(&self.panic_window_percentage) {
            errors.push(error("panic-window-percentage", "must be in [1, 100]"));
        }
        if self.max_scale_up_rate <= 1.0 {
            errors.push(error("max-scale-up-rate", "must be greater than 1"));
        }
        if self.max_scale_down_rate <= 1.0 {
            errors.push(error("max-scale-down-rate", "must be greater than 1"));
        }
        if self.scale_to_zero_grace_period.is_zero() {
            errors.push(error("scale-to-zero-grace-period", "must be positive"));
        }
        if self.scale_down_delay > Duration::from_secs(3600) {
            errors.push(error("scale-down-delay", "must be at most 1h"));
        }
        if self.target_burst_capacity < 0.0 && self.target_burst_capacity != -1.0 {
            errors.push(error("target-burst-capacity", "must be ≥ 0, or -1"));
        }
        if self.initial_scale == 0 && !self.allow_zero_initial_scale {
            errors.push(error("initial-scale", "0 needs allow-zero-initial-scale: true"));
        }
        if self.max_scale_limit > 0 && self.max_scale > self.max_scale_limit {
            errors.push(error("max-scale", "must not exceed max-scale-limit"));
        }
        errors
    }
}

/// How one revision scales: `config-autoscaler` with its annotations applied (Knative's
/// DeciderSpec plus the scaler's bounds).
#[derive(Clone, Debug, PartialEq)]
pub struct RevisionSpec {
    /// What is measured.
    pub metric: Metric,
    /// The metric one instance may carry: `containerConcurrency`, else the default target, or
    /// the `target` annotation.
    pub total_value: f64,
    /// What the autoscaler aims at per instance: `total_value × utilization`, at least 0.01.
    pub target_value: f64,
    /// `target-burst-capacity`.
    pub target_burst_capacity: f64,
    /// The stable window.
    pub stable_window: Duration,
    /// The panic window (`panic-window-percentage` of the stable window).
    pub panic_window: Duration,
    /// Panic when the panic window's demand is this many times the ready instances (2.0).
    pub panic_threshold: f64,
    /// `max-scale-up-rate`.
    pub max_scale_up_rate: f64,
    /// `max-scale-down-rate`.
    pub max_scale_down_rate: f64,
    /// `activation-scale`: the least scale when leaving zero.
    pub activation_scale: u32,
    /// `scale-down-delay`.
    pub scale_down_delay: Duration,
    /// `min-scale`.
    pub min_scale: u32,
    /// `max-scale` (0: unbounded).
    pub max_scale: u32,
    /// `initial-scale`.
    pub initial_scale: u32,
    /// `enable-scale-to-zero`.
    pub enable_scale_to_zero: bool,
    /// `scale-to-zero-grace-period`.
    pub scale_to_zero_grace_period: Duration,
    /// `scale-to-zero-pod-retention-period`.
    pub scale_to_zero_pod_retention_period: Duration,
}

impl RevisionSpec {
    /// The settings of a revision with these annotations and `containerConcurrency`
    /// (0: unlimited). Admission has validated the annotations
    /// (`sluice_crds::autoscaling::validate_annotations`); a value that still cannot be read is
    /// reported.
    pub fn new(config: &Config, annotations: &BTreeMap<String, String>, container_concurrency: u32) -> Result<Self, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut read = |keys: &[&'static str], parse: &dyn Fn(&str, &str) -> Result<f64, ConfigError>| -> Option<f64> {
            let (key, value) = ann::get(annotations, keys)?;
            parse(key, value).map_err(|e| errors.push(e)).ok()
        };
        let seconds = |key: &str, value: &str| duration(key, value).map(|d| d.as_secs_f64());
        let metric = match ann::get(annotations, ann::METRIC) {
            Some((_, "rps")) => Metric::Rps,
            _ => Metric::Concurrency,
        };
        let target = read(ann::TARGET, &number);
        let utilization = read(ann::TARGET_UTILIZATION, &fraction).unwrap_or(config.target_utilization);
        let cc = f64::from(container_concurrency);
        let total_value = match (metric, target) {
            (Metric::Rps, Some(t)) => t,
            (Metric::Rps, None) => config.rps_target_default,
            (Metric::Concurrency, Some(t)) if cc > 0.0 => t.min(cc),
            (Metric::Concurrency, Some(t)) => t,
            (Metric::Concurrency, None) if cc > 0.0 => cc,
            (Metric::Concurrency, None) => config.container_concurrency_target_default,
        };
        let stable_window = read(ann::WINDOW, &seconds).map_or(config.stable_window, Duration::from_secs_f64);
        let panic_window_percentage = read(ann::PANIC_WINDOW_PERCENTAGE, &number).unwrap_or(config.panic_window_percentage);
        let panic_threshold_percentage = read(ann::PANIC_THRESHOLD_PERCENTAGE, &number).unwrap_or(config.panic_threshold_percentage);
        let count = |v: Option<f64>, default: u32| v.map_or(default, |v| v.max(0.0) as u32);
        let spec = RevisionSpec {
            metric,
            total_value,
            target_value: (total_value * utilization).max(0.01),
            target_burst_capacity: read(ann::TARGET_BURST_CAPACITY, &number).unwrap_or(config.target_burst_capacity),
            stable_window,
            panic_window: stable_window.mul_f64(panic_window_percentage / 100.0),
            panic_threshold: panic_threshold_percentage / 100.0,
            max_scale_up_rate: config.max_scale_up_rate,
            max_scale_down_rate: config.max_scale_down_rate,
            activation_scale: count(read(ann::ACTIVATION_SCALE, &number), 1).max(1),
            scale_down_delay: read(ann::SCALE_DOWN_DELAY, &seconds).map_or(config.scale_down_delay, Duration::from_secs_f64),
            min_scale: count(read(ann::MIN_SCALE, &number), config.min_scale),
            max_scale: count(read(ann::MAX_SCALE, &number), config.max_scale),
            initial_scale: count(read(ann::INITIAL_SCALE, &number), config.initial_scale),
            enable_scale_to_zero: config.enable_scale_to_zero,
            scale_to_zero_grace_period: config.scale_to_zero_grace_period,
            scale_to_zero_pod_retention_period: read(ann::SCALE_TO_ZERO_POD_RETENTION, &seconds)
                .map_or(config.scale_to_zero_pod_retention_period, Duration::from_secs_f64),
        };
        if errors.is_empty() {
            Ok(spec)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn knatives_defaults_and_overrides() {
        let c = Config::from_data(&BTreeMap::new()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.target_burst_capacity, 211.0, "211, not 200");
        let c = Config::from_data(&data(&[
            ("container-concurrency-target-percentage", "0.8"),
            ("stable-window", "2m"),
            ("scale-to-zero-grace-period", "10s"),
            ("_example", "anything"),
        ]))
        .unwrap();
        assert_eq!(c.target_utilization, 0.8);
        assert_eq!(c.stable_window, Duration::from_secs(120));
        assert_eq!(c.scale_to_zero_grace_period, Duration::from_secs(10));
    }

    #[test]
    fn every_bad_key_is_named() {
        let errors = Config::from_data(&data(&[
            ("stable-window", "5s"),
            ("max-scale-down-rate", "1"),
            ("enable-scale-to-zero", "maybe"),
        ]))
        .unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["enable-scale-to-zero", "stable-window", "max-scale-down-rate"], "{errors:?}");
    }

    #[test]
    fn a_revisions_target_follows_container_concurrency_and_its_annotations() {
        let c = Config::default();
        let spec = |pairs: &[(&str, &str)], cc| RevisionSpec::new(&c, &data(pairs), cc).unwrap();
        // cc = 0: the default target, 100 × 0.7.
        let s = spec(&[], 0);
        assert_eq!((s.total_value, s.target_value), (100.0, 70.0));
        assert_eq!(s.panic_window, Duration::from_secs(6));
        assert_eq!(s.panic_threshold, 2.0);
        // cc = 10: the hard limit is the total.
        assert_eq!(spec(&[], 10).target_value, 7.0);
        // A target above cc is capped by it; utilization from the annotation.
        let s = spec(
            &[
                ("autoscaling.knative.dev/target", "50"),
                ("autoscaling.knative.dev/target-utilization-percentage", "50"),
            ],
            20,
        );
        assert_eq!((s.total_value, s.target_value), (20.0, 10.0));
        // rps: its own default.
        let s = spec(&[("autoscaling.knative.dev/metric", "rps")], 0);
        assert_eq!((s.metric, s.target_value), (Metric::Rps, 140.0));
        let s = spec(
            &[
                ("autoscaling.knative.dev/window", "20s"),
                ("autoscaling.knative.dev/min-scale", "2"),
                ("autoscaling.knative.dev/maxScale", "5"),
                ("autoscaling.knative.dev/scale-down-delay", "15s"),
            ],
            0,
        );
        assert_eq!((s.stable_window, s.panic_window), (Duration::from_secs(20), Duration::from_secs(2)));
        assert_eq!((s.min_scale, s.max_scale, s.scale_down_delay), (2, 5, Duration::from_secs(15)));
    }
}
