//! Passwords: argon2id hashes (PHC strings), checked off the async threads, and the policy a new
//! password must meet.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::ApiError;

/// Shortest password accepted.
pub(crate) const MIN_LEN: usize = 10;
/// Longest password accepted (hashing cost grows with it).
pub(crate) const MAX_LEN: usize = 512;

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a new password against the policy; `path` names the field in the error.
pub(crate) fn check_policy(path: &str, password: &str) -> Result<(), ApiError> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Err(ApiError::invalid_field(path, format!("the password is too short: use at least {MIN_LEN} characters")));
    }
    if password.len() > MAX_LEN {
        return Err(ApiError::invalid_field(path, format!("the password is too long: use at most {MAX_LEN} bytes")));
    }
    if password.chars().all(|c| c == password.chars().next().unwrap_or(' ')) {
        return Err(ApiError::invalid_field(path, "the password repeats one character"));
    }
    Ok(())
}

/// Hashes a password (argon2id, random salt) on a blocking thread.
pub(crate) async fn hash(password: &str) -> Result<String, ApiError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        argon2().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await
    .map_err(|e| ApiError::internal(format!("password hashing stopped: {e}")))?
    .map_err(|e| ApiError::internal(format!("cannot hash the password: {e}")))
}

/// Whether `password` matches `phc` (an argon2 PHC string), on a blocking thread. A malformed stored
/// hash never matches.
pub(crate) async fn verify(password: &str, phc: &str) -> bool {
    let (password, phc) = (password.to_string(), phc.to_string());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc).is_ok_and(|parsed| argon2().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .unwrap_or(false)
}
