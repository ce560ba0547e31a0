//! The lifecycle of store-managed flows (`source = "store"`): create and delete; one mutable draft per
//! flow, saved with `If-Match` under an expiring editor lock; immutable numbered versions committed from
//! the draft; activation of any version (roll forward or back) after the same validation as `leannodes
//! validate`, through the reload actor; branching a draft from a version; and the diff of any two
//! definitions. Flows of the file and of `Flow` resources are read-only here (`409 read_only_source`).
//!
//! Process nodes run commands on the LeanNodes host with its rights: saving, committing, branching or
//! activating a definition that has one needs the `admin` role.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use leannodes_config::file::{FlowSpec, NodeKind};
use leannodes_config::{Diagnostic, FlowOrigin};
use leannodes_control::{ActivateError, Controller, ReloadCause, Reloader};
use leannodes_store::{Draft, DraftLock, FlowDoc, FlowVersion, Record, Store, StoreError, TestSession, Versioned};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::Registrar;
use crate::audit::Audit;
use crate::auth::Caller;
use crate::authz::{Permission, Principal, Rule};
use crate::diff::{FlowDiff, diff};
use crate::error::ApiError;
use crate::extract::{Authed, Body, IfMatch, Path, Query};

pub(super) fn routes(r: Registrar) -> Registrar {
    let read = Rule::Flow(Permission::FlowsRead);
    let edit = Rule::Flow(Permission::FlowsEdit);
    r.add(Rule::Global(Permission::FlowsEdit), routes!(create))
        .add(Rule::Flow(Permission::FlowsActivate), routes!(delete))
        .add(read, routes!(get_draft))
        .add(edit, routes!(save_draft))
        .add(edit, routes!(discard_draft))
        .add(edit, routes!(lock))
        .add(edit, routes!(unlock))
        .add(edit, routes!(commit))
        .add(read, routes!(versions))
        .add(read, routes!(version))
        .add(Rule::Flow(Permission::FlowsActivate), routes!(activate))
        .add(edit, routes!(branch))
        .add(read, routes!(flow_diff))
        .add(edit, routes!(start_session))
        .add(read, routes!(sessions))
        .add(edit, routes!(stop_session))
}

/// What the lifecycle handlers work with.
#[derive(Clone)]
pub(crate) struct Lifecycle {
    pub(super) store: Arc<dyn Store>,
    pub(super) controller: Arc<Controller>,
    pub(super) reloader: Reloader,
    pub(super) audit: Audit,
}

impl axum::extract::FromRef<crate::state::AppState> for Lifecycle {
    fn from_ref(state: &crate::state::AppState) -> Lifecycle {
        Lifecycle {
            store: state.store.clone(),
            controller: state.controller.clone(),
            reloader: state.instance.reloader.clone(),
            audit: state.audit.clone(),
        }
    }
}

impl Lifecycle {
    /// The record of a store-managed flow (see [`doc`]).
    async fn doc(&self, flow: &str) -> Result<Versioned<FlowDoc>, ApiError> {
        doc(&*self.store, &self.controller, flow).await
    }
}

/// Every store-managed flow's record, by name.
pub(super) async fn managed_flows(store: &dyn Store) -> Result<Vec<FlowDoc>, ApiError> {
    let mut page = leannodes_store::Page::first(500);
    let mut out = Vec::new();
    loop {
        let listing = store.records::<FlowDoc>().list("", &page).await?;
        out.extend(listing.items.into_iter().map(|v| v.value));
        match listing.next {
            Some(next) => page.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// A lifetime asked for as humantime (`default` when not asked), within `range`; `400 invalid_field`
/// at `field` otherwise.
fn ttl_of(field: &str, text: Option<&str>, default: Duration, (min, max): (Duration, Duration)) -> Result<Duration, ApiError> {
    let Some(text) = text else { return Ok(default) };
    let show = |d: Duration| humantime::format_duration(d).to_string();
    match humantime::parse_duration(text) {
        Ok(d) if d >= min && d <= max => Ok(d),
        Ok(_) => Err(ApiError::invalid_field(field, format!("must be between {} and {}", show(min), show(max)))),
        Err(e) => Err(ApiError::invalid_field(field, format!("not a duration ({e}); write e.g. \"{}\"", show(default)))),
    }
}

/// How long an editor lock lasts when no `ttl` is asked for.
const LOCK_TTL: Duration = Duration::from_secs(300);
/// The longest editor lock.
const LOCK_MAX: Duration = Duration::from_secs(3600);

/// A problem of a definition.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Problem {
    /// JSON pointer into the flow (`/upstream`, `/node/1/after/0`; `/` for the whole flow).
    path: String,
    /// What is wrong.
    message: String,
    /// How to fix it.
    help: String,
}

impl Problem {
    fn of(d: &Diagnostic) -> Problem {
        Problem {
            path: if d.pointer.is_empty() { "/".into() } else { d.pointer.clone() },
            message: d.message.clone(),
            help: d.help.clone(),
        }
    }
}

/// `422 invalid_flow` listing every problem (`details.fields`), or another refusal of an activation.
pub(super) fn activation_error(e: ActivateError) -> ApiError {
    match e {
        ActivateError::UnknownFlow(flow) => unknown(&flow),
        ActivateError::UnknownVersion { flow, number } => {
            ApiError::not_found("unknown_version", format!("flow `{flow}` has no version {number}"))
        }
        ActivateError::Invalid { flow, number, problems } => invalid(&flow, Some(number), &problems),
        ActivateError::FileInvalid(errors) => ApiError::conflict(
            "config_invalid",
            format!("the configuration file does not validate, so nothing can be activated until it is fixed: {}", errors.join("; ")),
        )
        .with_details(serde_json::json!({ "errors": errors })),
        e @ ActivateError::Conflict(_) => ApiError::conflict("activation_conflict", e.to_string()),
        ActivateError::Store(e) => e.into(),
    }
}

fn invalid(flow: &str, number: Option<u64>, problems: &[Diagnostic]) -> ApiError {
    let what = number.map_or_else(|| format!("the draft of `{flow}`"), |n| format!("version {n} of `{flow}`"));
    let list: Vec<Problem> = problems.iter().map(Problem::of).collect();
    let summary: Vec<String> = list.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_flow",
        format!("{what} cannot be activated ({} problem(s)): {}", list.len(), summary.join("; ")),
    )
    .with_details(serde_json::json!({ "fields": list }))
}

fn unknown(flow: &str) -> ApiError {
    ApiError::not_found("unknown_flow", format!("no flow named `{flow}`"))
}

/// Reads a spec from the API's JSON (shape checked against the schema), named `flow`.
pub(super) fn spec_of(flow: &str, value: &Value) -> Result<FlowSpec, ApiError> {
    let mut spec = leannodes_config::flow_spec_from_json(value).map_err(|problems| {
        let list: Vec<Problem> = problems
            .iter()
            .map(|d| Problem { path: format!("/spec{}", d.pointer), message: d.message.clone(), help: d.help.clone() })
            .collect();
        let summary: Vec<String> = list.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
        ApiError::bad_request("invalid_field", format!("the flow is not well-formed: {}", summary.join("; ")))
            .with_details(serde_json::json!({ "fields": list }))
    })?;
    if !spec.name.is_empty() && spec.name != flow {
        return Err(ApiError::invalid_field("/spec/name", format!("the flow is named `{flow}`, not `{}`; leave `name` out", spec.name)));
    }
    spec.name = String::new();
    Ok(spec)
}

/// `spec` as the store-managed flow `name`, for a check.
pub(super) fn as_store(name: &str, mut spec: FlowSpec) -> leannodes_config::SourcedFlow {
    spec.name = name.to_string();
    leannodes_config::SourcedFlow { origin: FlowOrigin::Store { version: 0 }, spec }
}

/// A definition as `principal` may see it: environment values of nodes (which may hold secrets) only
/// for administrators (the only ones who may write them: only process nodes take `env`).
pub(super) fn shown(mut spec: Value, principal: &Principal) -> Value {
    if !principal.is_admin() {
        for node in spec.get_mut("node").and_then(Value::as_array_mut).into_iter().flatten() {
            for value in node.get_mut("env").and_then(Value::as_object_mut).into_iter().flat_map(|env| env.values_mut()) {
                *value = Value::String("(redacted)".into());
            }
        }
    }
    spec
}

/// The stored form of a spec (without its name: the flow names it).
pub(super) fn stored(spec: &FlowSpec) -> Value {
    serde_json::to_value(spec).unwrap_or_default()
}

pub(super) fn parse_stored(flow: &str, value: &Value) -> Result<FlowSpec, ApiError> {
    serde_json::from_value(value.clone())
        .map_err(|e| ApiError::internal(format!("the store holds a definition of `{flow}` that does not match the flow model: {e}")))
}

/// Refuses a definition with process nodes to anyone but an administrator.
pub(super) fn process_nodes_allowed(principal: &Principal, spec: &FlowSpec) -> Result<(), ApiError> {
    let process: Vec<&str> = spec.node.iter().filter(|n| n.kind == NodeKind::Process).map(|n| n.name.as_str()).collect();
    if process.is_empty() || principal.is_admin() {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "node(s) {} are process nodes: they run commands on the LeanNodes host with its rights, so only an \
         administrator (the `admin` role) may save, commit or activate a flow that has one; use a deployment, \
         statefulset, job or external node instead",
        process.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
    ))
    .with_details(serde_json::json!({ "reason": "process_nodes", "nodes": process })))
}

/// The flow record of a store-managed flow; `409 read_only_source` for flows of the file or of `Flow`
/// resources, `404` for none.
async fn doc(store: &dyn Store, controller: &Controller, flow: &str) -> Result<Versioned<FlowDoc>, ApiError> {
    if let Some(doc) = store.records::<FlowDoc>().get(flow).await? {
        return Ok(doc);
    }
    Err(read_only(controller, flow).unwrap_or_else(|| unknown(flow)))
}

/// `409 read_only_source` when `flow` comes from the file or a `Flow` resource.
pub(super) fn read_only(controller: &Controller, flow: &str) -> Option<ApiError> {
    match controller.flow(flow).map(|h| h.spec.origin.clone())? {
        FlowOrigin::File => Some(
            ApiError::conflict(
                "read_only_source",
                format!("flow `{flow}` comes from the configuration file; edit it there (the file is watched and reloaded)"),
            )
            .with_details(serde_json::json!({ "source": "file" })),
        ),
        FlowOrigin::Resource { namespace } => Some(
            ApiError::conflict(
                "read_only_source",
                format!("flow `{flow}` comes from a Flow resource in namespace `{namespace}`; edit that resource (kubectl or GitOps)"),
            )
            .with_details(serde_json::json!({ "source": "resource", "namespace": namespace })),
        ),
        FlowOrigin::TestSession { flow: parent, version, .. } => Some(
            ApiError::conflict(
                "read_only_source",
                format!("`{flow}` is the test session of version {version} of flow `{parent}`; manage it under /api/v1/flows/{parent}/test-sessions"),
            )
            .with_details(serde_json::json!({ "source": "test_session", "flow": parent, "version": version })),
        ),
        FlowOrigin::Store { .. } => None,
    }
}

/// Checks the name of a new flow (`import` and `export` are taken by routes).
pub(super) fn check_new_name(name: &str) -> Result<(), ApiError> {
    leannodes_config::check_flow_name(name).map_err(|e| ApiError::invalid_field("/name", e))?;
    if matches!(name, "import" | "export") {
        return Err(ApiError::invalid_field("/name", format!("`{name}` is reserved (it names an API route); choose another name")));
    }
    Ok(())
}

pub(super) async fn read_version(store: &dyn Store, flow: &str, number: u64) -> Result<FlowVersion, ApiError> {
    store
        .records::<FlowVersion>()
        .get(&FlowVersion::key_of(flow, number))
        .await?
        .map(|v| v.value)
        .ok_or_else(|| ApiError::not_found("unknown_version", format!("flow `{flow}` has no version {number}")))
}

fn no_draft(flow: &str) -> ApiError {
    ApiError::not_found(
        "no_draft",
        format!(
            "flow `{flow}` has no draft; start one with POST /api/v1/flows/{flow}/draft/lock (from the active version) or \
             POST /api/v1/flows/{flow}/versions/N/branch"
        ),
    )
}

/// The lock as others see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct LockView {
    /// Who holds it (`user:ID`).
    holder: String,
    /// Their e-mail address.
    holder_email: String,
    /// When it lapses unless renewed (Unix milliseconds).
    expires_ms: i64,
    /// Whether the caller holds it.
    yours: bool,
}

/// The draft of a flow.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DraftView {
    /// The flow.
    flow: String,
    /// The edited definition (a `[[flow]]` table as JSON).
    #[schema(value_type = Object)]
    spec: Value,
    /// Content version: send it as `If-Match` when saving.
    version: u64,
    /// The active version when the draft was started or rebased.
    base: Option<u64>,
    /// The version it was branched from.
    branched_from: Option<u64>,
    /// The active version now.
    active_version: Option<u64>,
    /// Another version was activated since the draft was started: rebase (save with `base` set to the
    /// active version) or discard it before committing.
    stale: bool,
    /// Who saved it last (`user:ID`).
    saved_by: String,
    /// When (Unix milliseconds).
    saved_ms: i64,
    /// The editor lock, while someone holds it.
    lock: Option<LockView>,
    /// What would stop its activation now (empty: it would activate).
    problems: Vec<Problem>,
}

impl DraftView {
    async fn of(draft: Draft, active: Option<u64>, caller: &Caller, reloader: &Reloader) -> DraftView {
        let now = crate::unix_ms();
        let problems = match serde_json::from_value::<FlowSpec>(draft.spec.clone()) {
            Ok(spec) => match reloader.check(as_store(&draft.flow, spec)).await {
                Ok(()) => Vec::new(),
                Err(ActivateError::Invalid { problems, .. }) => problems.iter().map(Problem::of).collect(),
                Err(e) => vec![Problem { path: "/".into(), message: e.to_string(), help: String::new() }],
            },
            Err(e) => vec![Problem { path: "/".into(), message: e.to_string(), help: "save the draft again".into() }],
        };
        let me = holder(caller).map(|(me, _)| me).unwrap_or_default();
        let spec = match caller.principal.as_deref() {
            Some(principal) => shown(draft.spec, principal),
            None => Value::Null,
        };
        DraftView {
            stale: draft.base != active,
            lock: draft.lock.filter(|l| l.expires_ms > now).map(|l| LockView {
                yours: l.holder == me,
                holder: l.holder,
                holder_email: l.holder_email,
                expires_ms: l.expires_ms,
            }),
            flow: draft.flow,
            spec,
            version: draft.revision,
            base: draft.base,
            branched_from: draft.branched_from,
            active_version: active,
            saved_by: draft.saved_by,
            saved_ms: draft.saved_ms,
            problems,
        }
    }
}

/// The caller's user as a lock holder, or `403` (an anonymous caller cannot hold a lock).
pub(super) fn holder(caller: &Caller) -> Result<(String, String), ApiError> {
    let principal = caller.require()?;
    match &principal.actor {
        crate::authz::Actor::User { id, email } | crate::authz::Actor::Token { user: id, email, .. } => {
            Ok((format!("user:{id}"), email.clone()))
        }
        crate::authz::Actor::Anonymous => Ok(("anonymous".into(), "anonymous".into())),
    }
}

/// `409 draft_locked` unless the caller holds the lock (`required`) or nobody else does.
fn check_lock(draft: &Draft, caller: &Caller, required: bool) -> Result<(), ApiError> {
    let (me, _) = holder(caller)?;
    let now = crate::unix_ms();
    match draft.lock.as_ref().filter(|l| l.expires_ms > now) {
        Some(lock) if lock.holder == me => Ok(()),
        Some(lock) => Err(ApiError::conflict(
            "draft_locked",
            format!(
                "{} is editing flow `{}` (their lock lapses in {} s unless renewed); wait, or ask them to release it",
                lock.holder_email,
                draft.flow,
                (lock.expires_ms - now).max(0) / 1000 + 1
            ),
        )
        .with_details(serde_json::json!({ "holder": lock.holder, "holder_email": lock.holder_email, "expires_ms": lock.expires_ms }))),
        None if required => {
            Err(ApiError::conflict("draft_locked", format!("take the editor lock first: POST /api/v1/flows/{}/draft/lock", draft.flow))
                .with_details(serde_json::json!({ "holder": null })))
        }
        None => Ok(()),
    }
}

/// A summary of a change for the audit trail: the diff (environment values removed) and, since they run
/// on the LeanNodes host, the commands of the process nodes the new definition has.
pub(super) fn audit_summary(before: &FlowSpec, after: &FlowSpec) -> Value {
    let mut change = diff(before, after);
    change.redact_env();
    let mut value = serde_json::to_value(change).unwrap_or_default();
    let process: Vec<Value> = after
        .node
        .iter()
        .filter(|n| n.kind == NodeKind::Process)
        .map(|n| serde_json::json!({ "name": n.name, "command": n.command }))
        .collect();
    if let Some(object) = value.as_object_mut().filter(|_| !process.is_empty()) {
        object.insert("process_nodes".into(), Value::Array(process));
    }
    value
}

/// `POST /flows`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewFlow {
    /// Unique name across every source (letters, digits, `-`, `_`).
    name: String,
    /// Its first draft: a `[[flow]]` table as JSON (same keys as the TOML).
    #[schema(value_type = Object)]
    spec: Value,
}

/// A store-managed flow's record.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ManagedFlow {
    /// The flow.
    name: String,
    /// The version that serves (`null`: nothing serves yet).
    active_version: Option<u64>,
    /// The highest version committed.
    latest_version: u64,
    /// Who created it.
    created_by: String,
    /// When (Unix milliseconds).
    created_ms: i64,
}

impl ManagedFlow {
    pub(super) fn of(doc: FlowDoc) -> ManagedFlow {
        ManagedFlow {
            name: doc.name,
            active_version: doc.active,
            latest_version: doc.latest,
            created_by: doc.created_by,
            created_ms: doc.created_ms,
        }
    }
}

/// Creates a store-managed flow whose first draft is `spec`. Nothing serves until a version is
/// activated.
#[utoipa::path(post, path = "/api/v1/flows", tag = "lifecycle", request_body = NewFlow,
    responses((status = 201, body = ManagedFlow)))]
async fn create(
    Authed(principal, caller): Authed,
    State(lc): State<Lifecycle>,
    Body(new): Body<NewFlow>,
) -> Result<(StatusCode, Json<ManagedFlow>), ApiError> {
    check_new_name(&new.name)?;
    let spec = spec_of(&new.name, &new.spec)?;
    process_nodes_allowed(&principal, &spec)?;
    if let Some(existing) = lc.controller.flow(&new.name) {
        return Err(ApiError::conflict(
            "flow_exists",
            format!("a flow named `{}` already exists (source: {}); choose another name", new.name, existing.spec.origin.as_str()),
        ));
    }
    let now = crate::unix_ms();
    let (me, _) = holder(&caller)?;
    let doc = FlowDoc { name: new.name.clone(), active: None, latest: 0, created_by: me.clone(), created_ms: now };
    lc.store.records::<FlowDoc>().create(&doc).await.map_err(|e| match e {
        StoreError::Conflict { .. } => {
            ApiError::conflict("flow_exists", format!("a flow named `{}` already exists; choose another name", new.name))
        }
        other => other.into(),
    })?;
    let draft = Draft {
        flow: new.name.clone(),
        spec: stored(&spec),
        base: None,
        branched_from: None,
        revision: 1,
        saved_by: me,
        saved_ms: now,
        lock: None,
    };
    lc.store.records::<Draft>().upsert(&draft).await?;
    let summary = audit_summary(&FlowSpec::default(), &spec);
    lc.audit.by(&caller, "flow.create", format!("flow/{}", new.name), serde_json::json!({ "draft": summary })).await;
    Ok((StatusCode::CREATED, Json(ManagedFlow::of(doc))))
}

/// Deletes a store-managed flow: it stops serving (its workloads are stopped unless another flow uses
/// them), then its versions and draft are removed.
#[utoipa::path(delete, path = "/api/v1/flows/{name}", tag = "lifecycle",
    params(("name" = String, Path, description = "Flow name")), responses((status = 204, description = "Deleted")))]
async fn delete(Authed(_, caller): Authed, State(lc): State<Lifecycle>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    let current = lc.doc(&name).await?;
    lc.store.records::<FlowDoc>().delete(&name, Some(current.version)).await?;
    let status = lc.reloader.reload(ReloadCause::Store).await;
    let versions = lc.store.records::<FlowVersion>();
    for number in 1..=current.value.latest {
        versions.delete(&FlowVersion::key_of(&name, number), None).await.or_else(ignore_missing)?;
    }
    lc.store.records::<Draft>().delete(&name, None).await.or_else(ignore_missing)?;
    let sessions = lc.store.records::<TestSession>();
    for session in sessions.list(&format!("{name}/"), &leannodes_store::Page::first(500)).await?.items {
        sessions.delete(&session.value.key(), None).await.or_else(ignore_missing)?;
    }
    if current.value.latest > 0 {
        lc.reloader.reload(ReloadCause::Store).await;
    }
    lc.audit
        .by(
            &caller,
            "flow.delete",
            format!("flow/{name}"),
            serde_json::json!({ "active_version": current.value.active, "reload_ok": status.ok }),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

fn ignore_missing(e: StoreError) -> Result<(), ApiError> {
    match e {
        StoreError::NotFound { .. } => Ok(()),
        other => Err(other.into()),
    }
}

/// The draft, its lock, whether it is stale and what would stop its activation.
#[utoipa::path(get, path = "/api/v1/flows/{name}/draft", tag = "lifecycle",
    params(("name" = String, Path, description = "Flow name")), responses((status = 200, body = DraftView)))]
async fn get_draft(Authed(_, caller): Authed, State(lc): State<Lifecycle>, Path(name): Path<String>) -> Result<Json<DraftView>, ApiError> {
    let flow = lc.doc(&name).await?;
    let draft = lc.store.records::<Draft>().get(&name).await?.ok_or_else(|| no_draft(&name))?;
    Ok(Json(DraftView::of(draft.value, flow.value.active, &caller, &lc.reloader).await))
}

/// `PUT /flows/{name}/draft`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SaveDraft {
    /// The whole edited definition.
    #[schema(value_type = Object)]
    spec: Value,
    /// Rebase: the version the edit is now based on (must be the active one); default: unchanged.
    base: Option<u64>,
}

/// Auto-saves the draft. Needs the editor lock and `If-Match` with the draft's `version` (`409
/// version_conflict` when someone saved since).
#[utoipa::path(put, path = "/api/v1/flows/{name}/draft", tag = "lifecycle", request_body = SaveDraft,
    params(("name" = String, Path, description = "Flow name"), ("If-Match" = Option<String>, Header, description = "The draft's version")),
    responses((status = 200, body = DraftView)))]
async fn save_draft(
    Authed(principal, caller): Authed,
    State(lc): State<Lifecycle>,
    Path(name): Path<String>,
    if_match: IfMatch,
    Body(save): Body<SaveDraft>,
) -> Result<Json<DraftView>, ApiError> {
    let flow = lc.doc(&name).await?;
    let spec = spec_of(&name, &save.spec)?;
    process_nodes_allowed(&principal, &spec)?;
    if let Some(base) = save.base {
        if flow.value.active != Some(base) {
            return Err(ApiError::invalid_field(
                "/base",
                format!("a draft can only be rebased onto the active version ({:?}), not {base}", flow.value.active),
            ));
        }
    }
    let drafts = lc.store.records::<Draft>();
    let current = drafts.get(&name).await?.ok_or_else(|| no_draft(&name))?;
    check_lock(&current.value, &caller, true)?;
    if_match.check(current.value.revision)?;
    let before = parse_stored(&name, &current.value.spec)?;
    let (me, _) = holder(&caller)?;
    let next = Draft {
        spec: stored(&spec),
        base: save.base.or(current.value.base),
        revision: current.value.revision + 1,
        saved_by: me,
        saved_ms: crate::unix_ms(),
        ..current.value.clone()
    };
    // The store version guards against a save racing this one between the checks and the write.
    let saved = drafts.update(&next, current.version).await?;
    lc.audit
        .by(
            &caller,
            "flow.draft.save",
            format!("flow/{name}"),
            serde_json::json!({ "version": next.revision, "change": audit_summary(&before, &spec) }),
        )
        .await;
    Ok(Json(DraftView::of(saved.value, flow.value.active, &caller, &lc.reloader).await))
}

/// Discards the draft (nobody else may hold its lock).
#[utoipa::path(delete, path = "/api/v1/flows/{name}/draft", tag = "lifecycle",
    params(("name" = String, Path, description = "Flow name")), responses((status = 204, description = "Discarded")))]
async fn discard_draft(Authed(_, caller): Authed, State(lc): State<Lifecycle>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    lc.doc(&name).await?;
    let drafts = lc.store.records::<Draft>();
    let current = drafts.get(&name).await?.ok_or_else(|| no_draft(&name))?;
    check_lock(&current.value, &caller, false)?;
    drafts.delete(&name, Some(current.version)).await?;
    lc.audit.by(&caller, "flow.draft.discard", format!("flow/{name}"), serde_json::json!({ "version": current.value.revision })).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `?ttl=` of `POST /flows/{name}/draft/lock`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct LockQuery {
    /// How long (humantime, default `"5m"`, at most `"1h"`); renew before it lapses.
    ttl: Option<String>,
}

/// Takes or renews the editor lock (`409 draft_locked` naming the holder while someone else has it).
/// Without a draft, starts one from the active (else the latest) version.
#[utoipa::path(post, path = "/api/v1/flows/{name}/draft/lock", tag = "lifecycle",
    params(("name" = String, Path, description = "Flow name"), LockQuery), responses((status = 200, body = DraftView)))]
async fn lock(
    Authed(_, caller): Authed,
    State(lc): State<Lifecycle>,
    Path(name): Path<String>,
    Query(query): Query<LockQuery>,
) -> Result<Json<DraftView>, ApiError> {
    let ttl = ttl_of("ttl", query.ttl.as_deref(), LOCK_TTL, (Duration::from_secs(10), LOCK_MAX))?;
    let flow = lc.doc(&name).await?;
    let (me, email) = holder(&caller)?;
    let drafts = lc.store.records::<Draft>();
    let expires_ms = crate::unix_ms() + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let lock = DraftLock { holder: me.clone(), holder_email: email, expires_ms };
    let saved = match drafts.get(&name).await? {
        Some(current) => {
            check_lock(&current.value, &caller, false)?;
            drafts.update(&Draft { lock: Some(lock), ..current.value }, current.version).await?
        }
        None => {
            let from = flow.value.active.or((flow.value.latest > 0).then_some(flow.value.latest));
            let spec = match from {
                Some(n) => read_version(&*lc.store, &name, n).await?.spec,
                None => return Err(no_draft(&name)),
            };
            let draft = Draft {
                flow: name.clone(),
                spec,
                base: flow.value.active,
                branched_from: None,
                revision: 1,
                saved_by: me,
                saved_ms: crate::unix_ms(),
                lock: Some(lock),
            };
            drafts.create(&draft).await?
        }
    };
    lc.audit.by(&caller, "flow.draft.lock", format!("flow/{name}"), serde_json::json!({ "expires_ms": expires_ms })).await;
    Ok(Json(DraftView::of(saved.value, flow.value.active, &caller, &lc.reloader).await))
}

/// Releases the editor lock (the holder, or anyone once it has lapsed).
#[utoipa::path(delete, path = "/api/v1/flows/{name}/draft/lock", tag = "lifecycle",
    params(("name" = String, Path, description = "Flow name")), responses((status = 204, description = "Released")))]
async fn unlock(Authed(_, caller): Authed, State(lc): State<Lifecycle>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    lc.doc(&name).await?;
    let drafts = lc.store.records::<Draft>();
    let current = drafts.get(&name).await?.ok_or_else(|| no_draft(&name))?;
    check_lock(&current.value, &caller, false)?;
    if current.value.lock.is_some() {
        drafts.update(&Draft { lock: None, ..current.value }, current.version).await?;
        lc.audit.by(&caller, "flow.draft.unlock", format!("flow/{name}"), serde_json::json!({})).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /flows/{name}/draft/commit`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Commit {
    /// What changed, in one line.
    #[schema(min_length = 1, max_length = 200)]
    message: String,
    /// More about it.
    note: Option<String>,
    /// Also activate the new version (needs `flows.activate`); the commit is refused if it would not
    /// activate.
    #[serde(default)]
    activate: bool,
}

/// A version of a flow.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionView {
    /// The flow.
    flow: String,
    /// Its number, from 1.
    number: u64,
    /// The commit message.
    message: String,
    /// The note.
    note: String,
    /// Who committed it (`user:ID`).
    author: String,
    /// When (Unix milliseconds).
    created_ms: i64,
    /// The version that was active when its draft was started.
    base: Option<u64>,
    /// Whether it serves now.
    active: bool,
    /// The definition (left out of lists).
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    spec: Option<Value>,
}

impl VersionView {
    /// The version; with its definition (as `reader` may see it) when a reader is given.
    fn of(v: FlowVersion, active: Option<u64>, reader: Option<&Principal>) -> VersionView {
        VersionView {
            active: active == Some(v.number),
            spec: reader.map(|p| shown(v.spec.clone(), p)),
            flow: v.flow,
            number: v.number,
            message: v.message,
            note: v.note,
            author: v.author,
            created_ms: v.created_ms,
            base: v.base,
        }
    }
}

/// Commits the draft as the next immutable version (and removes the draft). A stale draft (another
/// version was activated since it was started) is refused with `409 draft_stale`.
#[utoipa::path(post, path = "/api/v1/flows/{name}/draft/commit", tag = "lifecycle", request_body = Commit,
    params(("name" = String, Path, description = "Flow name")), responses((status = 201, body = VersionView)))]
async fn commit(
    Authed(principal, caller): Authed,
    State(lc): State<Lifecycle>,
    Path(name): Path<String>,
    Body(commit): Body<Commit>,
) -> Result<(StatusCode, Json<VersionView>), ApiError> {
    if commit.message.trim().is_empty() || commit.message.len() > 200 {
        return Err(ApiError::invalid_field("/message", "write what changed in 1 to 200 characters"));
    }
    if commit.activate && !principal.can_on(Permission::FlowsActivate, &name) {
        return Err(ApiError::forbidden(format!("`activate: true` needs the `flows.activate` permission on flow `{name}`"))
            .with_details(serde_json::json!({ "permission": "flows.activate", "flow": name })));
    }
    let flow = lc.doc(&name).await?;
    let drafts = lc.store.records::<Draft>();
    let draft = drafts.get(&name).await?.ok_or_else(|| no_draft(&name))?;
    check_lock(&draft.value, &caller, false)?;
    if draft.value.base != flow.value.active {
        return Err(ApiError::conflict(
            "draft_stale",
            format!(
                "the draft was started from version {} but version {} is active now; rebase it (save it with `base` = {}) or discard it",
                draft.value.base.map_or("(none)".to_string(), |b| b.to_string()),
                flow.value.active.map_or("(none)".to_string(), |a| a.to_string()),
                flow.value.active.map_or("null".to_string(), |a| a.to_string()),
            ),
        )
        .with_details(serde_json::json!({ "active_version": flow.value.active, "base": draft.value.base })));
    }
    let spec = parse_stored(&name, &draft.value.spec)?;
    process_nodes_allowed(&principal, &spec)?;
    if commit.activate {
        lc.reloader.check(as_store(&name, spec.clone())).await.map_err(activation_error)?;
    }
    let number = flow.value.latest + 1;
    let version = FlowVersion {
        flow: name.clone(),
        number,
        spec: draft.value.spec.clone(),
        author: draft.value.saved_by.clone(),
        message: commit.message.trim().to_string(),
        note: commit.note.unwrap_or_default(),
        base: draft.value.base,
        created_ms: crate::unix_ms(),
    };
    // Claiming the number on the flow record first: of two commits racing, one gets `version_conflict`.
    let docs = lc.store.records::<FlowDoc>();
    docs.update(&FlowDoc { latest: number, ..flow.value.clone() }, flow.version).await?;
    lc.store.records::<FlowVersion>().create(&version).await?;
    drafts.delete(&name, None).await.or_else(ignore_missing)?;
    let previous = match flow.value.active {
        Some(n) => parse_stored(&name, &read_version(&*lc.store, &name, n).await?.spec)?,
        None => FlowSpec::default(),
    };
    lc.audit
        .by(
            &caller,
            "flow.commit",
            format!("flow/{name}"),
            serde_json::json!({ "version": number, "message": version.message, "change": audit_summary(&previous, &spec) }),
        )
        .await;
    let mut active = flow.value.active;
    if commit.activate {
        activate_version(&lc.reloader, &lc.audit, &caller, &name, flow.value.active, number).await?;
        active = Some(number);
    }
    Ok((StatusCode::CREATED, Json(VersionView::of(version, active, Some(&principal)))))
}

/// Activates through the reload actor and audits it.
async fn activate_version(
    reloader: &Reloader,
    audit: &Audit,
    caller: &Caller,
    name: &str,
    from: Option<u64>,
    number: u64,
) -> Result<leannodes_control::ReloadStatus, ApiError> {
    let status = reloader.activate(name, number).await.map_err(activation_error)?;
    audit
        .by(caller, "flow.activate", format!("flow/{name}"), serde_json::json!({ "from": from, "to": number, "reload_ok": status.ok }))
        .await;
    Ok(status)
}

/// `?limit=&cursor=` of the version list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct VersionPaging {
    /// Items per page, 1 to 500 (default 50).
    limit: Option<u32>,
    /// The `next` of the previous page.
    cursor: Option<String>,
}

/// A page of versions, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionList {
    /// The versions (without their definitions).
    items: Vec<VersionView>,
    /// Cursor of the next page.
    next: Option<String>,
}

/// The versions of a flow, oldest first.
#[utoipa::path(get, path = "/api/v1/flows/{name}/versions", tag = "lifecycle",
    params(("name" = String, Path, description = "Flow name"), VersionPaging), responses((status = 200, body = VersionList)))]
async fn versions(
    State(lc): State<Lifecycle>,
    Path(name): Path<String>,
    Query(paging): Query<VersionPaging>,
) -> Result<Json<VersionList>, ApiError> {
    let flow = lc.doc(&name).await?;
    let page = crate::extract::Paging { limit: paging.limit, cursor: paging.cursor }.page()?;
    let listing = lc.store.records::<FlowVersion>().list(&format!("{name}/"), &page).await?;
    let items = listing.items.into_iter().map(|v| VersionView::of(v.value, flow.value.active, None)).collect();
    Ok(Json(VersionList { items, next: listing.next }))
}

/// One version with its definition.
#[utoipa::path(get, path = "/api/v1/flows/{name}/versions/{number}", tag = "lifecycle",
    params(("name" = String, Path, description = "Flow name"), ("number" = u64, Path, description = "Version number")),
    responses((status = 200, body = VersionView)))]
async fn version(
    Authed(principal, _): Authed,
    State(lc): State<Lifecycle>,
    Path((name, number)): Path<(String, u64)>,
) -> Result<Json<VersionView>, ApiError> {
    let flow = lc.doc(&name).await?;
    Ok(Json(VersionView::of(read_version(&*lc.store, &name, number).await?, flow.value.active, Some(&principal))))
}

/// The result of an activation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Activation {
    /// The flow.
    flow: String,
    /// The version active before.
    previous_version: Option<u64>,
    /// The version active now.
    active_version: u64,
    /// Whether the new routes were installed (`false`: see `errors`; the store records the activation and
    /// the next reload retries).
    applied: bool,
    /// What went wrong while applying.
    errors: Vec<String>,
}

/// Activates a version (roll forward, or back to an older one) after validating it with everything
/// else that serves; an invalid version is refused with `422 invalid_flow` listing every problem, and
/// the active version keeps serving.
#[utoipa::path(post, path = "/api/v1/flows/{name}/versions/{number}/activate", tag = "lifecycle",
    params(("name" = String, Path, description = "Flow name"), ("number" = u64, Path, description = "Version number")),
    responses((status = 200, body = Activation)))]
async fn activate(
    Authed(principal, caller): Authed,
    State(lc): State<Lifecycle>,
    Path((name, number)): Path<(String, u64)>,
) -> Result<Json<Activation>, ApiError> {
    let flow = lc.doc(&name).await?;
    let version = read_version(&*lc.store, &name, number).await?;
    process_nodes_allowed(&principal, &parse_stored(&name, &version.spec)?)?;
    let status = activate_version(&lc.reloader, &lc.audit, &caller, &name, flow.value.active, number).await?;
    Ok(Json(Activation {
        flow: name,
        previous_version: flow.value.active,
        active_version: number,
        applied: status.ok,
        errors: status.errors,
    }))
}

/// Replaces the draft with a copy of a version, based on the active version (nobody else may hold the
/// lock; the caller takes it).
#[utoipa::path(post, path = "/api/v1/flows/{name}/versions/{number}/branch", tag = "lifecycle",
    params(("name" = String, Path, description = "Flow name"), ("number" = u64, Path, description = "Version number")),
    responses((status = 200, body = DraftView)))]
async fn branch(
    Authed(principal, caller): Authed,
    State(lc): State<Lifecycle>,
    Path((name, number)): Path<(String, u64)>,
) -> Result<Json<DraftView>, ApiError> {
    let flow = lc.doc(&name).await?;
    let version = read_version(&*lc.store, &name, number).await?;
    process_nodes_allowed(&principal, &parse_stored(&name, &version.spec)?)?;
    let (me, email) = holder(&caller)?;
    let drafts = lc.store.records::<Draft>();
    let now = crate::unix_ms();
    let lock = DraftLock { holder: me.clone(), holder_email: email, expires_ms: now + i64::try_from(LOCK_TTL.as_millis()).unwrap_or(0) };
    let draft = |revision: u64| Draft {
        flow: name.clone(),
        spec: version.spec.clone(),
        base: flow.value.active,
        branched_from: Some(number),
        revision,
        saved_by: me.clone(),
        saved_ms: now,
        lock: Some(lock.clone()),
    };
    let saved = match drafts.get(&name).await? {
        Some(current) => {
            check_lock(&current.value, &caller, false)?;
            drafts.update(&draft(current.value.revision + 1), current.version).await?
        }
        None => drafts.create(&draft(1)).await?,
    };
    lc.audit.by(&caller, "flow.branch", format!("flow/{name}"), serde_json::json!({ "from_version": number })).await;
    Ok(Json(DraftView::of(saved.value, flow.value.active, &caller, &lc.reloader).await))
}

/// `?from=&to=` of a diff: version numbers, or `draft`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiffQuery {
    /// The older side: a version number or `draft`.
    from: String,
    /// The newer side: a version number or `draft`.
    to: String,
}

/// The difference between two versions (or a version and the draft).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DiffView {
    /// The flow.
    flow: String,
    /// The older side.
    from: String,
    /// The newer side.
    to: String,
    /// What changed.
    #[serde(flatten)]
    diff: FlowDiff,
}

/// What changes from one definition to another: fields by path, nodes added, removed and changed,
/// edges added and removed.
#[utoipa::path(get, path = "/api/v1/flows/{name}/diff", tag = "lifecycle",
    params(("name" = String, Path, description = "Flow name"), DiffQuery), responses((status = 200, body = DiffView)))]
async fn flow_diff(
    Authed(principal, _): Authed,
    State(lc): State<Lifecycle>,
    Path(name): Path<String>,
    Query(query): Query<DiffQuery>,
) -> Result<Json<DiffView>, ApiError> {
    lc.doc(&name).await?;
    let side = |which: &'static str, text: String| {
        let store = lc.store.clone();
        let name = name.clone();
        async move {
            let value = if text == "draft" {
                store.records::<Draft>().get(&name).await?.ok_or_else(|| no_draft(&name))?.value.spec
            } else {
                let number = text.parse::<u64>().map_err(|_| {
                    ApiError::bad_request("invalid_query", format!("`{which}` must be a version number or `draft`, not `{text}`"))
                })?;
                read_version(&*store, &name, number).await?.spec
            };
            parse_stored(&name, &value)
        }
    };
    let from = side("from", query.from.clone()).await?;
    let to = side("to", query.to.clone()).await?;
    let mut change = diff(&from, &to);
    if !principal.is_admin() {
        change.redact_env();
    }
    Ok(Json(DiffView { flow: name, from: query.from, to: query.to, diff: change }))
}

/// How long a test session lasts when no `ttl` is asked for.
const SESSION_TTL: Duration = Duration::from_secs(3600);
/// The longest test session.
const SESSION_MAX: Duration = Duration::from_secs(7 * 24 * 3600);

/// `POST /flows/{name}/versions/{number}/test-session`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSession {
    /// How long it serves (humantime, default `"1h"`, from `"1s"` to `"7d"`).
    ttl: Option<String>,
}

/// A test session.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionView {
    /// The flow.
    flow: String,
    /// The version it serves.
    version: u64,
    /// The host that reaches it through the proxy.
    host: String,
    /// The header that reaches it on the flow's own hosts.
    header: String,
    /// Who started it (`user:ID`).
    created_by: String,
    /// When it ends (Unix milliseconds).
    expires_ms: i64,
}

impl SessionView {
    fn of(s: TestSession) -> SessionView {
        SessionView {
            header: format!("X-LeanNodes-Version: {}", s.version),
            flow: s.flow,
            version: s.version,
            host: s.host,
            created_by: s.created_by,
            expires_ms: s.expires_ms,
        }
    }
}

/// The test host of version `number` of `flow`: `v7--shop.test-sessions.` + the flow's first host
/// (without a leading `*.`).
fn session_host(flow: &str, number: u64, spec: &FlowSpec) -> String {
    let base = spec.hosts.first().map_or("localhost", |h| h.trim_start_matches("*."));
    format!("v{number}--{flow}.test-sessions.{base}").to_ascii_lowercase()
}

/// Serves a version on a test host (and to requests for the flow with `X-LeanNodes-Version: N`) until
/// the session ends, with its own wake and drain, without touching the active version. Asking again
/// extends it.
#[utoipa::path(post, path = "/api/v1/flows/{name}/versions/{number}/test-session", tag = "lifecycle", request_body = NewSession,
    params(("name" = String, Path, description = "Flow name"), ("number" = u64, Path, description = "Version number")),
    responses((status = 201, body = SessionView)))]
async fn start_session(
    Authed(principal, caller): Authed,
    State(lc): State<Lifecycle>,
    Path((name, number)): Path<(String, u64)>,
    Body(new): Body<NewSession>,
) -> Result<(StatusCode, Json<SessionView>), ApiError> {
    let ttl = ttl_of("/ttl", new.ttl.as_deref(), SESSION_TTL, (Duration::from_secs(1), SESSION_MAX))?;
    lc.doc(&name).await?;
    let version = read_version(&*lc.store, &name, number).await?;
    let mut spec = parse_stored(&name, &version.spec)?;
    process_nodes_allowed(&principal, &spec)?;
    let host = session_host(&name, number, &spec);
    let expires_ms = crate::unix_ms() + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    spec.name = FlowOrigin::session_name(&name, number);
    spec.hosts = vec![host.clone()];
    let origin = FlowOrigin::TestSession { flow: name.clone(), version: number, expires_ms };
    lc.reloader.check(leannodes_config::SourcedFlow { origin, spec }).await.map_err(|e| match e {
        ActivateError::Invalid { problems, .. } => invalid(&name, Some(number), &problems),
        other => activation_error(other),
    })?;
    let (me, _) = holder(&caller)?;
    let session = TestSession { flow: name.clone(), version: number, host, created_by: me, created_ms: crate::unix_ms(), expires_ms };
    lc.store.records::<TestSession>().upsert(&session).await?;
    let status = lc.reloader.reload(ReloadCause::Store).await;
    if !status.ok {
        return Err(ApiError::internal(format!("the test session was recorded but could not be applied: {}", status.errors.join("; "))));
    }
    lc.audit
        .by(
            &caller,
            "flow.test_session.start",
            format!("flow/{name}"),
            serde_json::json!({ "version": number, "host": session.host, "expires_ms": expires_ms }),
        )
        .await;
    Ok((StatusCode::CREATED, Json(SessionView::of(session))))
}

/// The test sessions of a flow.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionList {
    /// By version.
    items: Vec<SessionView>,
}

/// The test sessions of a flow that have not ended.
#[utoipa::path(get, path = "/api/v1/flows/{name}/test-sessions", tag = "lifecycle",
    params(("name" = String, Path, description = "Flow name")), responses((status = 200, body = SessionList)))]
async fn sessions(State(lc): State<Lifecycle>, Path(name): Path<String>) -> Result<Json<SessionList>, ApiError> {
    lc.doc(&name).await?;
    let listing = lc.store.records::<TestSession>().list(&format!("{name}/"), &leannodes_store::Page::first(500)).await?;
    Ok(Json(SessionList { items: listing.items.into_iter().map(|v| SessionView::of(v.value)).collect() }))
}

/// Ends a test session now.
#[utoipa::path(delete, path = "/api/v1/flows/{name}/test-sessions/{number}", tag = "lifecycle",
    params(("name" = String, Path, description = "Flow name"), ("number" = u64, Path, description = "Version number")),
    responses((status = 204, description = "Ended")))]
async fn stop_session(
    Authed(_, caller): Authed,
    State(lc): State<Lifecycle>,
    Path((name, number)): Path<(String, u64)>,
) -> Result<StatusCode, ApiError> {
    lc.doc(&name).await?;
    lc.store.records::<TestSession>().delete(&TestSession::key_of(&name, number), None).await.map_err(|e| match e {
        StoreError::NotFound { .. } => {
            ApiError::not_found("unknown_test_session", format!("flow `{name}` has no test session of version {number}"))
        }
        other => other.into(),
    })?;
    lc.reloader.reload(ReloadCause::Store).await;
    lc.audit.by(&caller, "flow.test_session.stop", format!("flow/{name}"), serde_json::json!({ "version": number })).await;
    Ok(StatusCode::NO_CONTENT)
}
