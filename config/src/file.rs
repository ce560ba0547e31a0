//! The external configuration format: what users write in TOML (and, later, in a `Flow` custom resource or
//! over the management API as JSON).
//!
//! These types mirror the file one to one and carry no validation beyond their shape; [`crate::validate`]
//! turns them into the internal [`crate::Config`]. The JSON Schema printed by `leannodes schema` is generated
//! from them, and the structural checks of `leannodes validate` (unknown keys, missing fields, wrong types)
//! run against that same schema, so the two can never disagree.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "LeanNodes configuration")]
pub struct ConfigFile {
    /// Listeners, store and platform settings of this LeanNodes instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerSection>,
    /// Settings every flow inherits unless it overrides them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<FlowSettings>,
    /// The flows: each binds hosts and paths to a DAG of nodes that is woken on demand.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flow: Vec<FlowSpec>,
    /// Notification routes: where notices about wakes, drains, reloads and leadership go.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notification: Vec<NotificationSpec>,
}

/// One `[[notification]]`: a destination and the events and flows it receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationSpec {
    /// Unique name of the route.
    pub name: String,
    /// `slack` (Block Kit), `teams` (Adaptive Card) or `webhook` (JSON; `format` picks the shape).
    pub kind: NotificationKind,
    /// For `webhook`: the payload shape. Default `generic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<WebhookFormat>,
    /// Where to POST, a secret: `"env:NAME"`, `"file:PATH"` or the URL. Never shown in the API or logs.
    pub url: String,
    /// Extra request headers; values are secrets like `url` (e.g. `{ Authorization = "env:HEC_TOKEN" }`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// PagerDuty's integration (routing) key, a secret. Required with `format = "pagerduty"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
    /// The events it receives. Default: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<NoticeKind>>,
    /// The flows it receives events of (events about no flow always pass). Default: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flows: Option<Vec<String>>,
}

/// What a notification route talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A Slack incoming webhook (Block Kit message).
    Slack,
    /// A Microsoft Teams workflow or incoming webhook (Adaptive Card).
    Teams,
    /// Any HTTP endpoint; `format` picks the payload.
    Webhook,
}

/// The payload shape of a `webhook` route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// LeanNodes' own JSON (also for n8n, Zapier, Workato, MuleSoft and your own routers).
    Generic,
    /// Google Chat incoming webhook.
    GoogleChat,
    /// Webex incoming webhook.
    Webex,
    /// Mattermost incoming webhook.
    Mattermost,
    /// Rocket.Chat incoming webhook.
    RocketChat,
    /// Zulip's Slack-compatible incoming webhook.
    Zulip,
    /// PagerDuty Events API v2.
    Pagerduty,
    /// Opsgenie Alert API.
    Opsgenie,
    /// Grafana OnCall formatted webhook.
    GrafanaOncall,
    /// ServiceNow Event Management.
    Servicenow,
    /// Jira Service Management alerts.
    JiraServiceManagement,
    /// Datadog Events API.
    Datadog,
    /// Splunk HTTP Event Collector.
    SplunkHec,
    /// New Relic Event API.
    NewRelic,
    /// Elasticsearch document (`_doc` endpoint).
    Elastic,
    /// Sumo Logic HTTP source.
    SumoLogic,
    /// n8n webhook node (the generic JSON).
    N8n,
    /// Zapier catch hook (the generic JSON).
    Zapier,
    /// Workato webhook (the generic JSON).
    Workato,
    /// MuleSoft HTTP listener (the generic JSON).
    Mulesoft,
}

/// The notification event catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A flow began waking.
    WakeStarted,
    /// A flow is awake.
    WakeSucceeded,
    /// A flow's wake failed.
    WakeFailed,
    /// A flow was drained (idle or asked).
    FlowDrained,
    /// A flow was disabled.
    FlowDisabled,
    /// A flow was enabled again.
    FlowEnabled,
    /// Requests to a flow were refused: its hold queue was full.
    HoldQueueFull,
    /// A configuration change was refused; the previous configuration keeps serving.
    ReloadFailed,
    /// A replica took the drain leadership.
    LeaderChanged,
    /// Sent by "Send Test" only.
    Test,
}

impl NoticeKind {
    /// Every event.
    pub const ALL: [NoticeKind; 10] = [
        NoticeKind::WakeStarted,
        NoticeKind::WakeSucceeded,
        NoticeKind::WakeFailed,
        NoticeKind::FlowDrained,
        NoticeKind::FlowDisabled,
        NoticeKind::FlowEnabled,
        NoticeKind::HoldQueueFull,
        NoticeKind::ReloadFailed,
        NoticeKind::LeaderChanged,
        NoticeKind::Test,
    ];

    /// The event's name.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::WakeStarted => "wake_started",
            NoticeKind::WakeSucceeded => "wake_succeeded",
            NoticeKind::WakeFailed => "wake_failed",
            NoticeKind::FlowDrained => "flow_drained",
            NoticeKind::FlowDisabled => "flow_disabled",
            NoticeKind::FlowEnabled => "flow_enabled",
            NoticeKind::HoldQueueFull => "hold_queue_full",
            NoticeKind::ReloadFailed => "reload_failed",
            NoticeKind::LeaderChanged => "leader_changed",
            NoticeKind::Test => "test",
        }
    }
}

/// The `[server]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Proxy listeners (HTTP/1.1 and h2c), as `ip:port`. Default `["0.0.0.0:8080"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<Vec<String>>,
    /// Management API, dashboard, `/metrics`, `/check`, `/healthz`, `/readyz`, as `ip:port`.
    /// Default `"127.0.0.1:9090"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<String>,
    /// A listener that serves only forward-auth `/check` (and `/healthz`), as `ip:port`, for gateways
    /// that must not reach the admin API. Default: none (`/check` is on the admin listener only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_listen: Option<String>,
    /// Envoy `ext_authz` gRPC listener (`envoy.service.auth.v3.Authorization/Check`), as `ip:port`.
    /// Default: none (not served).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext_authz_listen: Option<String>,
    /// What `/check` and `ext_authz` answer for a host and path no flow serves: `"allow"` (default; the
    /// gateway proxies as usual) or `"deny"` (`404 no_flow`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_unmatched: Option<Unmatched>,
    /// Where runtime state and execution history are kept: `sqlite://PATH` (relative to the config file's
    /// folder), `postgres://…` or `dynamodb://TABLE?region=…&endpoint=…`. Default `"sqlite://leannodes.db"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Platform for Kubernetes node kinds. Process and external nodes work with either. Default `"process"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<DriverKind>,
    /// Unmatched hosts are passed through to this `host:port`; without it they get `404 no_flow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_upstream: Option<String>,
    /// Where flows come from: `"file"` (this file's `[[flow]]` tables) and/or `"crd"` (`Flow` resources in
    /// the cluster; needs `driver = "kubernetes"`). Default `["file"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flows_from: Option<Vec<FlowSource>>,
    /// Proxy worker threads. Default: one per CPU core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub threads: Option<u32>,
    /// On SIGTERM/SIGINT: held requests are answered `503` at once, in-flight requests get this long to
    /// finish (humantime). Default `"10s"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_grace: Option<String>,
    /// A proxy connection's first request head must arrive in full within this (humantime), else it is
    /// answered `408` and closed: a client that sends its head slowly (slow-loris) holds nothing for longer.
    /// Default `"30s"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_head_timeout: Option<String>,
    /// This replica's name in leases and logs (several replicas sharing a Postgres or DynamoDB store
    /// must have different names). Default: the host name (the pod name on Kubernetes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_id: Option<String>,
    /// Time to live of this replica's leases: a cold-start claim or the drain leadership of a replica
    /// that dies passes to another after this long (humantime; renewed every third of it). Default `"15s"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_ttl: Option<String>,
    /// How often activity is written to the store and merged with other replicas' (humantime).
    /// Default `"5s"`; keep it well below the shortest `idle_after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_flush: Option<String>,
    /// A shared secret gateways must send in the `x-leannodes-check-token` header of every `/check` and
    /// `ext_authz` callout (`leannodes gateway render` puts it into the artifacts). `"env:NAME"` reads an
    /// environment variable, `"file:PATH"` a file; anything else is the secret itself. Default: none
    /// (callouts are not authenticated; keep `check_listen` private).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_token: Option<String>,
    /// In callout mode, the gateway that calls `/check` or `ext_authz`, by the name `leannodes gateway
    /// render` takes (`"nginx"`, `"istio"`, …). Every flow must fit its limits (e.g. how long it can hold
    /// a request): `leannodes validate` checks the file against it, and a store-managed version that
    /// does not fit is refused at activation. Default: none (the proxy tier serves the traffic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callout_gateway: Option<String>,
    /// What the public status surfaces (the warm-up page, `/.well-known/leannodes/` and the proxy's own
    /// error answers) show anyone on the internet: `"progress"` (default: node names, states and elapsed
    /// time), `"detailed"` (also probe results and failure messages, which can name internal addresses)
    /// or `"off"` (no live status; errors without node details).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_status: Option<PublicStatus>,
    /// Authentication of the management API and dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSection>,
    /// Outgoing mail (invitations and password resets). Without it, links are only shown to the admin
    /// who created them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpSection>,
    /// What sleeping saves: `GET /api/v1/savings` and the `leannodes_savings` gauge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savings: Option<SavingsSection>,
    /// OpenTelemetry traces of wakes and held requests; off unless `otlp` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingSection>,
    /// TLS proxy listeners (`[[server.tls]]`): HTTP/2 and HTTP/1.1 by ALPN, the certificate chosen by SNI.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<TlsListenerSection>,
}

/// One `[[server.tls]]` listener.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsListenerSection {
    /// Address to listen on, as `ip:port`, e.g. `"0.0.0.0:8443"`.
    pub listen: String,
    /// Certificates, chosen by the name the client asks for (SNI) among each certificate's DNS names; the
    /// first one is the default (clients without SNI, or asking for a name no certificate has). The files
    /// are re-read when they change on disk (e.g. a rotated Kubernetes Secret); no restart is needed.
    pub certs: Vec<CertificateFiles>,
}

/// A certificate chain and its private key, as PEM files (relative to the config file's folder).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateFiles {
    /// The certificate chain: the server's certificate first, then intermediates.
    pub cert: String,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: String,
}

/// `[server.tracing]`: where spans go (OTLP over HTTP, JSON encoding).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TracingSection {
    /// The collector's OTLP/HTTP base URL (e.g. `"http://otel-collector:4318"`); spans are POSTed to
    /// `{otlp}/v1/traces`.
    pub otlp: String,
    /// Extra request headers for the collector; values are secrets (`"env:NAME"`, `"file:PATH"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `service.name` of the spans. Default `"leannodes"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
}

/// `[server.savings]`: the cost model. A flow saves, while asleep, its CPU share of a node-hour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SavingsSection {
    /// Average cost of one node-hour (e.g. `0.20`). Default `0`: savings are reported as hours asleep only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub node_hourly_cost: Option<f64>,
    /// CPU cores per node. Default `4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.001))]
    pub node_cpu: Option<f64>,
    /// The currency `node_hourly_cost` is in, as shown (e.g. `"USD"`, `"EUR"`). Default `"USD"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// What the public status surfaces show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PublicStatus {
    /// Node names, states and elapsed time only.
    Progress,
    /// Also probe results and failure messages (may name internal addresses and ports).
    Detailed,
    /// No live status endpoints; the warm-up page and errors carry no node details.
    Off,
}

/// The `[server.auth]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// `"password"` (default: users sign in with a password, an SSO provider when configured, or a
    /// personal access token) or `"none"` (everyone who reaches the admin listener is an administrator;
    /// refused unless `admin_listen` is a loopback address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<AuthMode>,
    /// How long a sign-in lasts (humantime). Default `"12h"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_ttl: Option<String>,
    /// The URL users reach the admin listener at, e.g. `"https://leannodes.example.com"`: links in
    /// mails, OIDC redirect and SAML endpoints are built from it. Default: `http://` + `admin_listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// How long invitation and password-reset links stay valid (humantime). Default `"72h"` for
    /// invitations; resets last one hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_ttl: Option<String>,
    /// OpenID Connect providers for single sign-on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oidc: Vec<OidcSection>,
    /// A SAML 2.0 identity provider for single sign-on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saml: Option<SamlSection>,
}

/// How the management API authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Users, sessions, tokens and SSO.
    Password,
    /// No authentication (loopback only).
    None,
}

/// One `[[server.auth.oidc]]` provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcSection {
    /// Short name, used in URLs (`/api/v1/auth/oidc/{name}/start`).
    pub name: String,
    /// The button text on the login page. Default: the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The issuer URL; its `/.well-known/openid-configuration` is read at start.
    pub issuer: String,
    /// The client id registered at the provider.
    pub client_id: String,
    /// The client secret: `"env:NAME"`, `"file:PATH"` or the value. Never shown by the API.
    pub client_secret: String,
    /// The ID-token claim that lists the user's groups. Default `"groups"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_claim: Option<String>,
    /// Scopes to ask for. Default `["openid", "email", "profile"]` plus `"groups"` when the provider
    /// offers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Provider group → LeanNodes role (`admin`, `operator`, `editor`, `viewer` or a custom role).
    /// Users no entry covers get no access until an administrator grants them a role.
    #[serde(default)]
    pub role_map: BTreeMap<String, String>,
}

/// The `[server.auth.saml]` table: LeanNodes as a SAML service provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SamlSection {
    /// The identity provider's metadata XML: a file path (relative to the config file's folder).
    pub idp_metadata: String,
    /// This service provider's entity id, e.g. `"https://leannodes.example.com/saml"`.
    pub entity_id: String,
    /// The button text on the login page. Default `"SAML"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The assertion attribute that lists the user's groups. Default `"groups"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_attribute: Option<String>,
    /// The attribute with the user's e-mail address. Default: the NameID, else `"email"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_attribute: Option<String>,
    /// IdP group → LeanNodes role; users no entry covers get no access until granted.
    #[serde(default)]
    pub role_map: BTreeMap<String, String>,
}

/// The `[server.smtp]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpSection {
    /// Mail server host name or address.
    pub host: String,
    /// Port. Default 587 (`starttls`), 465 (`tls`) or 25 (`none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `"starttls"` (default), `"tls"` (implicit TLS) or `"none"` (plain text; only on a trusted network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<SmtpTls>,
    /// User name, when the server wants one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password: `"env:NAME"`, `"file:PATH"` or the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Sender address, e.g. `"LeanNodes <leannodes@example.com>"`.
    pub from: String,
}

/// Transport security of the SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Upgrade with STARTTLS (required).
    Starttls,
    /// TLS from the first byte.
    Tls,
    /// No encryption.
    None,
}

/// A source of flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FlowSource {
    /// The `[[flow]]` tables of the configuration file.
    File,
    /// `Flow` custom resources (`leannodes.io/v1alpha1`) in the cluster.
    Crd,
}

/// What callouts answer for requests no flow serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Unmatched {
    /// Allow (`200` / OK): LeanNodes has no say over hosts it does not manage.
    Allow,
    /// Deny with `404 no_flow`, as the proxy does without a `default_upstream`.
    Deny,
}

/// The platform that runs Kubernetes node kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    /// Local processes only; Kubernetes kinds are rejected.
    Process,
    /// Kubernetes (in-cluster config or `KUBECONFIG`).
    Kubernetes,
}

/// Settings a flow inherits from `[defaults]` and may override.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowSettings {
    /// Sliding idle window after which the flow is drained (humantime, e.g. `"15m"`). Default `"15m"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_after: Option<String>,
    /// Longest a request is held while the flow wakes (humantime). Default `"2m"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_timeout: Option<String>,
    /// Browsers get the warm-up page after this long (humantime); other clients wait up to `hold_timeout`.
    /// Default `"20s"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_hold: Option<String>,
    /// Held requests per flow per replica; beyond this requests get `503 hold_queue_full`. Default `10000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_held: Option<u64>,
    /// What a failed wake leaves behind: `"rollback"` stops what it started, `"keep"` leaves it for
    /// debugging. Default `"rollback"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
    /// One node's wake budget (humantime). Default `"5m"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_timeout: Option<String>,
}

/// What a failed wake leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Stop every workload this execution started.
    Rollback,
    /// Leave what woke up running (for debugging).
    Keep,
}

/// One `[[flow]]`.
///
/// Unknown keys are rejected by the schema (`additionalProperties: false`) rather than by serde, because
/// serde's `deny_unknown_fields` cannot be combined with the flattened [`FlowSettings`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
pub struct FlowSpec {
    /// Unique name of the flow. Required in a `[[flow]]` table; in a `Flow` resource it defaults to the
    /// object's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Host patterns: exact names or a leading `*.` wildcard (`"*.shop.example.com"`). Exact beats wildcard.
    pub hosts: Vec<String>,
    /// Path prefixes, each starting with `/`. The longest prefix wins. Default `["/"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Where requests go once the flow is awake: a node of this flow (its port or ready endpoints) or a
    /// literal `host:port`.
    pub upstream: String,
    /// Never drained while true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<bool>,
    /// Requests get `503 flow_disabled` and nothing is woken while true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Requests that never wake the flow and never count as activity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<IgnoreSpec>,
    /// Windows in which the flow is woken ahead of time and kept awake, e.g.
    /// `[{ cron = "0 8 * * 1-5", for = "10h", tz = "Europe/Berlin" }]`. After a window it drains normally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_warm: Option<Vec<KeepWarmSpec>>,
    /// How requests reach the upstream: `"h1"` (HTTP/1.1, the default), `"h2c"` (HTTP/2 without TLS),
    /// `"h2"` (HTTP/2 over TLS) or `"h1-tls"` (HTTP/1.1 over TLS). gRPC backends need `h2c` or `h2`
    /// (with `h1`, gRPC requests are sent as `h2c`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_protocol: Option<UpstreamProtocol>,
    /// How TLS upstreams (`h2`, `h1-tls`) are verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_tls: Option<UpstreamTlsSpec>,
    /// Overrides of the `[defaults]` settings.
    #[serde(flatten)]
    pub settings: FlowSettings,
    /// The workloads of the flow, woken in dependency order.
    #[serde(default)]
    pub node: Vec<NodeSpec>,
}

/// The protocol between LeanNodes and a flow's upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum UpstreamProtocol {
    /// HTTP/1.1 over TCP.
    #[default]
    #[serde(rename = "h1")]
    H1,
    /// HTTP/2 over TCP with prior knowledge (gRPC without TLS).
    #[serde(rename = "h2c")]
    H2c,
    /// HTTP/2 over TLS (ALPN `h2`).
    #[serde(rename = "h2")]
    H2,
    /// HTTP/1.1 over TLS.
    #[serde(rename = "h1-tls")]
    H1Tls,
}

impl UpstreamProtocol {
    /// The name written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamProtocol::H1 => "h1",
            UpstreamProtocol::H2c => "h2c",
            UpstreamProtocol::H2 => "h2",
            UpstreamProtocol::H1Tls => "h1-tls",
        }
    }

    /// Whether the connection is TLS.
    pub fn tls(self) -> bool {
        matches!(self, UpstreamProtocol::H2 | UpstreamProtocol::H1Tls)
    }
}

/// `upstream_tls`: how a TLS upstream's certificate is verified. It is always verified.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsSpec {
    /// The name sent as SNI and checked against the upstream's certificate. Default: the upstream's host
    /// (a literal `host:port` upstream, or `127.0.0.1` for a process node); required for Kubernetes nodes
    /// (pod addresses are not in certificates), e.g. `"api.shop.svc"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// Certificate authorities to trust instead of the system's: a PEM file (relative to the config
    /// file's folder) or the PEM text itself (`"-----BEGIN CERTIFICATE-----…"`; the only form a `Flow`
    /// resource may use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

/// One keep-warm window: the flow is woken `ahead` of each time `cron` fires and held awake `for` that long.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeepWarmSpec {
    /// When windows start: five cron fields (`minute hour day-of-month month day-of-week`, e.g.
    /// `"0 8 * * 1-5"`) or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.
    pub cron: String,
    /// How long each window lasts (humantime, e.g. `"10h"`).
    #[serde(rename = "for")]
    pub length: String,
    /// IANA time zone the cron expression is read in (e.g. `"Europe/Berlin"`). Default `"UTC"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// How long before each window the wake starts (humantime). Default `"2m"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ahead: Option<String>,
}

/// Requests a flow ignores: they never wake it and never count as activity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IgnoreSpec {
    /// `User-Agent` patterns; `*` matches any run of characters (`"kube-probe/*"`).
    #[serde(default)]
    pub user_agents: Vec<String>,
    /// Request paths; `*` matches any run of characters (`"/healthz"`, `"/internal/*"`).
    #[serde(default)]
    pub paths: Vec<String>,
}

/// One `[[flow.node]]`: a workload the flow needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Name of the node, unique within the flow. Process nodes with the same name in two flows are one
    /// shared workload and must be defined identically.
    pub name: String,
    /// What the node is and who runs it.
    pub kind: NodeKind,
    /// Process nodes: the program and its arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Process nodes: extra environment variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Process nodes: working directory, relative to the config file's folder (the default). A relative
    /// program path in `command` is resolved against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Kubernetes kinds: the workload as `"namespace/name"`.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Kubernetes deployments and statefulsets: replicas when woken (default: the count recorded at drain,
    /// else 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub replicas: Option<u32>,
    /// The port the node serves on: for process nodes on 127.0.0.1; for Kubernetes kinds the service port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Readiness probe. Process nodes without one are probed with TCP on their `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<ReadySpec>,
    /// DAG edges: nodes of this flow that must be ready before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// This node's wake budget (humantime); overrides the flow's `node_timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// CPU cores the node uses while awake, for the savings estimate. Default: for Kubernetes nodes the pod
    /// template's CPU requests × replicas, for other nodes 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub cpu: Option<f64>,
    /// As the flow's upstream: the most requests one endpoint (a pod, or the process) gets at once. When
    /// every endpoint is full, a request waits inside its hold budget for one to finish or for another
    /// endpoint to become ready (then `503 upstream_busy`). Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_concurrency: Option<u32>,
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// A local process started and stopped by LeanNodes.
    Process,
    /// A Kubernetes Deployment, scaled through its scale subresource.
    Deployment,
    /// A Kubernetes StatefulSet, scaled through its scale subresource.
    Statefulset,
    /// A Kubernetes Job created afresh from a suspended template Job on every wake.
    Job,
    /// Something LeanNodes only probes: never started or stopped.
    External,
}

impl NodeKind {
    /// The word used for this kind in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Process => "process",
            NodeKind::Deployment => "deployment",
            NodeKind::Statefulset => "statefulset",
            NodeKind::Job => "job",
            NodeKind::External => "external",
        }
    }

    /// Whether this kind is run by Kubernetes.
    pub fn is_kubernetes(self) -> bool {
        matches!(self, NodeKind::Deployment | NodeKind::Statefulset | NodeKind::Job)
    }
}

/// A readiness probe: exactly one of `tcp`, `http` or `exec`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReadySpec {
    /// Ready when a TCP connection to this `host:port` succeeds.
    Tcp(String),
    /// Ready when a GET of this URL answers 2xx or 3xx.
    Http(String),
    /// Ready when this command exits with status 0.
    Exec(Vec<String>),
}
