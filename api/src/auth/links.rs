//! Single-use links: invitations, password resets and the first administrator's setup. Only the hash of
//! a link's secret is stored; using a link deletes it with a conditional write, so two concurrent uses
//! cannot both succeed.

use leannodes_store::{Invitation, LinkPurpose, Store, StoreError, Versioned};

use super::secret::{random_secret, sha256_hex};
use crate::error::ApiError;

/// A new link's secret and record.
pub(crate) async fn create(
    store: &dyn Store,
    purpose: LinkPurpose,
    email: &str,
    roles: Vec<String>,
    created_by: &str,
    ttl: std::time::Duration,
) -> Result<(String, Versioned<Invitation>), ApiError> {
    let secret = random_secret();
    let now = crate::unix_ms();
    let record = Invitation {
        token_hash: sha256_hex(&secret),
        purpose,
        email: email.to_string(),
        roles,
        created_by: created_by.to_string(),
        created_ms: now,
        expires_ms: now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
    };
    let stored = store.records::<Invitation>().create(&record).await?;
    Ok((secret, stored))
}

/// The live link of `purpose` with this secret, without using it.
pub(crate) async fn peek(store: &dyn Store, secret: &str, purpose: LinkPurpose) -> Result<Versioned<Invitation>, ApiError> {
    let invalid = || ApiError::not_found("invalid_link", "the link is unknown, used or expired; ask for a new one");
    if secret.len() > 200 {
        return Err(invalid());
    }
    let link = store.records::<Invitation>().get(&sha256_hex(secret)).await?.ok_or_else(invalid)?;
    if link.value.purpose != purpose {
        return Err(invalid());
    }
    Ok(link)
}

/// Uses a link: deletes it if it is still the version read.
pub(crate) async fn consume(store: &dyn Store, link: &Versioned<Invitation>) -> Result<(), ApiError> {
    match store.records::<Invitation>().delete(&link.value.token_hash, Some(link.version)).await {
        Ok(()) => Ok(()),
        Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => {
            Err(ApiError::not_found("invalid_link", "the link is unknown, used or expired; ask for a new one"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Uses a link to create a user: the link is spent first (so two uses cannot both create one), and put
/// back when the user cannot be created (e.g. the address was taken meanwhile).
pub(crate) async fn redeem_for_user(
    store: &dyn Store,
    link: &Versioned<Invitation>,
    new: crate::accounts::NewUser,
) -> Result<Versioned<leannodes_store::User>, ApiError> {
    consume(store, link).await?;
    match crate::accounts::create_user(store, new).await {
        Ok(user) => Ok(user),
        Err(e) => {
            if let Err(restore) = store.records::<Invitation>().create(&link.value).await {
                tracing::warn!("cannot restore a single-use link after a failure: {restore}");
            }
            Err(e)
        }
    }
}

/// The URL of a link, on the dashboard (which posts it to the API).
pub(crate) fn url(external_url: &str, purpose: LinkPurpose, secret: &str) -> String {
    let page = match purpose {
        LinkPurpose::Invitation => "invite",
        LinkPurpose::PasswordReset => "reset",
        LinkPurpose::Setup => "setup",
    };
    format!("{external_url}/{page}#token={secret}")
}
