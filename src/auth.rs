//! Authentication: the API key a request presents, resolved to a principal
//! once per request (HTTP) or connection (WebSocket), and the one access
//! check every root field and download route makes with it.

use crate::domain::keys::Scope;
use crate::domain::{Principal, keys};
use crate::error::{AppError, AppResult};
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

    /// The caller, when its key carries `scope`; else UNAUTHENTICATED or
    /// FORBIDDEN, and nothing else about the request.
    pub fn require(&self, scope: Scope) -> AppResult<Principal> {
        match self {
            Auth::Valid(p) if p.scopes.contains(scope) => Ok(*p),
            Auth::Valid(_) => Err(AppError::Forbidden(format!(
                "the API key lacks the {} scope; create one with it: bulkwatch keys create --org <ORG> --scopes {}",
                scope.as_str(),
                scope.as_str()
            ))),
            Auth::Invalid => Err(AppError::Unauthenticated(
                "the API key is not valid: send `Authorization: Bearer bw_<64 hex digits>` with a key \
                 printed on first start or by `bulkwatch keys create` (not a placeholder); it may have been revoked"
                    .into(),
            )),
            Auth::Missing => Err(AppError::Unauthenticated(
                "an API key is required: send the header `Authorization: Bearer bw_...` \
                 (over WebSocket, put it in the connection_init payload)"
                    .into(),
            )),
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
