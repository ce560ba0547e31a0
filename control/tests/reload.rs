//! The reload actor: requests from every source that can run here (file changes, SIGHUP, activations of
//! store-managed flows) are applied strictly in the order they were sent, so fifty of them racing end
//! in the state last sent; and an activation that would break validation changes nothing.

use std::sync::Arc;

use leannodes_config::{Config, FlowOrigin};
use leannodes_control::{ActivateError, Controller, ControllerOptions, FlowHandle, ReloadCause, Reloader, RouteInstaller, Sources};
use leannodes_drivers::{Drivers, ProcessDriver};
use leannodes_store::{FlowDoc, FlowVersion, SqliteStore, Store};
use parking_lot::Mutex;

/// Records what was installed, in order.
#[derive(Default)]
struct Recorder {
    installed: Mutex<Vec<(u64, Option<u64>)>>,
}

#[async_trait::async_trait]
impl RouteInstaller for Recorder {
    async fn install(&self, flows: &[Arc<FlowHandle>], _config: &Config) -> Result<(), String> {
        let filed = flows.iter().find(|f| f.name() == "filed").map_or(0, |f| f.spec.idle_after.as_secs() / 60);
        let stored = flows.iter().find_map(|f| match f.spec.origin {
            FlowOrigin::Store { version } => Some(version),
            _ => None,
        });
        self.installed.lock().push((filed, stored));
        Ok(())
    }
}

/// The file: one flow whose idle window is `minutes`.
fn file(minutes: u64) -> String {
    format!(
        "[server]\nstore = \"sqlite://state.db\"\n\n[[flow]]\nname = \"filed\"\nhosts = [\"filed.test\"]\nupstream = \"web\"\nidle_after = \"{minutes}m\"\n\n  [[flow.node]]\n  name = \"web\"\n  kind = \"external\"\n  port = 9\n  ready = {{ tcp = \"127.0.0.1:9\" }}\n"
    )
}

/// Version `number` of the store-managed flow `stored` (each one a different idle window), or one that
/// takes the file's host when `clash`.
fn version(number: u64, clash: bool) -> FlowVersion {
    let host = if clash { "filed.test" } else { "stored.test" };
    FlowVersion {
        flow: "stored".into(),
        number,
        spec: serde_json::json!({
            "hosts": [host],
            "upstream": "web",
            "idle_after": format!("{number}m"),
            "node": [{ "name": "web", "kind": "external", "port": 9, "ready": { "tcp": "127.0.0.1:9" } }],
        }),
        author: "user:test".into(),
        message: format!("v{number}"),
        note: String::new(),
        base: None,
        created_ms: 0,
    }
}

struct Setup {
    controller: Arc<Controller>,
    store: Arc<dyn Store>,
    reloader: Reloader,
    recorder: Arc<Recorder>,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn setup(versions: u64) -> Setup {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("leannodes.toml");
    std::fs::write(&path, file(1)).expect("write");
    let config = leannodes_config::load_file(&path).expect("valid");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("state.db")).await.expect("store"));
    store
        .records::<FlowDoc>()
        .create(&FlowDoc { name: "stored".into(), active: None, latest: versions, created_by: "user:test".into(), created_ms: 0 })
        .await
        .expect("flow");
    for number in 1..=versions {
        store.records::<FlowVersion>().create(&version(number, false)).await.expect("version");
    }
    let controller = Arc::new(
        Controller::start(&config, Drivers::local(ProcessDriver::default()), store.clone(), ControllerOptions::default())
            .await
            .expect("start"),
    );
    let recorder = Arc::new(Recorder::default());
    let reloader = Reloader::start(controller.clone(), Sources { file: path.clone(), resources: None }, recorder.clone());
    Setup { controller, store, reloader, recorder, path, _dir: dir }
}

/// The active version of `stored` as the store records it.
async fn active(store: &Arc<dyn Store>) -> Option<u64> {
    store.records::<FlowDoc>().get("stored").await.expect("read").and_then(|d| d.value.active)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_reloads_from_every_source_end_in_the_last_sent_state() {
    let s = setup(25).await;
    // What was sent last, by source; the lock makes "write the source, send the request" one step.
    let last = Arc::new(tokio::sync::Mutex::new((1u64, None::<u64>)));
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let (reloader, last, path) = (s.reloader.clone(), last.clone(), s.path.clone());
        tasks.push(tokio::spawn(async move {
            let mut sent = last.lock().await;
            if i % 2 == 0 {
                let minutes = 2 + i;
                std::fs::write(&path, file(minutes)).expect("write");
                let cause = if i % 4 == 0 { ReloadCause::File } else { ReloadCause::Signal };
                let answer = reloader.reload(cause);
                sent.0 = minutes;
                drop(sent);
                let status = answer.await;
                assert!(status.ok, "{status:?}");
            } else {
                let number = i / 2 + 1;
                let answer = reloader.activate("stored", number);
                sent.1 = Some(number);
                drop(sent);
                let status = answer.await.expect("activated");
                assert!(status.ok, "{status:?}");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let (minutes, number) = *last.lock().await;
    let filed = s.controller.flow("filed").expect("filed");
    assert_eq!(filed.spec.idle_after.as_secs(), minutes * 60, "the file as last written");
    let stored = s.controller.flow("stored").expect("stored");
    assert_eq!(stored.spec.origin, FlowOrigin::Store { version: number.expect("activated") }, "the version last activated");
    assert_eq!(stored.spec.idle_after.as_secs(), number.expect("activated") * 60);
    let installed = s.recorder.installed.lock().clone();
    assert_eq!(installed.last(), Some(&(minutes, number)), "the routes installed last match");
    assert_eq!(active(&s.store).await, number, "the store records the same version");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activation_that_breaks_validation_changes_nothing() {
    let s = setup(1).await;
    s.reloader.activate("stored", 1).await.expect("v1");
    let before = s.recorder.installed.lock().len();
    s.store.records::<FlowVersion>().create(&version(2, true)).await.expect("v2");
    let refused = s.reloader.activate("stored", 2).await.expect_err("v2 takes the file's host");
    let ActivateError::Invalid { problems, number, .. } = refused else { panic!("{refused:?}") };
    assert_eq!(number, 2);
    assert!(problems.iter().any(|p| p.pointer.starts_with("/hosts")), "{problems:?}");
    assert_eq!(s.controller.flow("stored").expect("serving").spec.origin, FlowOrigin::Store { version: 1 });
    assert_eq!(s.recorder.installed.lock().len(), before, "nothing was installed");
    assert_eq!(active(&s.store).await, Some(1), "nor recorded");
    assert!(matches!(s.reloader.activate("stored", 7).await, Err(ActivateError::UnknownVersion { number: 7, .. })));
    assert!(matches!(s.reloader.activate("nope", 1).await, Err(ActivateError::UnknownFlow(_))));
}
