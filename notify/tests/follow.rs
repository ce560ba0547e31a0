//! Routes made through the API on one replica reach the others: a notifier following a shared store
//! picks up routes created, changed and deleted there, and leaves out a stored route that no longer
//! validates.

use std::sync::Arc;
use std::time::Duration;

use leannodes_config::file::{NotificationKind, NotificationSpec, WebhookFormat};
use leannodes_notify::{Notifier, Options, Source};
use leannodes_store::{NotificationRecord, SqliteStore, Store};

fn record(name: &str, format: Option<WebhookFormat>, url: &str) -> NotificationRecord {
    NotificationRecord {
        spec: NotificationSpec {
            name: name.into(),
            kind: NotificationKind::Webhook,
            format,
            url: url.into(),
            headers: Default::default(),
            routing_key: None,
            events: None,
            flows: None,
        },
        updated_by: "user:u1".into(),
    }
}

async fn eventually(notifier: &Notifier, what: &str, check: impl Fn(&[leannodes_notify::RouteView]) -> bool) {
    for _ in 0..300 {
        if check(&notifier.routes()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: {:?}", notifier.routes().iter().map(|r| (&r.name, r.format)).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_notifier_follows_the_routes_of_a_shared_store() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.expect("store"));
    let (_bus, notices) = tokio::sync::broadcast::channel(8);
    let notifier = Notifier::start(&[], notices, Options::default());
    notifier.follow_store(store.clone(), Duration::from_millis(20));
    let records = store.records::<NotificationRecord>();

    records.create(&record("made-elsewhere", None, "https://hooks.example.com/a")).await.expect("create");
    eventually(&notifier, "created", |r| r.len() == 1 && r[0].name == "made-elsewhere" && r[0].source == Source::Api).await;

    let stored = records.get("made-elsewhere").await.expect("get").expect("stored");
    records
        .update(&record("made-elsewhere", Some(WebhookFormat::Datadog), "https://hooks.example.com/a"), stored.version)
        .await
        .expect("update");
    eventually(&notifier, "changed", |r| r.len() == 1 && r[0].format == WebhookFormat::Datadog).await;

    // A stored route that does not validate (not a URL) is left out; the good one stays.
    records.create(&record("broken", None, "not a url")).await.expect("create");
    records.delete("made-elsewhere", None).await.expect("delete");
    eventually(&notifier, "deleted, broken left out", <[_]>::is_empty).await;
}
