//! Cron schedules as PingSource accepts them (PING-01), parsed by the `croner` crate set up as
//! Knative's robfig/cron v3 with `SecondOptional | Descriptor`: five fields (minute hour
//! day-of-month month day-of-week) or six with a leading seconds field, `*`/`?`, lists,
//! ranges, steps (`5/10` too), month and weekday names, the `@yearly`…`@hourly` descriptors
//! (not `@every`), and an optional `CRON_TZ=<zone>` or `TZ=<zone>` prefix. Zones are IANA names
//! looked up in `chrono-tz`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeZone};
use croner::parser::{CronParser, Seconds, Year};

/// A parsed cron schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronSchedule {
    /// The schedule without its zone prefix.
    pub cron: croner::Cron,
    /// The `CRON_TZ=`/`TZ=` zone given in the schedule text, if any.
    pub timezone: Option<String>,
}

/// Why a schedule does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronError(pub String);

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CronError {}

/// The IANA time zone `name`.
pub fn time_zone(name: &str) -> Result<chrono_tz::Tz, CronError> {
    chrono_tz::Tz::from_str(name).map_err(|_| CronError(format!("provided bad location {name}: unknown time zone")))
}

impl CronSchedule {
    /// Parses a schedule. The zone of a `CRON_TZ=` prefix is returned unchecked; callers check
    /// it with [`time_zone`].
    pub fn parse(text: &str) -> Result<CronSchedule, CronError> {
        let mut spec = text.trim();
        if spec.is_empty() {
            return Err(CronError("empty spec string".into()));
        }
        let mut timezone = None;
        if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
            let (tz, rest) = spec.split_once(' ').unwrap_or((spec, ""));
            timezone = Some(tz.split_once('=').map_or("", |(_, z)| z).to_string());
            spec = rest.trim();
        }
        if let Some(desc) = spec.strip_prefix('@') {
            if desc.starts_with("every") {
                return Err(CronError("unsupported descriptor @every".into()));
            }
            if !matches!(desc, "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly") {
                return Err(CronError(format!("unrecognized descriptor: @{desc}")));
            }
        } else {
            let fields = spec.split_whitespace().count();
            if !(5..=6).contains(&fields) {
                return Err(CronError(format!("expected 5 to 6 fields, found {fields}: [{spec}]")));
            }
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .sloppy_ranges(true)
            .build()
            .parse(spec)
            .map_err(|e| CronError(e.to_string()))?;
        Ok(CronSchedule { cron, timezone })
    }

    /// The first time strictly after `after` that the schedule fires, in `after`'s zone.
    pub fn next_after<Z: TimeZone>(&self, after: &DateTime<Z>) -> Option<DateTime<Z>>
    where
        DateTime<Z>: croner::CronDateTime,
    {
        self.cron.find_next_occurrence(after, false).ok()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn next(schedule: &str, after: &str) -> String {
        let s = CronSchedule::parse(schedule).unwrap();
        let t = DateTime::parse_from_rfc3339(after).unwrap().with_timezone(&Utc);
        s.next_after(&t).unwrap().to_rfc3339()
    }

    #[test]
    fn parses_and_fires() {
        assert_eq!(next("* * * * *", "2026-01-01T00:00:00Z"), "2026-01-01T00:01:00+00:00");
        assert_eq!(next("*/2 * * * *", "2026-01-01T00:01:30Z"), "2026-01-01T00:02:00+00:00");
        assert_eq!(next("*/10 * * * * *", "2026-01-01T00:00:01Z"), "2026-01-01T00:00:10+00:00");
        assert_eq!(next("5/10 * * * *", "2026-01-01T00:06:00Z"), "2026-01-01T00:15:00+00:00");
        // 2026-02-15 is a Sunday: the next weekday 09:00 in Q1 is Monday the 16th.
        assert_eq!(next("0 9 * JAN-MAR mon-fri", "2026-02-15T10:00:00Z"), "2026-02-16T09:00:00+00:00");
        assert_eq!(next("@hourly", "2026-01-01T07:30:00Z"), "2026-01-01T08:00:00+00:00");
        assert_eq!(next("0 0 ? * *", "2026-01-01T07:30:00Z"), "2026-01-02T00:00:00+00:00");
        let s = CronSchedule::parse("CRON_TZ=Europe/Paris 0 12 * * *").unwrap();
        assert_eq!(s.timezone.as_deref(), Some("Europe/Paris"));
    }

    #[test]
    fn fires_in_the_zone_given() {
        let s = CronSchedule::parse("0 12 * * *").unwrap();
        let paris = time_zone("Europe/Paris").unwrap();
        let after = paris.with_ymd_and_hms(2026, 7, 1, 13, 0, 0).unwrap();
        // Noon in Paris in summer is 10:00 UTC.
        assert_eq!(
            s.next_after(&after).unwrap().with_timezone(&Utc).to_rfc3339(),
            "2026-07-02T10:00:00+00:00"
        );
        assert!(time_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "* * * *",
            "* * * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "*/0 * * * *",
            "5-1 * * * *",
            "@every 1m",
            "@often",
            "x * * * *",
        ] {
            assert!(CronSchedule::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(CronSchedule::parse("@every 10s").unwrap_err().0, "unsupported descriptor @every");
    }
}
