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
    let (written_tx, written) = mpsc::channel::<AccessLine>();
    let log = AccessLog::with_writer(4, move |line| {
        let _ = stuck.recv();
        let _ = written_tx.send(line);
    });
    let started = Instant::now();
    for i in 0..100 {
        log.record(line(i));
    }
    assert!(started.elapsed() < Duration::from_secs(1), "recording never waits for the writer");
    // One line is in the writer's hands, four wait in the queue; the rest were dropped and counted.
    let dropped = log.dropped();
    assert!((95..=96).contains(&dropped), "{dropped} dropped");
    // Once the writer moves again, the queued lines come out in order, unchanged.
    drop(release);
    let kept = usize::try_from(100 - dropped).unwrap_or(0);
    let first: Vec<String> = written.iter().take(kept).map(|l| l.path).collect();
    assert_eq!(first, (0..kept).map(|i| format!("/item/{i}")).collect::<Vec<_>>(), "the first lines, in order");
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
