//! Keep-warm schedules: a five-field cron expression, a length and a time zone. A flow is woken `ahead`
//! of each window and held awake through it.
//!
//! The cron dialect is the common one (Vixie cron): `minute hour day-of-month month day-of-week`, each a
//! `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma-separated list of those; months and
//! weekdays also by name (`JAN`, `MON`); weekday `7` is Sunday like `0`; the macros `@hourly`, `@daily`,
//! `@weekly`, `@monthly` and `@yearly`. When both day fields are restricted, a day matching either one
//! fires (as in cron). Times are civil times of the schedule's zone: a time a daylight-saving change
//! skips fires at the same offset after the change, a repeated time fires once.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

#[cfg(test)]
mod tests;

/// How far ahead [`Cron::next_after`] looks: a little over four years, so `29 2` (29 February) fires.
const HORIZON_DAYS: u32 = 4 * 366 + 2;

/// A parsed cron expression.
#[derive(Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// The day-of-month field was `*` (then only the weekday field restricts days).
    any_day: bool,
    /// The day-of-week field was `*`.
    any_weekday: bool,
}

impl fmt::Debug for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cron({:?})", self.text)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a cron expression was refused: the message names the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CronError(String);

/// One of the five fields.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const FIELDS: [Field; 5] = [
    Field { name: "minute", min: 0, max: 59, names: &[] },
    Field { name: "hour", min: 0, max: 23, names: &[] },
    Field { name: "day of month", min: 1, max: 31, names: &[] },
    Field { name: "month", min: 1, max: 12, names: &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"] },
    Field { name: "day of week", min: 0, max: 7, names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] },
];

impl Field {
    fn value(&self, text: &str) -> Result<u32, CronError> {
        if let Some(i) = self.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Ok(self.min + u32::try_from(i).unwrap_or(0));
        }
        let n: u32 = text.parse().map_err(|_| {
            let names = if self.names.is_empty() { String::new() } else { format!(" or a name ({})", self.names.join(", ")) };
            CronError(format!("{}: `{text}` is not a number{names}", self.name))
        })?;
        if n < self.min || n > self.max {
            return Err(CronError(format!("{}: {n} is out of range {}–{}", self.name, self.min, self.max)));
        }
        Ok(n)
    }

    /// The set of values `text` selects, as a bit mask.
    fn parse(&self, text: &str) -> Result<u64, CronError> {
        let mut mask = 0u64;
        for part in text.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => {
                    let step: u32 = s
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| CronError(format!("{}: step `{s}` in `{part}` is not a positive number", self.name)))?;
                    (r, step)
                }
                None => (part, 1),
            };
            let (from, to) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(a)?, self.value(b)?);
                if a > b {
                    return Err(CronError(format!("{}: range `{range}` runs backwards; write the smaller value first", self.name)));
                }
                (a, b)
            } else if range.is_empty() {
                return Err(CronError(format!("{}: empty entry in `{text}`", self.name)));
            } else {
                let a = self.value(range)?;
                // `5/15` means from 5 to the end in steps of 15.
                (a, if step > 1 { self.max } else { a })
            };
            let mut v = from;
            while v <= to {
                mask |= 1 << v;
                v += step;
            }
        }
        Ok(mask)
    }
}

impl Cron {
    /// Parses a five-field expression or a macro.
    pub fn parse(text: &str) -> Result<Cron, CronError> {
        let expanded = match text.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            m if m.starts_with('@') => {
                return Err(CronError(format!("unknown macro `{m}`: use @hourly, @daily, @weekly, @monthly or @yearly")));
            }
            other => other,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(CronError(format!(
                "a cron expression has 5 fields (minute hour day-of-month month day-of-week), this one has {}",
                parts.len()
            )));
        }
        let mut masks = [0u64; 5];
        for (i, (field, part)) in FIELDS.iter().zip(&parts).enumerate() {
            masks[i] = field.parse(part)?;
        }
        // Weekday 7 is Sunday.
        let weekdays = (masks[4] | (masks[4] >> 7)) & 0x7f;
        let cron = Cron {
            text: text.trim().to_string(),
            minutes: masks[0],
            hours: u32::try_from(masks[1]).unwrap_or(0),
            days: u32::try_from(masks[2]).unwrap_or(0),
            months: u16::try_from(masks[3]).unwrap_or(0),
            weekdays: u8::try_from(weekdays).unwrap_or(0),
            any_day: parts[2].starts_with('*'),
            any_weekday: parts[4].starts_with('*'),
        };
        let epoch = Timestamp::UNIX_EPOCH;
        if cron.next_after(epoch, &TimeZone::UTC).is_none() {
            return Err(CronError(format!("`{}` never fires: no month has that day", cron.text)));
        }
        Ok(cron)
    }

    fn day_matches(&self, date: Date) -> bool {
        let day = self.days & (1 << date.day()) != 0;
        let weekday = self.weekdays & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        match (self.any_day, self.any_weekday) {
            (true, true) => true,
            (true, false) => weekday,
            (false, true) => day,
            (false, false) => day || weekday,
        }
    }

    /// The first time after `after` (strictly) this expression fires in `tz`, if it fires within the
    /// next four years.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let local = after.to_zoned(tz.clone()).datetime();
        let mut date = local.date();
        let (mut from_hour, mut from_minute) = (local.hour(), local.minute());
        for _ in 0..HORIZON_DAYS {
            if self.months & (1 << date.month()) != 0 && self.day_matches(date) {
                for hour in from_hour..24 {
                    if self.hours & (1 << hour) == 0 {
                        continue;
                    }
                    let first = if hour == from_hour { from_minute } else { 0 };
                    for minute in first..60 {
                        if self.minutes & (1 << minute) == 0 {
                            continue;
                        }
                        let at = date.at(hour, minute, 0, 0).to_zoned(tz.clone()).ok()?.timestamp();
                        if at > after {
                            return Some(at);
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
            (from_hour, from_minute) = (0, 0);
        }
        None
    }
}

/// A validated `keep_warm` entry.
#[derive(Debug, Clone)]
pub struct KeepWarm {
    /// When windows start.
    pub cron: Cron,
    /// How long each window lasts.
    pub length: Duration,
    /// The zone the cron expression is read in.
    pub tz: TimeZone,
    /// The zone's name as written (`UTC` by default).
    pub tz_name: String,
    /// How long before a window the wake starts, so the flow is ready when it opens.
    pub ahead: Duration,
}

impl PartialEq for KeepWarm {
    fn eq(&self, other: &KeepWarm) -> bool {
        self.cron == other.cron && self.length == other.length && self.tz_name == other.tz_name && self.ahead == other.ahead
    }
}

/// Where a flow stands against its keep-warm schedules at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Inside a window (including the `ahead` lead) until this time (Unix milliseconds).
    Open {
        /// When the window closes.
        until_ms: i64,
    },
    /// Outside every window; the next opens (its `ahead` lead starts) at this time, if ever.
    Closed {
        /// When the next window's lead starts.
        next_ms: Option<i64>,
    },
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl KeepWarm {
    /// This schedule at `now_ms`: in a window (and until when, overlapping windows merged) or when the next
    /// one opens.
    pub fn window(&self, now_ms: i64) -> Window {
        let (length, ahead) = (ms(self.length), ms(self.ahead));
        let fire_after =
            |t: i64| Timestamp::from_millisecond(t).ok().and_then(|t| self.cron.next_after(t, &self.tz)).map(|t| t.as_millisecond());
        // The window containing now started at the first firing after `now - length`.
        let Some(start) = fire_after(now_ms.saturating_sub(length)) else { return Window::Closed { next_ms: None } };
        if start.saturating_sub(ahead) > now_ms {
            return Window::Closed { next_ms: Some(start - ahead) };
        }
        let mut until = start.saturating_add(length);
        // Windows whose lead starts before this one ends extend it; bounded for `* * * * *`.
        let mut last = start;
        for _ in 0..1000 {
            match fire_after(last) {
                Some(next) if next.saturating_sub(ahead) <= until => {
                    until = until.max(next.saturating_add(length));
                    last = next;
                }
                _ => break,
            }
        }
        Window::Open { until_ms: until }
    }
}

/// All of a flow's schedules at `now_ms`: open while any is, until the last of those closes; otherwise the
/// earliest next opening.
pub fn combined_window(schedules: &[KeepWarm], now_ms: i64) -> Window {
    let mut open: Option<i64> = None;
    let mut next: Option<i64> = None;
    for s in schedules {
        match s.window(now_ms) {
            Window::Open { until_ms } => open = Some(open.map_or(until_ms, |u| u.max(until_ms))),
            Window::Closed { next_ms: Some(n) } => next = Some(next.map_or(n, |m| m.min(n))),
            Window::Closed { next_ms: None } => {}
        }
    }
    match open {
        Some(until_ms) => Window::Open { until_ms },
        None => Window::Closed { next_ms: next },
    }
}
