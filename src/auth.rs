//! Authentication: the API key a request presents, resolved to a principal
//! once per request (HTTP) or connection (WebSocket), and the one access
//! check every root field and download route makes with it.

use std::time::Duration;

use crate::domain::keys::Scope;
use crate::domain::{Principal, keys};
use crate::error::{AppError, AppResult};
use crate::store::Db;

/// How long a checked key is believed without asking the database again;
/// so also the longest a revoked key keeps working, on every instance.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(1);

/// Keys checked within the last `KEY_CACHE_TTL`, by the key presented: a
/// client polling a task costs no key lookup per request. Only valid keys
/// are kept, so a key created a moment ago is never refused from memory.
#[derive(Clone)]
pub struct KeyCache(moka::sync::Cache<String, Principal>);

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache(
            moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(KEY_CACHE_TTL)
                .build(),
        )
    }
}

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
pub async fn authenticate(
    db: &Db,
    cache: &KeyCache,
    authorization: Option<&str>,
) -> Result<Auth, AppError> {
    let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(Auth::Missing);
    };
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Ok(Auth::Invalid),
    };
    if let Some(principal) = cache.0.get(token) {
        return Ok(Auth::Valid(principal));
    }
    match keys::authenticate(db, token).await {
        Ok(principal) => {
            cache.0.insert(token.to_owned(), principal);
            Ok(Auth::Valid(principal))
        }
        Err(AppError::Unauthenticated(_)) => Ok(Auth::Invalid),
        Err(e) => Err(e),
    }
}
