use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;

fn line(i: u16) -> AccessLine {
    AccessLine {
        flow: "shop".into(),
        method: http::Method::GET,
        host: "shop.test".into(),
        path: format!("/item/{i}"),
        status: 200,
        outcome: "proxied",
        held_ms: 0,
        upstream: None,
        error: None,
    }
}

#[test]
fn a_line_the_writer_cannot_take_is_dropped_and_counted_without_blocking() {
    // A writer stuck on its first line (a blocked stderr pipe).
    let (release, stuck) = mpsc::channel::<()>();
    let (taken_tx, taken) = mpsc::channel::<()>();
    let (written_tx, written) = mpsc::channel::<AccessLine>();
    let log = AccessLog::with_writer(4, move |line| {
        let _ = taken_tx.send(());
        let _ = stuck.recv();
        let _ = written_tx.send(line);
    });
    log.record(line(0));
    taken.recv_timeout(Duration::from_secs(10)).expect("the writer takes the first line");
    let started = Instant::now();
    for i in 1..100 {
        log.record(line(i));
    }
    assert!(started.elapsed() < Duration::from_secs(1), "recording never waits for the writer");
    // One line is in the writer's hands, four wait in the queue; the rest were dropped and counted.
    assert_eq!(log.dropped(), 95);
    // Once the writer moves again, the queued lines come out in order, unchanged.
    drop(release);
    let first: Vec<String> = written.iter().take(5).map(|l| l.path).collect();
    assert_eq!(first, (0..5).map(|i| format!("/item/{i}")).collect::<Vec<_>>(), "the first lines, in order");
}

#[test]
fn every_line_is_written_when_the_writer_keeps_up() {
    let (tx, rx) = mpsc::channel::<AccessLine>();
    let log = AccessLog::with_writer(QUEUE, move |line| {
        let _ = tx.send(line);
    });
    for i in 0..1000 {
        log.record(line(i));
    }
    assert!(log.flush(Duration::from_secs(10)), "the writer empties the queue");
    let got: Vec<AccessLine> = rx.try_iter().collect();
    assert_eq!(got.len(), 1000, "every line was written before flush returned");
    assert_eq!(got[999], line(999));
    assert_eq!(log.dropped(), 0);
}

/// Lines with every kind of field: quotes and non-ASCII in strings, no upstream, an error.
fn varied() -> Vec<AccessLine> {
    vec![
        line(7),
        AccessLine {
            flow: "-".into(),
            method: http::Method::from_bytes(b"PURGE").expect("method"),
            host: "Shop.Test:8443".into(),
            path: "/a\"b/é\\c".into(),
            status: 503,
            outcome: "cold_start_timeout",
            held_ms: 30_000,
            upstream: Some("[::1]:8080".parse().expect("addr")),
            error: Some("connect \"refused\" (os error 111)\ttab".into()),
        },
    ]
}

/// A tracing writer that sends what it is given down a channel.
#[derive(Clone)]
struct Capture(mpsc::Sender<Vec<u8>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.send(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What tracing-subscriber, configured as the binary configures it, prints for `line.emit()`.
fn printed_by_tracing(line: &AccessLine, json: bool) -> String {
    let (tx, rx) = mpsc::channel();
    let writer = move || Capture(tx.clone());
    let builder = tracing_subscriber::fmt().with_writer(writer).with_ansi(false);
    let dispatch =
        if json { tracing::Dispatch::new(builder.json().flatten_event(true).finish()) } else { tracing::Dispatch::new(builder.finish()) };
    tracing::dispatcher::with_default(&dispatch, || line.emit());
    drop(dispatch);
    String::from_utf8(rx.try_iter().flatten().collect()).expect("utf-8")
}

/// `2026-11-30T10:00:36.123456Z`: the shape of tracing-subscriber's timestamps.
fn timestamp_shape(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect()
}

#[test]
fn text_lines_are_what_tracing_prints() {
    for line in varied() {
        let theirs = printed_by_tracing(&line, false);
        let mut ours = Vec::new();
        line.write_text(&mut ours, jiff::Timestamp::now());
        let ours = String::from_utf8(ours).expect("utf-8");
        let (their_time, their_rest) = theirs.split_at(27);
        let (our_time, our_rest) = ours.split_at(27);
        assert_eq!(our_rest, their_rest, "the line after the timestamp");
        assert_eq!(timestamp_shape(our_time), timestamp_shape(their_time));
        assert_eq!(timestamp_shape(our_time), "0000-00-00T00:00:00.000000Z");
    }
}

#[test]
fn json_lines_are_what_tracing_prints() {
    for line in varied() {
        let theirs = printed_by_tracing(&line, true);
        let mut ours = Vec::new();
        line.write_json(&mut ours, jiff::Timestamp::now());
        let ours = String::from_utf8(ours).expect("utf-8");
        // {"timestamp":"2026-11-30T10:00:36.123456Z", …
        let cut = r#"{"timestamp":""#.len() + 27;
        assert_eq!(ours[cut..], theirs[cut..], "the object after the timestamp");
        assert_eq!(timestamp_shape(&ours[..cut]), timestamp_shape(&theirs[..cut]));
        let parsed: serde_json::Value = serde_json::from_str(&ours).expect("one JSON object per line");
        assert_eq!(parsed["path"], line.path.as_str());
    }
}

#[test]
fn the_writer_flushes_once_per_batch_and_answers_flush_markers_after_the_write() {
    /// Counts lines, and sends the count at each flush.
    struct Counting(mpsc::Sender<usize>, usize);
    impl Sink for Counting {
        fn line(&mut self, _line: AccessLine) {
            self.1 += 1;
        }
        fn flush(&mut self) {
            let _ = self.0.send(self.1);
            self.1 = 0;
        }
    }
    let (tx, rx) = mpsc::channel();
    let log = AccessLog::with_writer(QUEUE, Counting(tx, 0));
    for i in 0..5000 {
        log.record(line(i));
    }
    assert!(log.flush(Duration::from_secs(10)));
    let batches: Vec<usize> = rx.try_iter().collect();
    assert_eq!(batches.iter().sum::<usize>(), 5000, "every line was flushed before flush() returned");
    assert!(batches.iter().all(|n| *n <= BATCH), "no batch is larger than {BATCH}: {batches:?}");
}
