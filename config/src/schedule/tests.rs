use super::*;

fn at(text: &str) -> Timestamp {
    text.parse().expect("timestamp")
}

fn tz(name: &str) -> TimeZone {
    TimeZone::get(name).expect("zone")
}

fn next(cron: &str, after: &str, zone: &str) -> String {
    Cron::parse(cron).expect("valid").next_after(at(after), &tz(zone)).expect("fires").to_string()
}

#[test]
fn fields_ranges_steps_lists_and_names() {
    assert_eq!(next("0 8 * * 1-5", "2026-11-27T12:00:00Z", "UTC"), "2026-11-30T08:00:00Z", "Friday noon → Monday 8:00");
    assert_eq!(next("*/15 * * * *", "2026-11-30T10:07:30Z", "UTC"), "2026-11-30T10:15:00Z");
    assert_eq!(next("5/20 * * * *", "2026-11-30T10:30:00Z", "UTC"), "2026-11-30T10:45:00Z");
    assert_eq!(next("0 9,17 * * *", "2026-11-30T09:00:00Z", "UTC"), "2026-11-30T17:00:00Z", "strictly after");
    assert_eq!(next("30 6 * JAN-MAR MON", "2026-11-30T10:00:00Z", "UTC"), "2027-01-04T06:30:00Z");
    assert_eq!(next("0 0 * * 7", "2026-11-30T10:00:00Z", "UTC"), "2026-12-06T00:00:00Z", "7 is Sunday");
    assert_eq!(next("@daily", "2026-11-30T10:00:00Z", "UTC"), "2026-12-01T00:00:00Z");
    assert_eq!(next("0 0 29 2 *", "2026-03-01T00:00:00Z", "UTC"), "2028-02-29T00:00:00Z", "leap day, two years on");
}

#[test]
fn both_day_fields_restricted_means_either() {
    // The 1st of the month or any Friday, as cron does.
    assert_eq!(next("0 0 1 * FRI", "2026-11-28T00:00:00Z", "UTC"), "2026-12-01T00:00:00Z");
    assert_eq!(next("0 0 1 * FRI", "2026-12-01T00:00:00Z", "UTC"), "2026-12-04T00:00:00Z");
}

#[test]
fn zones_and_daylight_saving() {
    // 8:00 in Berlin is 7:00 UTC in winter and 6:00 UTC in summer.
    assert_eq!(next("0 8 * * *", "2026-11-30T10:00:00Z", "Europe/Berlin"), "2026-12-01T07:00:00Z");
    assert_eq!(next("0 8 * * *", "2026-06-30T10:00:00Z", "Europe/Berlin"), "2026-07-01T06:00:00Z");
    // 2:30 does not exist on 29 March 2026 in Berlin: it fires at 3:30 local (01:30 UTC), once.
    assert_eq!(next("30 2 * * *", "2026-03-28T12:00:00Z", "Europe/Berlin"), "2026-03-29T01:30:00Z");
    // 2:30 happens twice on 25 October 2026: it fires at the first.
    assert_eq!(next("30 2 * * *", "2026-10-24T12:00:00Z", "Europe/Berlin"), "2026-10-25T00:30:00Z");
    assert_eq!(next("30 2 * * *", "2026-10-25T00:30:00Z", "Europe/Berlin"), "2026-10-26T01:30:00Z");
}

#[test]
fn mistakes_are_named() {
    let err = |text: &str| Cron::parse(text).expect_err(text).to_string();
    assert!(err("0 8 * *").contains("5 fields"), "{}", err("0 8 * *"));
    assert!(err("60 8 * * *").contains("minute: 60 is out of range 0–59"));
    assert!(err("0 8 * * 1-8").contains("day of week: 8 is out of range 0–7"));
    assert!(err("0 8 * FOO *").contains("month: `FOO` is not a number or a name (JAN"));
    assert!(err("0 8 * * 5-1").contains("runs backwards"));
    assert!(err("*/0 * * * *").contains("step `0`"));
    assert!(err("0 8 ,1 * *").contains("empty entry"));
    assert!(err("0 0 30 2 *").contains("never fires"));
    assert!(err("@fortnightly").contains("unknown macro"));
}

fn schedule(cron: &str, length: &str, ahead: &str) -> KeepWarm {
    KeepWarm {
        cron: Cron::parse(cron).expect("cron"),
        length: humantime::parse_duration(length).expect("length"),
        tz: TimeZone::UTC,
        tz_name: "UTC".into(),
        ahead: humantime::parse_duration(ahead).expect("ahead"),
    }
}

fn ms(text: &str) -> i64 {
    at(text).as_millisecond()
}

#[test]
fn windows_open_ahead_and_close_after_their_length() {
    let s = schedule("0 8 * * 1-5", "10h", "2m");
    // Monday 7:57: closed; the lead starts at 7:58.
    assert_eq!(s.window(ms("2026-11-30T07:57:00Z")), Window::Closed { next_ms: Some(ms("2026-11-30T07:58:00Z")) });
    assert_eq!(s.window(ms("2026-11-30T07:58:00Z")), Window::Open { until_ms: ms("2026-11-30T18:00:00Z") });
    assert_eq!(s.window(ms("2026-11-30T17:59:59Z")), Window::Open { until_ms: ms("2026-11-30T18:00:00Z") });
    assert_eq!(s.window(ms("2026-11-30T18:00:00Z")), Window::Closed { next_ms: Some(ms("2026-12-01T07:58:00Z")) });
    // Friday evening → Monday.
    assert_eq!(s.window(ms("2026-12-04T18:30:00Z")), Window::Closed { next_ms: Some(ms("2026-12-07T07:58:00Z")) });
}

#[test]
fn overlapping_windows_merge() {
    // Every hour for 90 minutes: always open once started.
    let s = schedule("0 * * * *", "90m", "1m");
    match s.window(ms("2026-11-30T10:30:00Z")) {
        Window::Open { until_ms } => assert!(until_ms > ms("2026-12-01T00:00:00Z"), "merged far ahead"),
        other => panic!("{other:?}"),
    }
    // Two schedules: the earliest next opening, the latest close.
    let morning = schedule("0 8 * * *", "1h", "1m");
    let evening = schedule("0 18 * * *", "1h", "1m");
    assert_eq!(
        combined_window(&[morning.clone(), evening.clone()], ms("2026-11-30T12:00:00Z")),
        Window::Closed { next_ms: Some(ms("2026-11-30T17:59:00Z")) }
    );
    assert_eq!(combined_window(&[morning, evening], ms("2026-11-30T08:30:00Z")), Window::Open { until_ms: ms("2026-11-30T09:00:00Z") });
}
