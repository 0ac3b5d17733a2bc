//! Delivery policy: how many retries, how they are spaced, how long one attempt may take, and
//! which responses are worth retrying (DUCK-04, DUCK-06, DUCK-07).
//!
//! Pure decision code: no I/O and no clocks, so the formulas are tested directly.

use std::time::Duration;

use sluice_crds::duck::{BackoffPolicy, DeliverySpec};
use sluice_crds::FieldError;

/// Content mode forced on outgoing requests (`spec.delivery.format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Binary mode (Sluice's default on the wire).
    #[default]
    Binary,
    /// Structured JSON mode.
    Structured,
}

/// A validated delivery policy, parsed once from a [`DeliverySpec`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (total attempts = retries + 1).
    pub retries: u32,
    /// Backoff policy and base delay; `None` means retry immediately.
    pub backoff: Option<(BackoffPolicy, Duration)>,
    /// Per-attempt timeout.
    pub timeout: Option<Duration>,
    /// Upper bound for an honoured `Retry-After`; `None` ignores the header.
    pub retry_after_max: Option<Duration>,
    /// Content mode of outgoing requests.
    pub format: Format,
}

impl Default for RetryPolicy {
    /// No retries, no timeout: what Knative does when no delivery spec applies.
    fn default() -> Self {
        Self {
            retries: 0,
            backoff: None,
            timeout: None,
            retry_after_max: None,
            format: Format::Binary,
        }
    }
}

impl RetryPolicy {
    /// Parses a delivery spec with the parser admission uses ([`DeliverySpec::parse`]), so a
    /// spec that was accepted always yields a policy; errors carry the field path under `path`.
    pub fn from_spec(spec: &DeliverySpec, path: &str) -> Result<Self, Vec<FieldError>> {
        let options = spec.parse(path)?;
        Ok(Self {
            retries: options.retries,
            backoff: options.backoff,
            timeout: options.timeout,
            retry_after_max: options.retry_after_max,
            format: if options.json_format { Format::Structured } else { Format::Binary },
        })
    }

    /// The wait before retry `k` (k = 1, 2, …): `delay × k` for linear, `delay × 2^(k−1)` for
    /// exponential.
    pub fn backoff(&self, k: u32) -> Duration {
        let Some((policy, delay)) = self.backoff else {
            return Duration::ZERO;
        };
        let k = k.max(1);
        let factor: u32 = match policy {
            BackoffPolicy::Linear => k,
            BackoffPolicy::Exponential => 1u32.checked_shl(k - 1).unwrap_or(u32::MAX),
        };
        delay.saturating_mul(factor)
    }

    /// The wait before retry `k`, honouring a `Retry-After` (capped by `retryAfterMax`) on 429
    /// and 503 when `retryAfterMax` is set.
    pub fn wait_before_retry(&self, k: u32, status: Option<u16>, retry_after: Option<Duration>) -> Duration {
        let backoff = self.backoff(k);
        match (self.retry_after_max, status, retry_after) {
            (Some(max), Some(429 | 503), Some(ra)) => backoff.max(ra.min(max)),
            _ => backoff,
        }
    }
}

/// Whether a response status is worth retrying (DUCK-07): 404, 408, 409, 429 and 5xx.
/// Network errors (no status) are retried too.
pub fn is_retryable(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => matches!(s, 404 | 408 | 409 | 429) || (500..600).contains(&s),
    }
}

/// Parses a `Retry-After` value: delta-seconds or an HTTP-date (relative to `now`).
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(policy: &str, delay: &str, retry: i32) -> DeliverySpec {
        DeliverySpec {
            retry: Some(retry),
            backoff_policy: Some(if policy == "linear" {
                BackoffPolicy::Linear
            } else {
                BackoffPolicy::Exponential
            }),
            backoff_delay: Some(delay.into()),
            ..Default::default()
        }
    }

    #[test]
    fn linear_backoff_is_delay_times_k() {
        let p = RetryPolicy::from_spec(&spec("linear", "PT0.1S", 3), "spec.delivery").unwrap();
        let waits: Vec<_> = (1..=3).map(|k| p.backoff(k).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 300]);
    }

    #[test]
    fn exponential_backoff_doubles_from_delay() {
        let p = RetryPolicy::from_spec(&spec("exponential", "PT0.2S", 4), "spec.delivery").unwrap();
        let waits: Vec<_> = (1..=4).map(|k| p.backoff(k).as_millis()).collect();
        assert_eq!(waits, vec![200, 400, 800, 1600]);
    }

    #[test]
    fn retry_after_only_with_retry_after_max() {
        let mut p = RetryPolicy::from_spec(&spec("linear", "PT0.1S", 3), "d").unwrap();
        assert_eq!(
            p.wait_before_retry(1, Some(429), Some(Duration::from_secs(5))),
            Duration::from_millis(100)
        );
        p.retry_after_max = Some(Duration::from_secs(2));
        assert_eq!(
            p.wait_before_retry(1, Some(429), Some(Duration::from_secs(5))),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.wait_before_retry(1, Some(500), Some(Duration::from_secs(5))),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn retryable_statuses() {
        for s in [404, 408, 409, 429, 500, 502, 503, 599] {
            assert!(is_retryable(Some(s)), "{s}");
        }
        for s in [400, 401, 403, 405, 410, 413, 301] {
            assert!(!is_retryable(Some(s)), "{s}");
        }
        assert!(is_retryable(None));
    }

    #[test]
    fn bad_spec_names_the_field() {
        let s = DeliverySpec {
            backoff_delay: Some("2s".into()),
            ..Default::default()
        };
        let errs = RetryPolicy::from_spec(&s, "spec.delivery").unwrap_err();
        assert_eq!(errs[0].path, "spec.delivery.backoffDelay");
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(30)));
    }
}
