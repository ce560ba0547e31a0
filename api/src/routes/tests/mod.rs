//! In-process tests of the router: a real controller and SQLite store, requests through `oneshot`.
//! The data plane is not part of these tests: [`NoTraffic`] reports no held request and no metrics, and
//! [`NoRoutes`] installs no route table (the end-to-end tests in `tests/` run the real proxy).

mod access;
mod auth;
mod errors;
mod flows;
mod lifecycle;
mod matrix;
mod users;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use leannodes_config::Config;
use leannodes_control::{Controller, ControllerOptions, FlowHandle, Reloader, RouteInstaller, Sources, TrafficView};
use leannodes_drivers::{Drivers, ProcessDriver};
use leannodes_store::Store;
use serde_json::Value;
use tower::ServiceExt as _;

use crate::accounts::{self, NewUser};
use crate::{Api, ApiParts, SuperAdmin};

/// The administrator every harness starts with.
pub(crate) const ADMIN: &str = "admin@example.com";
/// A password that meets the policy.
pub(crate) const PASSWORD: &str = "a long enough password";

/// No data plane.
pub(crate) struct NoTraffic;

impl TrafficView for NoTraffic {
    fn held(&self, _flow: &str) -> u64 {
        0
    }
    fn in_flight(&self) -> u64 {
        0
    }
    fn shutting_down(&self) -> bool {
        false
    }
    fn render_metrics(&self, _out: &mut String) {}
}

/// No route table.
pub(crate) struct NoRoutes;

#[async_trait::async_trait]
impl RouteInstaller for NoRoutes {
    async fn install(&self, _flows: &[Arc<FlowHandle>], _config: &Config) -> Result<(), String> {
        Ok(())
    }
}

/// Two flows, `shop` and `api`, whose nodes are external probes of a closed port (a wake starts and
/// never finishes; nothing runs).
pub(crate) const FLOWS: &str = r#"
[[flow]]
name = "shop"
hosts = ["shop.test"]
upstream = "web"
  [[flow.node]]
  name = "web"
  kind = "external"
  port = 9
  ready = { tcp = "127.0.0.1:9" }

[[flow]]
name = "api"
hosts = ["api.test", "*.api.test"]
paths = ["/v1"]
upstream = "backend"
  [[flow.node]]
  name = "backend"
  kind = "external"
  port = 9
  ready = { tcp = "127.0.0.1:9" }
"#;

/// A router over a real controller and store.
pub(crate) struct Harness {
    pub(crate) router: axum::Router,
    pub(crate) controller: Arc<Controller>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) admin: String,
    _dir: tempfile::TempDir,
}

/// An answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

impl Answer {
    /// The error code of an error answer.
    pub(crate) fn code(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }
}

impl Harness {
    /// A harness with `server_extra` in `[server]` and the two flows.
    pub(crate) async fn new(server_extra: &str) -> Harness {
        Harness::with(server_extra, FLOWS).await
    }

    /// A harness with `server_extra` in `[server]` and `flows`.
    pub(crate) async fn with(server_extra: &str, flows: &str) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("leannodes.toml");
        std::fs::write(&path, format!("[server]\nstore = \"sqlite://state.db\"\n{server_extra}\n{flows}")).expect("write config");
        let config = leannodes_config::load_file(&path).unwrap_or_else(|e| panic!("config: {e}"));
        let store = leannodes_store::open(&config.server.store).await.expect("store");
        let drivers = Drivers::local(ProcessDriver::default());
        let controller =
            Arc::new(Controller::start(&config, drivers, store.clone(), ControllerOptions::default()).await.expect("controller"));
        let reloader = Reloader::start(controller.clone(), Sources { file: path.clone(), resources: None }, Arc::new(NoRoutes));
        let parts = ApiParts {
            controller: controller.clone(),
            store: store.clone(),
            traffic: Arc::new(NoTraffic),
            reloader,
            kube: None,
            server: config.server.clone(),
            config_path: path,
            notifier: leannodes_notify::Notifier::start(&config.notifications, controller.notices().subscribe(), Default::default()),
        };
        let api = Api::start(parts, Some(SuperAdmin { email: ADMIN.into(), password: PASSWORD.into() })).await.expect("api");
        // With `mode = "none"` there is no user: no token either.
        let admin = accounts::issue_token(&*store, ADMIN, "tests", std::time::Duration::from_secs(3600)).await.unwrap_or_default();
        Harness { router: api.router(), controller, store, admin, _dir: dir }
    }

    /// Creates a user with these roles and returns a token of it.
    pub(crate) async fn user(&self, email: &str, roles: &[&str]) -> String {
        let new = NewUser {
            email: email.into(),
            password: Some(PASSWORD.into()),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..NewUser::default()
        };
        accounts::create_user(&*self.store, new).await.expect("create user");
        accounts::issue_token(&*self.store, email, "tests", std::time::Duration::from_secs(3600)).await.expect("token")
    }

    /// The id of the user with this address.
    pub(crate) async fn user_id(&self, email: &str) -> String {
        let login = self.store.records::<leannodes_store::Login>().get(&crate::auth::email_login(email)).await.expect("read");
        login.expect("user exists").value.user
    }

    /// Sends a request (a bearer token when given, a JSON body when given).
    pub(crate) async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request.header("content-type", "application/json").body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        self.send(request.expect("request")).await
    }

    /// Sends a prepared request.
    pub(crate) async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024).await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Answer { status, headers, body }
    }

    /// The status (and the error code, when there is none) without reading a streaming body.
    pub(crate) async fn status_only(&self, method: Method, path: &str, token: Option<&str>) -> (StatusCode, String) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = self.router.clone().oneshot(request.body(Body::empty()).expect("request")).await.expect("infallible");
        let status = response.status();
        if status.is_success() {
            return (status, String::new());
        }
        let bytes = axum::body::to_bytes(response.into_body(), 1024 * 1024).await.expect("body");
        let body: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        (status, body["error"].as_str().unwrap_or_default().to_string())
    }

    /// GET with a token.
    pub(crate) async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// POST with a token and a body.
    pub(crate) async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// The audit records (oldest first).
    pub(crate) async fn audit(&self) -> Vec<leannodes_store::AuditRecord> {
        self.store.audit(&leannodes_store::AuditQuery::chain(), &leannodes_store::Page::first(500)).await.expect("audit").items
    }
}
