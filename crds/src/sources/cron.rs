//! Cron schedules as PingSource accepts them (PING-01): five fields (minute hour
//! day-of-month month day-of-week) or six with a leading seconds field, `*`/`?`, lists,
//! ranges, steps, month and weekday names, the `@yearly`…`@hourly` descriptors (not `@every`),
//! and an optional `CRON_TZ=<zone>` or `TZ=<zone>` prefix — the rules of robfig/cron v3 with
//! `SecondOptional | Descriptor`, which Knative uses.

use std::fmt;

/// A parsed cron schedule: one bit per allowed value of each field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronSchedule {
    /// Seconds 0..=59 (bit n = second n); `1` (second 0) for five-field schedules.
    pub seconds: u64,
    /// Minutes 0..=59.
    pub minutes: u64,
    /// Hours 0..=23.
    pub hours: u64,
    /// Days of the month 1..=31.
    pub days_of_month: u64,
    /// Months 1..=12.
    pub months: u64,
    /// Days of the week 0..=6 (Sunday = 0).
    pub days_of_week: u64,
    /// True when the day-of-month field was `*` or `?` (then only day-of-week restricts days).
    pub dom_any: bool,
    /// True when the day-of-week field was `*` or `?` (then only day-of-month restricts days).
    pub dow_any: bool,
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

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const SECONDS: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "", "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

fn all_bits(b: &Bounds) -> u64 {
    (b.min..=b.max).fold(0, |acc, v| acc | (1 << v))
}

fn parse_value(text: &str, b: &Bounds) -> Result<u32, CronError> {
    let lower = text.to_ascii_lowercase();
    if let Some(pos) = b.names.iter().position(|n| !n.is_empty() && *n == lower) {
        return Ok(pos as u32);
    }
    text.parse::<u32>()
        .map_err(|_| CronError(format!("failed to parse int from {text}")))
}

fn parse_range(expr: &str, b: &Bounds) -> Result<(u64, bool), CronError> {
    let (range, step) = match expr.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (expr, None),
    };
    if step.is_some_and(|s| s.contains('/')) {
        return Err(CronError(format!("too many slashes: {expr}")));
    }
    let any = range == "*" || range == "?";
    let (start, end) = if any {
        (b.min, b.max)
    } else {
        match range.split_once('-') {
            Some((lo, hi)) => {
                if hi.contains('-') {
                    return Err(CronError(format!("too many hyphens: {expr}")));
                }
                (parse_value(lo, b)?, parse_value(hi, b)?)
            }
            None => {
                let v = parse_value(range, b)?;
                (v, if step.is_some() { b.max } else { v })
            }
        }
    };
    let step = match step {
        None => 1,
        Some(s) => {
            let n: u32 = s.parse().map_err(|_| CronError(format!("failed to parse int from {s}")))?;
            if n == 0 {
                return Err(CronError(format!("step of range should be a positive number: {expr}")));
            }
            n
        }
    };
    if start < b.min {
        return Err(CronError(format!("beginning of range ({start}) below minimum ({}): {expr}", b.min)));
    }
    if end > b.max {
        return Err(CronError(format!("end of range ({end}) above maximum ({}): {expr}", b.max)));
    }
    if start > end {
        return Err(CronError(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        )));
    }
    let bits = (start..=end).step_by(step as usize).fold(0u64, |acc, v| acc | (1 << v));
    Ok((bits, any && step == 1))
}

fn parse_field(field: &str, b: &Bounds) -> Result<(u64, bool), CronError> {
    let mut bits = 0;
    let mut any = false;
    for part in field.split(',') {
        let (b2, a) = parse_range(part, b)?;
        bits |= b2;
        any |= a;
    }
    Ok((bits, any))
}

impl CronSchedule {
    /// Parses a schedule. The zone of a `CRON_TZ=` prefix is returned unchecked; callers check
    /// it against the time-zone database.
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
            let (minutes, hours, dom, months, dow) = match desc {
                "yearly" | "annually" => (1, 1, 1 << 1, 1 << 1, all_bits(&DOW)),
                "monthly" => (1, 1, 1 << 1, all_bits(&MONTHS), all_bits(&DOW)),
                "weekly" => (1, 1, all_bits(&DOM), all_bits(&MONTHS), 1),
                "daily" | "midnight" => (1, 1, all_bits(&DOM), all_bits(&MONTHS), all_bits(&DOW)),
                "hourly" => (1, all_bits(&HOURS), all_bits(&DOM), all_bits(&MONTHS), all_bits(&DOW)),
                d if d.starts_with("every") => return Err(CronError("unsupported descriptor @every".into())),
                _ => return Err(CronError(format!("unrecognized descriptor: @{desc}"))),
            };
            let weekly = desc == "weekly";
            return Ok(CronSchedule {
                seconds: 1,
                minutes,
                hours,
                days_of_month: dom,
                months,
                days_of_week: dow,
                dom_any: weekly,
                dow_any: !weekly,
                timezone,
            });
        }
        let fields: Vec<&str> = spec.split_whitespace().collect();
        let fields: Vec<&str> = match fields.len() {
            5 => std::iter::once("0").chain(fields).collect(),
            6 => fields,
            n => return Err(CronError(format!("expected 5 to 6 fields, found {n}: [{}]", fields.join(" ")))),
        };
        let (seconds, _) = parse_field(fields[0], &SECONDS)?;
        let (minutes, _) = parse_field(fields[1], &MINUTES)?;
        let (hours, _) = parse_field(fields[2], &HOURS)?;
        let (days_of_month, dom_any) = parse_field(fields[3], &DOM)?;
        let (months, _) = parse_field(fields[4], &MONTHS)?;
        let (days_of_week, dow_any) = parse_field(fields[5], &DOW)?;
        Ok(CronSchedule {
            seconds,
            minutes,
            hours,
            days_of_month,
            months,
            days_of_week,
            dom_any,
            dow_any,
            timezone,
        })
    }

    /// True when the schedule fires at this wall-clock time (`weekday` 0 = Sunday), with
    /// cron's rule that day-of-month and day-of-week are OR-ed when both are restricted.
    pub fn matches(&self, second: u32, minute: u32, hour: u32, day: u32, month: u32, weekday: u32) -> bool {
        let bit = |set: u64, v: u32| v < 64 && set & (1 << v) != 0;
        let dom = bit(self.days_of_month, day);
        let dow = bit(self.days_of_week, weekday);
        let day_ok = if self.dom_any || self.dow_any { dom && dow } else { dom || dow };
        bit(self.seconds, second) && bit(self.minutes, minute) && bit(self.hours, hour) && bit(self.months, month) && day_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let every_minute = CronSchedule::parse("* * * * *").unwrap();
        assert!(every_minute.matches(0, 5, 3, 1, 1, 0));
        assert!(!every_minute.matches(1, 5, 3, 1, 1, 0));
        let s = CronSchedule::parse("*/2 * * * *").unwrap();
        assert!(s.matches(0, 4, 0, 1, 1, 1) && !s.matches(0, 5, 0, 1, 1, 1));
        let s = CronSchedule::parse("*/10 * * * * *").unwrap();
        assert!(s.matches(20, 0, 0, 1, 1, 1));
        let s = CronSchedule::parse("0 9 * JAN-MAR mon-fri").unwrap();
        assert!(s.matches(0, 0, 9, 15, 2, 3) && !s.matches(0, 0, 9, 15, 2, 0));
        let s = CronSchedule::parse("CRON_TZ=Europe/Paris 0 12 * * *").unwrap();
        assert_eq!(s.timezone.as_deref(), Some("Europe/Paris"));
        assert!(CronSchedule::parse("@hourly").unwrap().matches(0, 0, 7, 3, 4, 2));
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
