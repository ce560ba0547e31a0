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
    /// Overrides of the `[defaults]` settings.
    #[serde(flatten)]
    pub settings: FlowSettings,
    /// The workloads of the flow, woken in dependency order.
    #[serde(default)]
    pub node: Vec<NodeSpec>,
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
