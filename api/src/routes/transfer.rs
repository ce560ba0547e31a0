//! Import and export of flows, as TOML (`[[flow]]` tables, as in the configuration file) or JSON. An
//! import creates store-managed flows or commits new versions of existing ones, optionally activating
//! them; `dry_run` reports what would change and changes nothing. An import is checked whole before
//! anything is written: a syntax error (with its line and column), a flow of the file or of a `Flow`
//! resource, a process node without the `admin` role, or (with `activate`) a flow that would not
//! validate refuses all of it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use leannodes_config::FlowFormat;
use leannodes_config::file::FlowSpec;
use leannodes_store::{Draft, FlowDoc, FlowVersion, Store};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::Registrar;
use super::lifecycle::{Lifecycle, activation_error, process_nodes_allowed, read_only, stored};
use crate::authz::{Permission, Rule};
use crate::diff::{FlowDiff, diff};
use crate::error::ApiError;
use crate::extract::{Authed, Body, Query};

pub(super) fn routes(r: Registrar) -> Registrar {
    r.add(Rule::Global(Permission::FlowsEdit), routes!(import)).add(Rule::Authenticated, routes!(export))
}

/// The format of an import or export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Format {
    /// `[[flow]]` tables.
    Toml,
    /// `{"flow": [ … ]}`.
    Json,
}

impl From<Format> for FlowFormat {
    fn from(f: Format) -> FlowFormat {
        match f {
            Format::Toml => FlowFormat::Toml,
            Format::Json => FlowFormat::Json,
        }
    }
}

/// `POST /flows/import`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Import {
    /// `toml` or `json`.
    format: Format,
    /// The flows: TOML `[[flow]]` tables, or JSON `{"flow": [ … ]}`.
    content: String,
    /// Report what would change; change nothing.
    #[serde(default)]
    dry_run: bool,
    /// Activate every new version (needs `flows.activate` on each flow).
    #[serde(default)]
    activate: bool,
    /// The commit message of the new versions (default `"import"`).
    message: Option<String>,
}

/// What an import does to one flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ImportAction {
    /// A new store-managed flow (version 1).
    Create,
    /// A new version of a store-managed flow.
    NewVersion,
    /// Nothing: the definition equals the flow's latest version.
    Unchanged,
}

/// One flow of an import.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportedFlow {
    /// The flow.
    name: String,
    /// What happens (or would happen) to it.
    action: ImportAction,
    /// The version committed (or that would be).
    version: Option<u64>,
    /// Whether it is (or would be) activated.
    activated: bool,
    /// What changes from its latest version.
    change: FlowDiff,
}

/// The result of an import.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportResult {
    /// Nothing was changed.
    dry_run: bool,
    /// Every flow of the import, in its order.
    flows: Vec<ImportedFlow>,
}

/// `400 invalid_import`, each problem with its path and, where the source has one, line and column.
fn invalid_import(d: &leannodes_config::Diagnostics) -> ApiError {
    let fields: Vec<serde_json::Value> = d
        .items
        .iter()
        .map(|item| {
            let at = d.position(item);
            serde_json::json!({ "path": item.pointer, "line": at.line, "column": at.col, "message": item.message, "help": item.help })
        })
        .collect();
    let summary: Vec<String> = d
        .items
        .iter()
        .map(|i| {
            let at = d.position(i);
            format!("{}:{}: {}", at.line, at.col, i.message)
        })
        .collect();
    ApiError::bad_request("invalid_import", format!("the import has {} problem(s): {}", fields.len(), summary.join("; ")))
        .with_details(serde_json::json!({ "fields": fields }))
}

/// Imports flows: creates them or commits new versions, optionally activating them. `dry_run` reports
/// the plan. Checked whole first: nothing is written unless every flow can be.
#[utoipa::path(post, path = "/api/v1/flows/import", tag = "lifecycle", request_body = Import,
    responses((status = 200, body = ImportResult)))]
async fn import(
    Authed(principal, caller): Authed,
    State(lc): State<Lifecycle>,
    Body(import): Body<Import>,
) -> Result<Json<ImportResult>, ApiError> {
    let specs = leannodes_config::parse_flows(&import.content, import.format.into()).map_err(|d| invalid_import(&d))?;
    let message = import.message.as_deref().map(str::trim).filter(|m| !m.is_empty()).unwrap_or("import").to_string();
    // Check everything first.
    let mut plan: Vec<(FlowSpec, Option<leannodes_store::Versioned<FlowDoc>>, ImportedFlow)> = Vec::new();
    for mut spec in specs {
        let name = std::mem::take(&mut spec.name);
        super::lifecycle::check_new_name(&name)?;
        process_nodes_allowed(&principal, &spec)?;
        if import.activate && !principal.can_on(Permission::FlowsActivate, &name) {
            return Err(ApiError::forbidden(format!("`activate: true` needs the `flows.activate` permission on flow `{name}`")));
        }
        let doc = lc.store.records::<FlowDoc>().get(&name).await?;
        let (action, version, change) = match &doc {
            None => {
                if let Some(e) = read_only(&lc.controller, &name) {
                    return Err(e);
                }
                (ImportAction::Create, 1, diff(&FlowSpec::default(), &spec))
            }
            Some(doc) => {
                let latest = match doc.value.latest {
                    0 => FlowSpec::default(),
                    n => super::lifecycle::parse_stored(&name, &super::lifecycle::read_version(&*lc.store, &name, n).await?.spec)?,
                };
                let change = diff(&latest, &spec);
                if change.is_empty() && doc.value.latest > 0 {
                    (ImportAction::Unchanged, doc.value.latest, change)
                } else {
                    (ImportAction::NewVersion, doc.value.latest + 1, change)
                }
            }
        };
        if import.activate {
            lc.reloader.check(super::lifecycle::as_store(&name, spec.clone())).await.map_err(activation_error)?;
        }
        let entry = ImportedFlow { name, action, version: Some(version), activated: import.activate, change };
        plan.push((spec, doc, entry));
    }
    if import.dry_run {
        return Ok(Json(ImportResult { dry_run: true, flows: plan.into_iter().map(|(_, _, e)| e).collect() }));
    }
    let (me, _) = super::lifecycle::holder(&caller)?;
    let now = crate::unix_ms();
    let mut done = Vec::new();
    for (spec, doc, entry) in plan {
        let name = entry.name.clone();
        let docs = lc.store.records::<FlowDoc>();
        let active = doc.as_ref().and_then(|d| d.value.active);
        if entry.action != ImportAction::Unchanged {
            let number = entry.version.unwrap_or(1);
            match doc {
                None => {
                    docs.create(&FlowDoc { name: name.clone(), active: None, latest: 1, created_by: me.clone(), created_ms: now }).await?;
                }
                Some(doc) => {
                    docs.update(&FlowDoc { latest: number, ..doc.value }, doc.version).await?;
                }
            }
            let version = FlowVersion {
                flow: name.clone(),
                number,
                spec: stored(&spec),
                author: me.clone(),
                message: message.clone(),
                note: String::new(),
                base: active,
                created_ms: now,
            };
            lc.store.records::<FlowVersion>().create(&version).await?;
            lc.audit
                .by(
                    &caller,
                    "flow.import",
                    format!("flow/{name}"),
                    serde_json::json!({ "version": number, "change": super::lifecycle::audit_summary(&FlowSpec::default(), &spec) }),
                )
                .await;
        }
        if import.activate && active != entry.version {
            let number = entry.version.unwrap_or(1);
            let status = lc.reloader.activate(&name, number).await.map_err(activation_error)?;
            lc.audit
                .by(
                    &caller,
                    "flow.activate",
                    format!("flow/{name}"),
                    serde_json::json!({ "from": active, "to": number, "reload_ok": status.ok }),
                )
                .await;
        }
        done.push(entry);
    }
    Ok(Json(ImportResult { dry_run: false, flows: done }))
}

/// `?format=` of an export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportQuery {
    /// `toml` (default) or `json`.
    format: Option<Format>,
}

/// The store-managed flows the caller may read, as TOML `[[flow]]` tables or JSON `{"flow": [ … ]}`:
/// each at its active version (else its latest version, else its draft). Importing the export
/// elsewhere recreates them.
#[utoipa::path(get, path = "/api/v1/flows/export", tag = "lifecycle", params(ExportQuery),
    responses((status = 200, description = "The flows", content((String = "application/toml"), (Object = "application/json")))))]
async fn export(
    Authed(principal, _): Authed,
    State(store): State<Arc<dyn Store>>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let mut flows = Vec::new();
    for doc in super::lifecycle::managed_flows(&*store).await? {
        if !principal.can_on(Permission::FlowsRead, &doc.name) {
            continue;
        }
        let value = match doc.active.or((doc.latest > 0).then_some(doc.latest)) {
            Some(n) => super::lifecycle::read_version(&*store, &doc.name, n).await?.spec,
            None => match store.records::<Draft>().get(&doc.name).await? {
                Some(draft) => draft.value.spec,
                None => continue,
            },
        };
        let mut spec = super::lifecycle::parse_stored(&doc.name, &super::lifecycle::shown(value, &principal))?;
        spec.name = doc.name.clone();
        flows.push(spec);
    }
    let file = leannodes_config::ConfigFile { server: None, defaults: None, flow: flows, notification: vec![] };
    let (body, content_type) = match query.format.unwrap_or(Format::Toml) {
        Format::Toml => {
            (toml::to_string(&file).map_err(|e| ApiError::internal(format!("cannot write TOML: {e}")))?, "application/toml; charset=utf-8")
        }
        Format::Json => {
            (serde_json::to_string_pretty(&file).map_err(|e| ApiError::internal(format!("cannot write JSON: {e}")))?, "application/json")
        }
    };
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}
