//! The generic record families (flows, versions, drafts, users, …) and a typed view over them.
//!
//! Every backend stores these the same way: a JSON document under `(family, key)` with a version for
//! optimistic concurrency and an optional expiry. [`Records`] turns that into typed create / read /
//! update / delete / list operations for each record type.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Expect, Item, Listing, Page, Put, Result, Store, StoreError};

/// The families of generic records. Their names are stored; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// Flows defined through the management API ([`FlowDoc`]).
    Flows,
    /// Published versions of flows ([`FlowVersion`]).
    Versions,
    /// Unpublished edits of flows ([`Draft`]).
    Drafts,
    /// Users ([`User`]).
    Users,
    /// Pending invitations ([`Invitation`]), expiring.
    Invitations,
    /// Groups of users ([`Group`]).
    Groups,
    /// Named sets of permissions ([`Role`]).
    Roles,
    /// Per-flow access grants ([`FlowAcl`], one record per flow).
    FlowAcls,
    /// Instance settings ([`Setting`]).
    Settings,
    /// Personal access tokens ([`AccessToken`]), optionally expiring.
    AccessTokens,
    /// Notification routes managed through the API ([`NotificationRecord`]).
    NotificationRoutes,
    /// Signed-in browser sessions ([`Session`]), expiring.
    Sessions,
    /// Login names (e-mail addresses, SSO identities) of users ([`Login`]): unique, so creating one
    /// claims the name.
    Logins,
    /// Failed-login counters per account and per client address ([`Throttle`]), expiring.
    Throttles,
    /// Single-sign-on logins under way ([`AuthRequest`]), expiring.
    AuthRequests,
    /// Versions of flows served on a test host until they expire ([`TestSession`]).
    TestSessions,
    /// When each flow slept, for the savings estimate ([`SleepLedger`]).
    SleepLedgers,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 17] = [
        Family::Flows,
        Family::Versions,
        Family::Drafts,
        Family::Users,
        Family::Invitations,
        Family::Groups,
        Family::Roles,
        Family::FlowAcls,
        Family::Settings,
        Family::AccessTokens,
        Family::NotificationRoutes,
        Family::Sessions,
        Family::Logins,
        Family::Throttles,
        Family::AuthRequests,
        Family::TestSessions,
        Family::SleepLedgers,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Flows => "flows",
            Family::Versions => "versions",
            Family::Drafts => "drafts",
            Family::Users => "users",
            Family::Invitations => "invitations",
            Family::Groups => "groups",
            Family::Roles => "roles",
            Family::FlowAcls => "flow_acls",
            Family::Settings => "settings",
            Family::AccessTokens => "access_tokens",
            Family::NotificationRoutes => "notification_routes",
            Family::Sessions => "sessions",
            Family::Logins => "logins",
            Family::Throttles => "throttles",
            Family::AuthRequests => "auth_requests",
            Family::TestSessions => "test_sessions",
            Family::SleepLedgers => "sleep_ledgers",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record type stored in one [`Family`].
pub trait Record: Serialize + DeserializeOwned + Send + Sync {
    /// Its family.
    const FAMILY: Family;

    /// Its key. Keys of records that belong to a flow start with `FLOW/`, so listing by that prefix
    /// finds them.
    fn key(&self) -> String;

    /// When it expires (`None`: never).
    fn expires_ms(&self) -> Option<i64> {
        None
    }
}

/// A typed record with its version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Versioned<T> {
    /// The record.
    pub value: T,
    /// Its version (give it back to update or delete it).
    pub version: u64,
    /// When it was last written.
    pub updated_ms: i64,
}

/// Typed operations on one family; get one with [`Records::of`].
pub struct Records<'a, T> {
    store: &'a dyn Store,
    kind: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Records<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records").field("family", &std::any::type_name::<T>()).finish()
    }
}

impl<'a, T: Record> Records<'a, T> {
    /// The records of `T`'s family in `store`.
    pub fn of(store: &'a dyn Store) -> Records<'a, T> {
        Records { store, kind: PhantomData }
    }

    fn decode(item: Item) -> Result<Versioned<T>> {
        let value = serde_json::from_value(item.value)
            .map_err(|e| StoreError::Corrupt { what: T::FAMILY.as_str(), value: format!("{}: {e}", item.key) })?;
        Ok(Versioned { value, version: item.version, updated_ms: item.updated_ms })
    }

    async fn put(&self, record: &T, expect: Expect) -> Result<Versioned<T>> {
        let value = serde_json::to_value(record)
            .map_err(|e| StoreError::Corrupt { what: T::FAMILY.as_str(), value: format!("cannot serialize: {e}") })?;
        let key = record.key();
        let item = self.store.put(Put { family: T::FAMILY, key: &key, value: &value, expect, expires_ms: record.expires_ms() }).await?;
        Self::decode(item)
    }

    /// Creates the record; [`StoreError::Conflict`] if its key exists.
    pub async fn create(&self, record: &T) -> Result<Versioned<T>> {
        self.put(record, Expect::Absent).await
    }

    /// Replaces the record if it is still at `version`; [`StoreError::Conflict`] if someone wrote it
    /// since, [`StoreError::NotFound`] if it is gone.
    pub async fn update(&self, record: &T, version: u64) -> Result<Versioned<T>> {
        self.put(record, Expect::Version(version)).await
    }

    /// Creates or replaces the record, whatever is there.
    pub async fn upsert(&self, record: &T) -> Result<Versioned<T>> {
        self.put(record, Expect::Any).await
    }

    /// The record under `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Versioned<T>>> {
        self.store.get(T::FAMILY, key).await?.map(Self::decode).transpose()
    }

    /// Deletes the record under `key`, if it is still at `version` (when given).
    pub async fn delete(&self, key: &str, version: Option<u64>) -> Result<()> {
        self.store.delete(T::FAMILY, key, version.map_or(Expect::Any, Expect::Version)).await
    }

    /// Records whose key starts with `prefix`, in key order.
    pub async fn list(&self, prefix: &str, page: &Page) -> Result<Listing<Versioned<T>>> {
        self.store.list(T::FAMILY, prefix, page).await?.try_map(Self::decode)
    }
}

/// A flow managed through the API (`source = "store"`): which of its versions serves. Its content lives
/// in its [`FlowVersion`]s and its [`Draft`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowDoc {
    /// Flow name (the key).
    pub name: String,
    /// The version that serves (`None`: nothing serves yet).
    pub active: Option<u64>,
    /// The highest version number committed so far (0: none).
    pub latest: u64,
    /// Who created it (`user:ID`).
    pub created_by: String,
    /// When (Unix milliseconds).
    pub created_ms: i64,
}

impl Record for FlowDoc {
    const FAMILY: Family = Family::Flows;
    fn key(&self) -> String {
        self.name.clone()
    }
}

/// One immutable, numbered version of a store-managed flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowVersion {
    /// Flow name.
    pub flow: String,
    /// Version number, from 1.
    pub number: u64,
    /// The flow (a `[[flow]]` table as JSON).
    pub spec: serde_json::Value,
    /// Who committed it (`user:ID`).
    pub author: String,
    /// The commit message.
    pub message: String,
    /// A longer note.
    #[serde(default)]
    pub note: String,
    /// The active version when its draft was started (`None`: none was).
    #[serde(default)]
    pub base: Option<u64>,
    /// When (Unix milliseconds).
    pub created_ms: i64,
}

impl FlowVersion {
    /// The key of version `number` of `flow`.
    pub fn key_of(flow: &str, number: u64) -> String {
        // Zero-padded so that key order is version order.
        format!("{flow}/{number:020}")
    }
}

impl Record for FlowVersion {
    const FAMILY: Family = Family::Versions;
    fn key(&self) -> String {
        FlowVersion::key_of(&self.flow, self.number)
    }
}

/// The one mutable draft of a store-managed flow, with its editor lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    /// Flow name (the key).
    pub flow: String,
    /// The edited flow (a `[[flow]]` table as JSON).
    pub spec: serde_json::Value,
    /// The active version when the draft was started or last rebased: the draft is stale once another
    /// version is active.
    pub base: Option<u64>,
    /// The version it was branched from, if any.
    #[serde(default)]
    pub branched_from: Option<u64>,
    /// Content revision: grows with every save (what `If-Match` names; taking the lock does not change it).
    pub revision: u64,
    /// Who saved it last (`user:ID`).
    pub saved_by: String,
    /// When (Unix milliseconds).
    pub saved_ms: i64,
    /// The editor lock, when someone holds it (it may have expired: compare `expires_ms`).
    #[serde(default)]
    pub lock: Option<DraftLock>,
}

impl Record for Draft {
    const FAMILY: Family = Family::Drafts;
    fn key(&self) -> String {
        self.flow.clone()
    }
}

/// Who may save a draft, until when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DraftLock {
    /// The holder (`user:ID`).
    pub holder: String,
    /// The holder's e-mail address, shown to others.
    pub holder_email: String,
    /// When the lock lapses unless renewed (Unix milliseconds).
    pub expires_ms: i64,
}

/// A version of a store-managed flow served on a test host (and at `X-LeanNodes-Version`) until it
/// expires, without touching the active version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestSession {
    /// The flow.
    pub flow: String,
    /// The version served.
    pub version: u64,
    /// The host it is served on (`v3--shop.test-sessions.shop.example.com`).
    pub host: String,
    /// Who started it (`user:ID`).
    pub created_by: String,
    /// When (Unix milliseconds).
    pub created_ms: i64,
    /// When it ends (Unix milliseconds).
    pub expires_ms: i64,
}

impl TestSession {
    /// The key of the session of `version` of `flow`.
    pub fn key_of(flow: &str, version: u64) -> String {
        format!("{flow}/{version:020}")
    }
}

impl Record for TestSession {
    const FAMILY: Family = Family::TestSessions;
    fn key(&self) -> String {
        TestSession::key_of(&self.flow, self.version)
    }
    fn expires_ms(&self) -> Option<i64> {
        Some(self.expires_ms)
    }
}

/// A user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Stable id (the key).
    pub id: String,
    /// E-mail address (lower case).
    pub email: String,
    /// Display name.
    pub name: String,
    /// Names of the roles granted instance-wide by an administrator.
    pub roles: Vec<String>,
    /// A disabled user cannot sign in, and its sessions and tokens stop working.
    pub disabled: bool,
    /// When the user was created.
    pub created_ms: i64,
    /// The password as an argon2id PHC string (`None`: no password; SSO only).
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Roles the user's single-sign-on groups mapped to at the last SSO login.
    #[serde(default)]
    pub sso_roles: Vec<String>,
    /// The SSO identity (`oidc:PROVIDER:SUBJECT` or `saml:NAMEID`) of a user created by SSO.
    #[serde(default)]
    pub identity: Option<String>,
    /// Sessions created before this time are no longer valid (password change, reset, sign out
    /// everywhere).
    #[serde(default)]
    pub sessions_after_ms: i64,
}

impl Record for User {
    const FAMILY: Family = Family::Users;
    fn key(&self) -> String {
        self.id.clone()
    }
}

/// A single-use link: an invitation to become a user, a password reset, or the first administrator's
/// setup; gone once used or expired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invitation {
    /// SHA-256 of the link's secret (the key; the secret itself is never stored).
    pub token_hash: String,
    /// What the link is for.
    pub purpose: LinkPurpose,
    /// Who is invited, or whose password is reset (empty for setup).
    pub email: String,
    /// Roles the new user gets (invitations and setup).
    pub roles: Vec<String>,
    /// Who created it (an audit actor).
    pub created_by: String,
    /// When it was created.
    pub created_ms: i64,
    /// When it expires.
    pub expires_ms: i64,
}

/// What a single-use link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkPurpose {
    /// Creates a user.
    Invitation,
    /// Sets a user's password.
    PasswordReset,
    /// Creates the first administrator.
    Setup,
}

impl Record for Invitation {
    const FAMILY: Family = Family::Invitations;
    fn key(&self) -> String {
        self.token_hash.clone()
    }
    fn expires_ms(&self) -> Option<i64> {
        Some(self.expires_ms)
    }
}

/// A group of users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Name (the key).
    pub name: String,
    /// User ids.
    pub members: Vec<String>,
    /// Roles every member gets.
    pub roles: Vec<String>,
}

impl Record for Group {
    const FAMILY: Family = Family::Groups;
    fn key(&self) -> String {
        self.name.clone()
    }
}

/// A custom role: a named set of permissions (the built-in roles are not stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    /// Name (the key).
    pub name: String,
    /// Permissions (`flows.read`, `flows.operate`, …).
    pub permissions: Vec<String>,
    /// What the role is for.
    #[serde(default)]
    pub description: String,
}

impl Record for Role {
    const FAMILY: Family = Family::Roles;
    fn key(&self) -> String {
        self.name.clone()
    }
}

/// The access grants of one flow: roles given to users and groups on this flow only. One record per
/// flow, so a change of the grants is one versioned write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowAcl {
    /// Flow name (the key).
    pub flow: String,
    /// The grants.
    pub grants: Vec<Grant>,
}

/// A role granted to a user or a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// `user:ID` or `group:NAME`.
    pub subject: String,
    /// The role (built-in or custom).
    pub role: String,
}

impl Record for FlowAcl {
    const FAMILY: Family = Family::FlowAcls;
    fn key(&self) -> String {
        self.flow.clone()
    }
}

/// One instance setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    /// Name (the key).
    pub name: String,
    /// Value.
    pub value: serde_json::Value,
}

impl Record for Setting {
    const FAMILY: Family = Family::Settings;
    fn key(&self) -> String {
        self.name.clone()
    }
}

/// A personal access token (only its hash is stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessToken {
    /// Public id (the key; also the token's prefix).
    pub id: String,
    /// Owner's user id.
    pub user: String,
    /// Label.
    pub name: String,
    /// SHA-256 of the secret part.
    pub secret_hash: String,
    /// What it may do.
    pub scopes: Vec<String>,
    /// When it was created.
    pub created_ms: i64,
    /// When it expires (`None`: never).
    pub expires_ms: Option<i64>,
    /// When it was last used (updated at most once a minute).
    #[serde(default)]
    pub last_used_ms: Option<i64>,
}

impl Record for AccessToken {
    const FAMILY: Family = Family::AccessTokens;
    fn key(&self) -> String {
        self.id.clone()
    }
    fn expires_ms(&self) -> Option<i64> {
        self.expires_ms
    }
}

/// When a flow slept: closed intervals and the one under way, for the savings estimate. Written by the
/// replica that drains the flow (the drain leader for flows shared between replicas).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SleepLedger {
    /// Flow name (the key).
    pub flow: String,
    /// Since when the ledger knows the flow's state (Unix milliseconds).
    pub tracked_since_ms: i64,
    /// Past asleep intervals `[from, to)` in Unix milliseconds, oldest first, pruned to the last 90 days.
    pub intervals: Vec<[i64; 2]>,
    /// Asleep since then, when asleep now.
    pub asleep_since_ms: Option<i64>,
}

impl Record for SleepLedger {
    const FAMILY: Family = Family::SleepLedgers;
    fn key(&self) -> String {
        self.flow.clone()
    }
}

/// A notification route managed through the API: the route as `[[notification]]` would write it. Its
/// `url`, header values and `routing_key` are secrets, stored as given (literal values: API routes never
/// refer to the server's environment or files) and never returned by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationRecord {
    /// The route (`spec.name` is the key).
    pub spec: leannodes_config::file::NotificationSpec,
    /// Who wrote it last (`user:ID`, `token:ID`).
    pub updated_by: String,
}

impl Record for NotificationRecord {
    const FAMILY: Family = Family::NotificationRoutes;
    fn key(&self) -> String {
        self.spec.name.clone()
    }
}

/// A signed-in browser session (only the hash of the cookie's secret is stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// SHA-256 of the cookie's secret (the key).
    pub id_hash: String,
    /// The user.
    pub user: String,
    /// How the user signed in (`password`, `oidc:NAME`, `saml`).
    pub method: String,
    /// When.
    pub created_ms: i64,
    /// When it ends.
    pub expires_ms: i64,
    /// The client's address at sign-in.
    pub address: String,
    /// The client's `User-Agent` at sign-in.
    pub user_agent: String,
}

impl Record for Session {
    const FAMILY: Family = Family::Sessions;
    fn key(&self) -> String {
        self.id_hash.clone()
    }
    fn expires_ms(&self) -> Option<i64> {
        Some(self.expires_ms)
    }
}

/// A login name that belongs to a user: `email/ADDRESS` or `identity/oidc:PROVIDER:SUBJECT` (the key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Login {
    /// The name (the key).
    pub name: String,
    /// The user's id.
    pub user: String,
}

impl Record for Login {
    const FAMILY: Family = Family::Logins;
    fn key(&self) -> String {
        self.name.clone()
    }
}

/// Failed sign-ins of one account or one client address within a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throttle {
    /// `account/HASH` or `address/IP` (the key).
    pub key: String,
    /// Failures in the window.
    pub failures: u32,
    /// When the window began.
    pub window_start_ms: i64,
    /// Sign-ins are refused until then.
    pub blocked_until_ms: i64,
    /// When the record goes away.
    pub expires_ms: i64,
}

impl Record for Throttle {
    const FAMILY: Family = Family::Throttles;
    fn key(&self) -> String {
        self.key.clone()
    }
    fn expires_ms(&self) -> Option<i64> {
        Some(self.expires_ms)
    }
}

/// A single-sign-on login under way: what the callback needs to finish it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthRequest {
    /// SHA-256 of the `state` (OIDC) or request id (SAML) (the key).
    pub state_hash: String,
    /// `oidc:NAME` or `saml`.
    pub provider: String,
    /// SHA-256 of the secret in the browser's binding cookie (the callback must come from the same
    /// browser that started the login).
    pub binding_hash: String,
    /// OIDC: the PKCE verifier.
    pub verifier: String,
    /// OIDC: the nonce.
    pub nonce: String,
    /// Where to go after signing in (a path of this site).
    pub return_to: String,
    /// When it expires.
    pub expires_ms: i64,
}

impl Record for AuthRequest {
    const FAMILY: Family = Family::AuthRequests;
    fn key(&self) -> String {
        self.state_hash.clone()
    }
    fn expires_ms(&self) -> Option<i64> {
        Some(self.expires_ms)
    }
}
