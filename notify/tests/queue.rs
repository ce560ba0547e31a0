//! A route whose endpoint never answers holds one notice in flight and `queue` waiting; the rest are
//! dropped and counted, so memory stays bounded however many notices arrive.

use std::sync::Arc;
use std::time::Duration;

use leannodes_config::file::{NotificationKind, WebhookFormat};
use leannodes_config::{NotificationRoute, Secret};
use leannodes_control::{Notice, NoticeKind};
use leannodes_notify::{Notifier, Options};

#[tokio::test]
async fn a_stalled_endpoint_drops_what_does_not_fit_its_queue() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (accepted, mut first) = tokio::sync::mpsc::channel(16);
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
            let _ = accepted.send(()).await;
        }
    });
    let route = Arc::new(NotificationRoute {
        name: "stalled".into(),
        kind: NotificationKind::Webhook,
        format: WebhookFormat::Generic,
        url: Secret::new(format!("http://{addr}/hook")),
        headers: vec![],
        routing_key: None,
        events: vec![],
        flows: vec![],
    });
    let (bus, notices) = tokio::sync::broadcast::channel(64);
    let options = Options { queue: 2, timeout: Duration::from_secs(60), ..Options::default() };
    let notifier = Notifier::start(&[route], notices, options);
    let notice = |i: usize| Notice::new(NoticeKind::FlowDrained, Some("shop"), format!("drain {i}"), String::new(), "r1");
    // The first is in flight (its connection accepted) before the other nine arrive.
    bus.send(notice(0)).expect("send");
    first.recv().await.expect("the first delivery connects");
    for i in 1..10 {
        bus.send(notice(i)).expect("send");
    }
    let mut status = notifier.routes()[0].status.clone();
    for _ in 0..500 {
        if status.dropped == 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        status = notifier.routes()[0].status.clone();
    }
    assert_eq!((status.dropped, status.queued, status.delivered, status.failed), (7, 2, 0, 0), "one in flight, two waiting");
    let mut metrics = String::new();
    notifier.render_metrics(&mut metrics);
    assert!(metrics.contains("leannodes_notifications_total{route=\"stalled\",result=\"dropped\"} 7"), "{metrics}");
    held.abort();
}
