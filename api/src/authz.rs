//! Authorization: permissions, roles, and who may do what.
//!
//! A caller's permissions come from roles: instance-wide roles (granted to the user directly, through
//! its groups, or by its SSO groups' role mapping) apply to every flow; per-flow grants give a role on
//! one flow. Built-in roles: `admin` (everything), `operator` (read + operate), `editor` (read + edit),
//! `viewer` (read); custom roles are named permission sets kept in the store. A personal access token
//! acts with its user's permissions limited to its scopes. Every route declares a [`Rule`]; the router
//! refuses a request the rule does not allow before the handler runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use leannodes_store::{FlowAcl, Group, Page, Role, Store, User};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

/// One permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub enum Permission {
    /// See flows, their state, executions and events.
    #[serde(rename = "flows.read")]
    FlowsRead,
    /// Warm, drain, pin, unpin, disable and enable flows.
    #[serde(rename = "flows.operate")]
    FlowsOperate,
    /// Edit drafts and commit versions.
    #[serde(rename = "flows.edit")]
    FlowsEdit,
    /// Activate versions.
    #[serde(rename = "flows.activate")]
    FlowsActivate,
    /// Grant access to flows.
    #[serde(rename = "flows.admin")]
    FlowsAdmin,
    /// Manage users, groups, roles and invitations.
    #[serde(rename = "users.manage")]
    UsersManage,
    /// See and change instance settings.
    #[serde(rename = "settings.manage")]
    SettingsManage,
    /// Read the audit log.
    #[serde(rename = "audit.read")]
    AuditRead,
    /// Manage notification routes.
    #[serde(rename = "notifications.manage")]
    NotificationsManage,
    /// See and revoke other users' access tokens.
    #[serde(rename = "tokens.manage")]
    TokensManage,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 10] = [
        Permission::FlowsRead,
        Permission::FlowsOperate,
        Permission::FlowsEdit,
        Permission::FlowsActivate,
        Permission::FlowsAdmin,
        Permission::UsersManage,
        Permission::SettingsManage,
        Permission::AuditRead,
        Permission::NotificationsManage,
        Permission::TokensManage,
    ];

    /// The stored name (`flows.read`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::FlowsRead => "flows.read",
            Permission::FlowsOperate => "flows.operate",
            Permission::FlowsEdit => "flows.edit",
            Permission::FlowsActivate => "flows.activate",
            Permission::FlowsAdmin => "flows.admin",
            Permission::UsersManage => "users.manage",
            Permission::SettingsManage => "settings.manage",
            Permission::AuditRead => "audit.read",
            Permission::NotificationsManage => "notifications.manage",
            Permission::TokensManage => "tokens.manage",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether a per-flow grant can give this permission (the `flows.*` ones).
    pub fn is_flow_scoped(self) -> bool {
        matches!(
            self,
            Permission::FlowsRead | Permission::FlowsOperate | Permission::FlowsEdit | Permission::FlowsActivate | Permission::FlowsAdmin
        )
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of permissions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet(u16);

impl PermissionSet {
    /// No permission.
    pub const EMPTY: PermissionSet = PermissionSet(0);

    /// Every permission.
    pub fn all() -> PermissionSet {
        Permission::ALL.into_iter().collect()
    }

    /// Whether `p` is in the set.
    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    /// Both sets together.
    pub fn union(self, other: PermissionSet) -> PermissionSet {
        PermissionSet(self.0 | other.0)
    }

    /// What both sets have.
    pub fn intersect(self, other: PermissionSet) -> PermissionSet {
        PermissionSet(self.0 & other.0)
    }

    /// Whether every permission of `self` is in `other`.
    pub fn is_subset(self, other: PermissionSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// Only the permissions a per-flow grant can give.
    pub fn flow_scoped(self) -> PermissionSet {
        self.iter().filter(|p| p.is_flow_scoped()).collect()
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The permissions, in [`Permission::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL.into_iter().filter(move |p| self.contains(*p))
    }

    /// Parses stored names; unknown names are ignored (a custom role written by a newer version).
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a String>) -> PermissionSet {
        names.into_iter().filter_map(|n| Permission::parse(n)).collect()
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        PermissionSet(iter.into_iter().fold(0, |acc, p| acc | p.bit()))
    }
}

/// The built-in roles, with their permissions.
pub fn built_in_roles() -> [(&'static str, &'static str, PermissionSet); 4] {
    use Permission::*;
    [
        ("admin", "Everything.", PermissionSet::all()),
        ("operator", "See flows and operate them (warm, drain, pin, disable).", [FlowsRead, FlowsOperate].into_iter().collect()),
        ("editor", "See flows and edit their drafts.", [FlowsRead, FlowsEdit].into_iter().collect()),
        ("viewer", "See flows, executions and events.", [FlowsRead].into_iter().collect()),
    ]
}

/// Whether `name` is a built-in role.
pub(crate) fn is_built_in(name: &str) -> bool {
    built_in_roles().iter().any(|(n, _, _)| *n == name)
}

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone, signed in or not (health, login, the OpenAPI document).
    Public,
    /// Any signed-in caller (their own profile, tokens, sign-out).
    Authenticated,
    /// A permission instance-wide.
    Global(Permission),
    /// A permission on the flow named by the `{name}` path parameter (instance-wide or by a grant).
    Flow(Permission),
}

impl Rule {
    /// Text for the route table in the docs and error messages.
    pub fn describe(self) -> String {
        match self {
            Rule::Public => "public".into(),
            Rule::Authenticated => "signed in".into(),
            Rule::Global(p) => p.as_str().into(),
            Rule::Flow(p) => format!("{} on the flow", p.as_str()),
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A user signed in with a session.
    User {
        /// User id.
        id: String,
        /// E-mail address.
        email: String,
    },
    /// A user's personal access token.
    Token {
        /// Token id.
        id: String,
        /// The user's id.
        user: String,
        /// The user's e-mail address.
        email: String,
    },
    /// Anyone, with `[server.auth] mode = "none"` (loopback only).
    Anonymous,
}

impl Actor {
    /// The audit actor (`user:ID`, `token:ID`, `anonymous`).
    pub fn audit_name(&self) -> String {
        match self {
            Actor::User { id, .. } => format!("user:{id}"),
            Actor::Token { id, .. } => format!("token:{id}"),
            Actor::Anonymous => "anonymous".into(),
        }
    }

    /// The user behind it, when there is one.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Actor::User { id, .. } | Actor::Token { user: id, .. } => Some(id),
            Actor::Anonymous => None,
        }
    }
}

/// An authenticated caller and what it may do.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Who.
    pub actor: Actor,
    /// Permissions on everything.
    pub global: PermissionSet,
    /// Extra permissions per flow (from grants).
    pub flows: HashMap<String, PermissionSet>,
    /// A token's scopes (`None`: a session, all of the user's permissions).
    pub scopes: Option<PermissionSet>,
}

impl Principal {
    /// Everything, for `mode = "none"`.
    pub fn anonymous_admin() -> Principal {
        Principal { actor: Actor::Anonymous, global: PermissionSet::all(), flows: HashMap::new(), scopes: None }
    }

    /// Whether the caller is an administrator: every permission, instance-wide (the `admin` role, and
    /// for a token, scopes that do not narrow it).
    pub fn is_admin(&self) -> bool {
        PermissionSet::all().is_subset(self.global)
    }

    /// Whether the caller has `p` instance-wide.
    pub fn can(&self, p: Permission) -> bool {
        self.global.contains(p)
    }

    /// Whether the caller has `p` on `flow`.
    pub fn can_on(&self, p: Permission, flow: &str) -> bool {
        self.global.contains(p) || self.flows.get(flow).is_some_and(|s| s.contains(p))
    }

    /// The caller's permissions on `flow`.
    pub fn on(&self, flow: &str) -> PermissionSet {
        self.global.union(self.flows.get(flow).copied().unwrap_or_default())
    }

    /// Checks a route's rule; `flow` is the `{name}` path parameter, when the route has one.
    pub fn check(&self, rule: Rule, flow: Option<&str>) -> Result<(), ApiError> {
        match rule {
            Rule::Public | Rule::Authenticated => Ok(()),
            Rule::Global(p) if self.can(p) => Ok(()),
            Rule::Global(p) => Err(ApiError::forbidden(format!("this needs the `{}` permission", p.as_str()))
                .with_details(serde_json::json!({ "permission": p.as_str() }))),
            Rule::Flow(p) => {
                let flow = flow.unwrap_or_default();
                if self.can_on(p, flow) {
                    Ok(())
                } else if !self.can_on(Permission::FlowsRead, flow) {
                    // Flows the caller may not see answer as if they did not exist.
                    Err(ApiError::not_found("unknown_flow", format!("no flow named `{flow}`")))
                } else {
                    Err(ApiError::forbidden(format!("this needs the `{}` permission on flow `{flow}`", p.as_str()))
                        .with_details(serde_json::json!({ "permission": p.as_str(), "flow": flow })))
                }
            }
        }
    }
}

/// Roles, groups and grants as read from the store, refreshed when older than a second or after a
/// change made here. Other replicas' changes show within that second.
#[derive(Debug, Default)]
pub struct Policy {
    snapshot: Mutex<Option<(Instant, Arc<Snapshot>)>>,
}

/// How long a policy snapshot is used before it is read again.
const POLICY_TTL: Duration = Duration::from_secs(1);

/// The policy at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Role name → permissions (built-in and custom).
    pub roles: BTreeMap<String, PermissionSet>,
    /// User id → roles from its groups.
    pub group_roles: HashMap<String, Vec<String>>,
    /// User id → its groups.
    pub groups_of: HashMap<String, Vec<String>>,
    /// Subject (`user:ID`, `group:NAME`) → (flow, role) grants.
    pub grants: HashMap<String, Vec<(String, String)>>,
}

impl Snapshot {
    /// The permissions of a role (none for an unknown role).
    pub fn role(&self, name: &str) -> PermissionSet {
        self.roles.get(name).copied().unwrap_or_default()
    }

    /// A user's principal, limited to `scopes` for a token.
    pub fn principal(&self, actor: Actor, user: &User, scopes: Option<PermissionSet>) -> Principal {
        let limit = scopes.unwrap_or_else(PermissionSet::all);
        let mut global = PermissionSet::EMPTY;
        let groups = self.group_roles.get(&user.id).map(Vec::as_slice).unwrap_or_default();
        for role in user.roles.iter().chain(&user.sso_roles).chain(groups) {
            global = global.union(self.role(role));
        }
        let mut flows: HashMap<String, PermissionSet> = HashMap::new();
        let subjects = std::iter::once(format!("user:{}", user.id))
            .chain(self.groups_of.get(&user.id).into_iter().flatten().map(|g| format!("group:{g}")));
        for subject in subjects {
            for (flow, role) in self.grants.get(&subject).into_iter().flatten() {
                let set = flows.entry(flow.clone()).or_default();
                *set = set.union(self.role(role).flow_scoped().intersect(limit));
            }
        }
        flows.retain(|_, s| !s.is_empty());
        Principal { actor, global: global.intersect(limit), flows, scopes }
    }
}

impl Policy {
    /// The current snapshot (read from the store when stale).
    pub async fn snapshot(&self, store: &dyn Store) -> Result<Arc<Snapshot>, ApiError> {
        if let Some((at, snap)) = self.snapshot.lock().as_ref() {
            if at.elapsed() < POLICY_TTL {
                return Ok(snap.clone());
            }
        }
        let snap = Arc::new(load(store).await?);
        *self.snapshot.lock() = Some((Instant::now(), snap.clone()));
        Ok(snap)
    }

    /// Forgets the snapshot (after a change to roles, groups, grants or users).
    pub fn invalidate(&self) {
        *self.snapshot.lock() = None;
    }
}

/// Every record of a family (all pages).
pub(crate) async fn all<T: leannodes_store::Record>(store: &dyn Store) -> Result<Vec<T>, ApiError> {
    let mut out = Vec::new();
    let mut page = Page::first(500);
    loop {
        let listing = store.records::<T>().list("", &page).await?;
        out.extend(listing.items.into_iter().map(|v| v.value));
        match listing.next {
            Some(next) => page.after = Some(next),
            None => return Ok(out),
        }
    }
}

async fn load(store: &dyn Store) -> Result<Snapshot, ApiError> {
    let mut snap = Snapshot::default();
    for (name, _, set) in built_in_roles() {
        snap.roles.insert(name.to_string(), set);
    }
    for role in all::<Role>(store).await? {
        snap.roles.entry(role.name.clone()).or_insert_with(|| PermissionSet::from_names(&role.permissions));
    }
    for group in all::<Group>(store).await? {
        for member in &group.members {
            snap.group_roles.entry(member.clone()).or_default().extend(group.roles.iter().cloned());
            snap.groups_of.entry(member.clone()).or_default().push(group.name.clone());
        }
    }
    for acl in all::<FlowAcl>(store).await? {
        for grant in &acl.grants {
            snap.grants.entry(grant.subject.clone()).or_default().push((acl.flow.clone(), grant.role.clone()));
        }
    }
    Ok(snap)
}

#[cfg(test)]
mod tests;
