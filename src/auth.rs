//! Authentication: the API key a request presents, resolved to a principal
//! once per request (HTTP) or connection (WebSocket).

use crate::domain::{Principal, keys};
use crate::error::AppError;
use crate::store::Db;

/// What the caller presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// No key at all.
    Missing,
    /// A key that is unknown or revoked (told apart nowhere).
    Invalid,
    Valid(Principal),
}

impl Auth {
    /// The principal, when the key is valid.
    pub fn principal(&self) -> Option<Principal> {
        match self {
            Auth::Valid(p) => Some(*p),
            _ => None,
        }
    }
}

/// Reads `Bearer <key>` from an Authorization value and checks the key.
pub async fn authenticate(db: &Db, authorization: Option<&str>) -> Result<Auth, AppError> {
    let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(Auth::Missing);
    };
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Ok(Auth::Invalid),
    };
    match keys::authenticate(db, token).await {
        Ok(principal) => Ok(Auth::Valid(principal)),
        Err(AppError::Unauthenticated(_)) => Ok(Auth::Invalid),
        Err(e) => Err(e),
    }
}
