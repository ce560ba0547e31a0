//! Callout mode: the gateways LeanNodes renders for, which of them the cluster runs, and their artifacts
//! for the flows being served now. Artifacts shown here never contain the check token (a placeholder
//! stands in for it); `leannodes gateway render` on a machine with the configuration writes the real one.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use leannodes_control::Controller;
use leannodes_drivers::gateways::{self, Detected, Target};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::Registrar;
use crate::authz::{Permission, Rule};
use crate::error::ApiError;
use crate::extract::{Path, Query};
use crate::state::Instance;

pub(super) fn routes(r: Registrar) -> Registrar {
    r.add(Rule::Global(Permission::FlowsRead), routes!(list)).add(Rule::Global(Permission::FlowsRead), routes!(artifacts))
}

/// What stands in for the check token in artifacts the API shows.
const TOKEN_PLACEHOLDER: &str = "${LEANNODES_CHECK_TOKEN}";

/// A gateway LeanNodes renders for.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GatewayKind {
    /// Its name (`istio`, `envoy`, `nginx`, …).
    kind: &'static str,
    /// Whether its artifact is Kubernetes resources.
    kubernetes: bool,
    /// The longest it can hold a request, when it has a hard limit (seconds).
    max_hold_s: Option<u64>,
}

/// A gateway found in the cluster.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DetectedGateway {
    /// Gateway kind.
    kind: String,
    /// What shows it is there.
    evidence: Option<String>,
    /// Whether its artifact is applied (`null`: not there, or unreadable).
    applied: Option<bool>,
}

impl From<Detected> for DetectedGateway {
    fn from(d: Detected) -> DetectedGateway {
        DetectedGateway { kind: d.kind.to_string(), evidence: d.evidence, applied: d.applied }
    }
}

/// Gateways and what the cluster has.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Gateways {
    /// Every gateway LeanNodes renders for.
    gateways: Vec<GatewayKind>,
    /// With the Kubernetes driver: the gateways found (`null` without a cluster).
    detected: Option<Vec<DetectedGateway>>,
    /// Why detection failed, when it did.
    detect_error: Option<String>,
}

/// `?namespace=&leannodes_namespace=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct DetectQuery {
    /// Namespace of the flows' routes and policies (default `default`).
    namespace: Option<String>,
    /// Namespace LeanNodes runs in (default `leannodes`).
    leannodes_namespace: Option<String>,
}

fn served_flows(controller: &Controller) -> Vec<Arc<leannodes_config::Flow>> {
    controller.flow_names().iter().filter_map(|n| controller.flow(n)).map(|f| f.spec.clone()).collect()
}

/// The gateways LeanNodes renders for and their limits; with the Kubernetes driver, which of them the
/// cluster has and whether their artifact is applied.
#[utoipa::path(get, path = "/api/v1/gateways", tag = "gateways", params(DetectQuery), responses((status = 200, body = Gateways)))]
async fn list(
    State(instance): State<Arc<Instance>>,
    State(controller): State<Arc<Controller>>,
    Query(q): Query<DetectQuery>,
) -> Json<Gateways> {
    let gateways = gateways::GatewayKind::ALL
        .into_iter()
        .map(|k| {
            let driver = gateways::driver(k);
            GatewayKind { kind: k.as_str(), kubernetes: driver.is_kubernetes(), max_hold_s: driver.cap.map(|c| c.as_secs()) }
        })
        .collect();
    let (detected, detect_error) = match &instance.kube {
        None => (None, None),
        Some(client) => {
            let specs = served_flows(&controller);
            let flows: Vec<&leannodes_config::Flow> = specs.iter().map(|f| &**f).collect();
            let defaults = Target::default();
            let target = Target {
                namespace: q.namespace.unwrap_or(defaults.namespace),
                leannodes_namespace: q.leannodes_namespace.unwrap_or(defaults.leannodes_namespace),
                ..Target::default()
            };
            match gateways::detect(client, &flows, &target).await {
                Ok(found) => (Some(found.into_iter().map(DetectedGateway::from).collect()), None),
                Err(e) => (None, Some(e.to_string())),
            }
        }
    };
    Json(Gateways { gateways, detected, detect_error })
}

/// `?flow=&namespace=&leannodes_namespace=&check_url=&grpc=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArtifactQuery {
    /// Only this flow (default: every flow).
    flow: Option<String>,
    /// Namespace of the flows' routes and policies.
    namespace: Option<String>,
    /// Namespace LeanNodes runs in.
    leannodes_namespace: Option<String>,
    /// The forward-auth URL of LeanNodes.
    check_url: Option<String>,
    /// The `ext_authz` gRPC address of LeanNodes (`host:port`).
    grpc: Option<String>,
}

/// One file of an artifact.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ArtifactFile {
    /// File name.
    name: String,
    /// Its text.
    content: String,
}

/// A rendered artifact.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Artifact {
    /// The gateway.
    kind: &'static str,
    /// Whether it is Kubernetes resources.
    kubernetes: bool,
    /// The timeout it gives the callout (seconds).
    timeout_s: u64,
    /// Whether a check token is configured (it appears as `${LEANNODES_CHECK_TOKEN}`: substitute it).
    check_token_placeholder: bool,
    /// The files.
    files: Vec<ArtifactFile>,
}

/// The artifact `leannodes gateway render` prints, for the flows being served now.
#[utoipa::path(get, path = "/api/v1/gateways/{kind}/artifacts", tag = "gateways",
    params(("kind" = String, Path, description = "Gateway kind"), ArtifactQuery), responses((status = 200, body = Artifact)))]
async fn artifacts(
    State(instance): State<Arc<Instance>>,
    State(controller): State<Arc<Controller>>,
    Path(kind): Path<String>,
    Query(q): Query<ArtifactQuery>,
) -> Result<Json<Artifact>, ApiError> {
    let kind: gateways::GatewayKind =
        kind.parse().map_err(|e: gateways::UnknownGateway| ApiError::not_found("unknown_gateway", e.to_string()))?;
    let flows = served_flows(&controller);
    let selected = gateways::select(&flows, q.flow.as_deref()).map_err(|e| ApiError::not_found("unknown_flow", e.to_string()))?;
    let defaults = Target::default();
    let placeholder = instance.server.check_token.is_some();
    let target = Target {
        check_url: q.check_url.unwrap_or(defaults.check_url),
        grpc: q.grpc.unwrap_or(defaults.grpc),
        namespace: q.namespace.unwrap_or(defaults.namespace),
        leannodes_namespace: q.leannodes_namespace.unwrap_or(defaults.leannodes_namespace),
        check_token: placeholder.then(|| TOKEN_PLACEHOLDER.to_string()),
    };
    let artifact = gateways::render(kind, &selected, &target)
        .map_err(|e| ApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "gateway_cannot_hold", e.to_string()))?;
    Ok(Json(Artifact {
        kind: artifact.kind.as_str(),
        kubernetes: gateways::driver(artifact.kind).is_kubernetes(),
        timeout_s: artifact.timeout.as_secs(),
        check_token_placeholder: placeholder,
        files: artifact.files.into_iter().map(|f| ArtifactFile { name: f.name, content: f.content }).collect(),
    }))
}
