//! The reload actor with every source at once: the config file (watched, and reloaded on request as
//! SIGHUP does), `Flow` resources in the Kubernetes API simulator (watched), and activations of
//! store-managed flows. Sixty changes race; every flow ends as its source last said, and every reload
//! asked for succeeds.

use std::sync::Arc;

use leannodes_config::{Config, FlowOrigin};
use leannodes_control::{Controller, ControllerOptions, FlowHandle, ReloadCause, Reloader, RouteInstaller, Sources};
use leannodes_drivers::flow_resources::FlowResources;
use leannodes_drivers::{Drivers, ExternalDriver, KubernetesDriver, ProcessDriver};
use leannodes_harness::assert_eventually;
use leannodes_kube_sim::{Sim, SimOptions};
use leannodes_store::{FlowDoc, FlowVersion, SqliteStore, Store};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_leannodes");

/// Installs nothing (the proxy is not part of this test).
struct NoRoutes;

#[async_trait::async_trait]
impl RouteInstaller for NoRoutes {
    async fn install(&self, _flows: &[Arc<FlowHandle>], _config: &Config) -> Result<(), String> {
        Ok(())
    }
}

fn file(minutes: u64) -> String {
    format!(
        "[server]\ndriver = \"kubernetes\"\nflows_from = [\"file\", \"crd\"]\nstore = \"sqlite://state.db\"\n\n[[flow]]\nname = \"filed\"\nhosts = [\"filed.test\"]\nupstream = \"web\"\nidle_after = \"{minutes}m\"\n\n  [[flow.node]]\n  name = \"web\"\n  kind = \"external\"\n  port = 9\n  ready = {{ tcp = \"127.0.0.1:9\" }}\n"
    )
}

fn tenant(minutes: u64) -> serde_json::Value {
    json!({
        "apiVersion": "leannodes.io/v1alpha1", "kind": "Flow",
        "metadata": {"name": "tenant", "namespace": "default"},
        "spec": {"hosts": ["tenant.test"], "upstream": "api", "idle_after": format!("{minutes}m"),
                 "node": [{"name": "api", "kind": "deployment", "ref": "api", "port": 8080}]},
    })
}

fn minutes(controller: &Controller, flow: &str) -> Option<u64> {
    controller.flow(flow).map(|f| f.spec.idle_after.as_secs() / 60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_racing_changes_from_every_source_end_as_each_source_last_said() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sim = Sim::start(listener, SimOptions { backend_bin: BIN.into() }).await.expect("sim");
    sim.seed(vec![tenant(1)]).expect("seed");
    let dir = leannodes_harness::workdir();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let kubeconfig = kube::config::Kubeconfig::read_from(&kubeconfig).expect("read kubeconfig");
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await.expect("config"),
    )
    .expect("client");

    let path = dir.path().join("leannodes.toml");
    std::fs::write(&path, file(1)).expect("write");
    let config = leannodes_config::load_file(&path).expect("valid");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("state.db")).await.expect("store"));
    let versions = 15;
    store
        .records::<FlowDoc>()
        .create(&FlowDoc { name: "stored".into(), active: None, latest: versions, created_by: "user:test".into(), created_ms: 0 })
        .await
        .expect("flow");
    for number in 1..=versions {
        let spec = json!({ "hosts": ["stored.test"], "upstream": "web", "idle_after": format!("{number}m"),
                           "node": [{ "name": "web", "kind": "external", "port": 9, "ready": { "tcp": "127.0.0.1:9" } }] });
        let version = FlowVersion {
            flow: "stored".into(),
            number,
            spec,
            author: "user:test".into(),
            message: String::new(),
            note: String::new(),
            base: None,
            created_ms: 0,
        };
        store.records::<FlowVersion>().create(&version).await.expect("version");
    }
    let kubernetes: Arc<dyn leannodes_drivers::Driver> = Arc::new(Arc::new(KubernetesDriver::start(client.clone()).await));
    let drivers = Drivers::new(Arc::new(ProcessDriver::default()), Arc::new(ExternalDriver), Some(kubernetes));
    let controller = Arc::new(Controller::start(&config, drivers, store, ControllerOptions::default()).await.expect("controller"));
    let resources = FlowResources::new(client);
    let reloader = Reloader::start(controller.clone(), Sources { file: path.clone(), resources: Some(resources) }, Arc::new(NoRoutes));
    assert_eventually!(minutes(&controller, "tenant") == Some(1), "the resource is applied once listed");

    let last = Arc::new(tokio::sync::Mutex::new((1u64, None::<u64>, 1u64)));
    let http = reqwest::Client::builder().no_proxy().build().expect("client");
    let flows_url = format!("http://{}/apis/leannodes.io/v1alpha1/namespaces/default/flows/tenant", sim.addr);
    let mut tasks = Vec::new();
    for i in 0..60u64 {
        let (reloader, last, path, http, url) = (reloader.clone(), last.clone(), path.clone(), http.clone(), flows_url.clone());
        tasks.push(tokio::spawn(async move {
            let mut sent = last.lock().await;
            match i % 3 {
                0 => {
                    let m = 2 + i;
                    std::fs::write(&path, file(m)).expect("write");
                    let answer = reloader.reload(if i % 2 == 0 { ReloadCause::File } else { ReloadCause::Signal });
                    sent.0 = m;
                    drop(sent);
                    assert!(answer.await.ok);
                }
                1 => {
                    let number = i / 4 + 1;
                    let answer = reloader.activate("stored", number);
                    sent.1 = Some(number);
                    drop(sent);
                    assert!(answer.await.expect("activated").ok);
                }
                _ => {
                    let m = 2 + i;
                    let patch = json!({ "spec": { "idle_after": format!("{m}m") } });
                    let response = http
                        .patch(&url)
                        .header("content-type", "application/merge-patch+json")
                        .body(patch.to_string())
                        .send()
                        .await
                        .expect("patch the Flow resource");
                    assert!(response.status().is_success(), "{}", response.text().await.unwrap_or_default());
                    sent.2 = m;
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let (file_minutes, number, tenant_minutes) = *last.lock().await;
    assert_eq!(minutes(&controller, "filed"), Some(file_minutes), "the file as last written");
    let stored = controller.flow("stored").expect("stored");
    assert_eq!(stored.spec.origin, FlowOrigin::Store { version: number.expect("activated") }, "the version last activated");
    // The resource watch delivers its last change a moment after the last write.
    assert_eventually!(minutes(&controller, "tenant") == Some(tenant_minutes), "the Flow resource as last written");
    assert!(reloader.status().ok, "{:?}", reloader.status());
}
