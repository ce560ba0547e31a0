//! The `Flow` custom resource (`leannodes.io/v1alpha1`): a `[[flow]]` table as a Kubernetes object, from
//! the same Rust types ([`FlowSpec`]).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::file::FlowSpec;

/// The spec of a `Flow` resource: exactly a `[[flow]]` table (`name` defaults to the object's name).
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(group = "leannodes.io", version = "v1alpha1", kind = "Flow", plural = "flows", namespaced, status = "FlowResourceStatus")]
#[kube(shortname = "lnflow")]
#[kube(printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.state"}"#)]
#[kube(printcolumn = r#"{"name":"Hosts","type":"string","jsonPath":".spec.hosts"}"#)]
pub struct FlowResourceSpec(pub FlowSpec);

/// What LeanNodes reports on a `Flow` resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FlowResourceStatus {
    /// `asleep`, `waking`, `awake`, `draining` or `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// When the flow last finished waking (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "lastWake")]
    pub last_wake: Option<String>,
    /// Why the last wake failed, or why the resource was not applied.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "lastError")]
    pub last_error: Option<String>,
    /// `Valid`: whether the resource passed validation and serves traffic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<FlowCondition>,
}

/// A status condition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FlowCondition {
    /// Condition type (`Valid`).
    #[serde(rename = "type")]
    pub type_: String,
    /// `True` or `False`.
    pub status: String,
    /// One-word reason (`Accepted`, `Invalid`).
    pub reason: String,
    /// Details (the validation problems, one per line).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}
