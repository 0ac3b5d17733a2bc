//! PingSource (`sources.knative.dev/v1`, PING-01/02): a fixed event on a cron schedule.
//!
//! - **Config**: the schedule (`croner`, as robfig/cron with optional seconds), the zone
//!   (`spec.timezone`, else the schedule's `CRON_TZ=`, else UTC; `chrono-tz`), the data.
//! - **Conversion**: [`event`] — type `dev.knative.sources.ping`, source
//!   `/apis/v1/namespaces/<ns>/pingsources/<name>`, a new UUID per tick, `time` = send time.
//! - **Loop**: sleeps until the next tick plus Knative's 0–500 ms jitter, then emits without
//!   waiting for the previous tick's delivery.
//! - **Acknowledgement**: none upstream; a tick the sink refused after its retries is logged and
//!   counted as failed.

use base64::Engine;
use chrono::{DateTime, Utc};
use cloudevents::{AttributesReader, Event, EventBuilder, EventBuilderV10};
use rand::Rng;
use sluice_crds::sources::cron::{time_zone, CronSchedule};
use sluice_crds::sources::PingSource;
use tokio::task::JoinSet;

use crate::{Adapter, AdapterContext, ConfigError, Health};

/// The most a tick is delayed at random, as Knative's adapter does, so that many sources on
/// one schedule do not all send at the same instant.
const MAX_JITTER_MS: u64 = 500;

/// What a PingSource's adapter runs on.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// When it fires.
    pub schedule: CronSchedule,
    /// The zone the schedule is read in.
    pub zone: chrono_tz::Tz,
    /// The events' `source`.
    pub source: String,
    /// The events' `datacontenttype`.
    pub content_type: Option<String>,
    /// The events' data.
    pub data: Option<Vec<u8>>,
}

impl Config {
    /// The config of `ping` (admitted, so its schedule and data are valid).
    pub fn from_source(ping: &PingSource) -> Result<Self, ConfigError> {
        let spec = &ping.spec;
        let schedule = spec
            .parsed_schedule()
            .map_err(|e| ConfigError::new("spec.schedule", "InvalidSchedule", e.to_string()))?;
        let zone = match (spec.timezone.as_deref().filter(|t| !t.is_empty()), schedule.timezone.as_deref()) {
            (Some(tz), _) => time_zone(tz).map_err(|e| ConfigError::new("spec.timezone", "InvalidTimezone", e.to_string()))?,
            (None, Some(tz)) => time_zone(tz).map_err(|e| ConfigError::new("spec.schedule", "InvalidTimezone", e.to_string()))?,
            (None, None) => chrono_tz::UTC,
        };
        let data = match (
            spec.data.as_deref().filter(|d| !d.is_empty()),
            spec.data_base64.as_deref().filter(|d| !d.is_empty()),
        ) {
            (Some(text), _) => Some(text.as_bytes().to_vec()),
            (None, Some(b64)) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| ConfigError::new("spec.dataBase64", "InvalidData", e.to_string()))?,
            ),
            (None, None) => None,
        };
        let namespace = ping.metadata.namespace.as_deref().unwrap_or("default");
        let name = ping.metadata.name.as_deref().unwrap_or_default();
        Ok(Self {
            schedule,
            zone,
            source: format!("/apis/v1/namespaces/{namespace}/pingsources/{name}"),
            content_type: spec.content_type.clone().filter(|c| !c.is_empty()),
            data,
        })
    }

    /// The next tick strictly after `now`.
    pub fn next_tick(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&self.zone);
        self.schedule.next_after(&local).map(|t| t.with_timezone(&Utc))
    }
}

/// The event of one tick (PING-02).
pub fn event(config: &Config, id: String, time: DateTime<Utc>) -> Event {
    let mut event = EventBuilderV10::new()
        .id(id)
        .ty(sluice_crds::sources::ping::EVENT_TYPE)
        .source(config.source.clone())
        .time(time)
        .build()
        // Every required attribute is set above.
        .expect("a ping event has its required attributes");
    match (&config.data, &config.content_type) {
        (Some(data), Some(ct)) => {
            event.set_data(ct.clone(), data.clone());
        }
        // Knative sends the data without a content type when none is given.
        (Some(data), None) => {
            event.set_data_unchecked(data.clone());
        }
        (None, _) => {}
    }
    event
}

/// Sends the PingSource's event on every tick.
pub struct PingAdapter {
    config: Config,
}

impl PingAdapter {
    /// An adapter for `config`.
    pub fn new(config: Config) -> Self {
        Self { config }
    }
}

#[async_trait::async_trait]
impl Adapter for PingAdapter {
    async fn run(self: Box<Self>, ctx: AdapterContext) {
        let ctx = std::sync::Arc::new(ctx);
        let config = std::sync::Arc::new(self.config);
        ctx.report(Health::Running);
        let mut in_flight = JoinSet::new();
        loop {
            let now = Utc::now();
            let Some(next) = config.next_tick(now) else {
                ctx.report(Health::failing("InvalidSchedule", "the schedule never fires again"));
                ctx.stop.cancelled().await;
                break;
            };
            let jitter = rand::rng().random_range(0..=MAX_JITTER_MS);
            let wait = (next - now).to_std().unwrap_or_default() + std::time::Duration::from_millis(jitter);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = ctx.stop.cancelled() => break,
            }
            // Reap finished sends so the set does not grow.
            while in_flight.try_join_next().is_some() {}
            let (ctx, config) = (ctx.clone(), config.clone());
            in_flight.spawn(async move {
                ctx.emitter.metrics().received.inc();
                let event = event(&config, uuid::Uuid::new_v4().to_string(), Utc::now());
                let id = event.id().to_string();
                if let Err(e) = ctx.emitter.emit(event, None).await {
                    tracing::warn!(source = ctx.emitter.label(), event_id = %id, error = %e, "ping not delivered");
                }
            });
        }
        while in_flight.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use cloudevents::AttributesReader;

    use super::*;

    fn source(spec: &str) -> PingSource {
        serde_yaml::from_str(&format!(
            "apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {{name: ticks, namespace: team}}\nspec:\n  sink: {{uri: 'http://x/'}}\n{spec}"
        ))
        .unwrap()
    }

    #[test]
    fn events_are_knatives_ping_events() {
        let time = DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z").unwrap().with_timezone(&Utc);
        let cases = [
            (
                "  schedule: '* * * * *'\n  contentType: application/json\n  data: '{\"a\": 1}'\n",
                Some("application/json"),
                Some(b"{\"a\": 1}".to_vec()),
            ),
            (
                "  schedule: '* * * * *'\n  contentType: application/octet-stream\n  dataBase64: 'AAEC'\n",
                Some("application/octet-stream"),
                Some(vec![0, 1, 2]),
            ),
            ("  schedule: '* * * * *'\n", None, None),
        ];
        for (spec, content_type, data) in cases {
            let config = Config::from_source(&source(spec)).unwrap();
            let e = event(&config, "id-1".into(), time);
            assert_eq!(e.ty(), "dev.knative.sources.ping");
            assert_eq!(e.source().to_string(), "/apis/v1/namespaces/team/pingsources/ticks");
            assert_eq!(e.id(), "id-1");
            assert_eq!(e.time(), Some(&time));
            assert_eq!(e.subject(), None);
            assert_eq!(e.datacontenttype(), content_type, "{spec}");
            let body = crate::convert::data_bytes(&e);
            assert_eq!(body, data, "{spec}");
        }
    }

    #[test]
    fn ticks_follow_the_schedule_in_its_zone() {
        let paris = Config::from_source(&source("  schedule: '0 12 * * *'\n  timezone: Europe/Paris\n")).unwrap();
        let now = DateTime::parse_from_rfc3339("2026-07-01T11:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(paris.next_tick(now).unwrap().to_rfc3339(), "2026-07-02T10:00:00+00:00");
        let prefixed = Config::from_source(&source("  schedule: 'CRON_TZ=Asia/Tokyo 0 9 * * *'\n")).unwrap();
        assert_eq!(prefixed.next_tick(now).unwrap().to_rfc3339(), "2026-07-02T00:00:00+00:00");
        let seconds = Config::from_source(&source("  schedule: '*/5 * * * * *'\n")).unwrap();
        assert_eq!(seconds.next_tick(now).unwrap().to_rfc3339(), "2026-07-01T11:00:05+00:00");
    }
}
