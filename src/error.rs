//! The one error type of bulkwatch, its codes, and its HTTP answer.
//!
//! It is mapped to `extensions.code` in one place (`graphql::errors`), which
//! finds it as the source of any `async_graphql::Error` made with `?`, and
//! to an HTTP response in one place (`IntoResponse` below).

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::{DbErr, RuntimeErr};

/// What went wrong, in terms a client can act on.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadUserInput(String),
    /// Bad input that HTTP names apart: a body over the limit.
    #[error("{0}")]
    TooLarge(String),
    /// A method the route does not serve.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A body of a type the route does not read.
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    BadCursor(String),
    #[error("{0}")]
    LimitExceeded(String),
    /// Over a rate limit: answered with 429 and `Retry-After`.
    #[error("{0}")]
    RateLimited(crate::limits::RateLimited),
    #[error("the database is unavailable, try again")]
    DatabaseUnavailable(#[source] DbErr),
    #[error("{0}")]
    Lagged(String),
    #[error("internal error")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// The value of `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadUserInput(_)
            | AppError::MethodNotAllowed(_)
            | AppError::UnsupportedMediaType(_) => "BAD_USER_INPUT",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::Unauthenticated(_) => "UNAUTHENTICATED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::Conflict(_) => "CONFLICT",
            AppError::InvalidState(_) => "INVALID_STATE",
            AppError::BadCursor(_) => "BAD_CURSOR",
            AppError::LimitExceeded(_) | AppError::TooLarge(_) => "LIMIT_EXCEEDED",
            AppError::RateLimited(_) => "RATE_LIMITED",
            AppError::DatabaseUnavailable(_) => "DATABASE_UNAVAILABLE",
            AppError::Lagged(_) => "SUBSCRIBER_LAGGED",
            AppError::Internal(_) => "INTERNAL",
        }
    }

    /// The error as a GraphQL error object, for answers that no operation
    /// gave (HTTP refusals, a WebSocket subscribe refused before it runs).
    pub fn to_graphql_error(&self) -> serde_json::Value {
        let mut extensions = serde_json::json!({ "code": self.code() });
        if let AppError::RateLimited(refusal) = self {
            extensions["retryAfter"] = refusal.retry_after_secs().into();
        }
        serde_json::json!({ "message": self.to_string(), "extensions": extensions })
    }

    /// What lies behind the client-facing message, for logs and startup
    /// errors only: a client never sees it.
    pub fn cause(&self) -> String {
        match self {
            AppError::DatabaseUnavailable(e) => e.to_string(),
            AppError::Internal(cause) => cause.clone(),
            other => other.to_string(),
        }
    }

    /// The HTTP status of a response that is this error alone.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadUserInput(_)
            | AppError::BadCursor(_)
            | AppError::LimitExceeded(_)
            | AppError::InvalidState(_)
            | AppError::Lagged(_) => StatusCode::BAD_REQUEST,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::DatabaseUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A GraphQL-shaped error body with the code, and the status from it.
/// Causes a client must not see are logged here and replaced.
impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match &self {
            AppError::Internal(cause) => tracing::error!(%cause, "internal error"),
            AppError::DatabaseUnavailable(cause) => {
                tracing::error!(%cause, "database unavailable")
            }
            _ => {}
        }
        let body = serde_json::json!({ "errors": [self.to_graphql_error()] });
        let mut response = (
            self.status(),
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if matches!(self, AppError::MethodNotAllowed(_)) {
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        }
        if let AppError::RateLimited(refusal) = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, refusal.retry_after_secs().into());
        }
        response
    }
}

pub fn bad_input(message: impl Into<String>) -> AppError {
    AppError::BadUserInput(message.into())
}

pub fn not_found(what: &str) -> AppError {
    AppError::NotFound(format!("{what} not found"))
}

pub fn invalid_state(message: impl Into<String>) -> AppError {
    AppError::InvalidState(message.into())
}

pub fn conflict(message: impl Into<String>) -> AppError {
    AppError::Conflict(message.into())
}

pub fn bad_cursor() -> AppError {
    AppError::BadCursor("the cursor is not valid for this list and order".into())
}

pub fn limit_exceeded(message: impl Into<String>) -> AppError {
    AppError::LimitExceeded(message.into())
}

/// What a database error means for the client, by the database's own code.
enum Class {
    /// Worth a retry: the database is unreachable, restarting, or chose
    /// this transaction as a deadlock or serialisation victim.
    Unavailable,
    /// Text PostgreSQL cannot store (a NUL character).
    NulInText,
    Other,
}

/// PostgreSQL SQLSTATEs and SQLite primary result codes.
fn classify_code(code: &str) -> Class {
    match code {
        // serialization_failure, deadlock_detected, connection exceptions,
        // too_many_connections, operator intervention (shutdown, crash recovery)
        "40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03" => Class::Unavailable,
        c if c.starts_with("08") => Class::Unavailable,
        // character_not_in_repertoire, untranslatable_character
        "22021" | "22P05" => Class::NulInText,
        // SQLite: BUSY, LOCKED, IOERR, CANTOPEN, FULL, READONLY (primary code
        // is the low byte of an extended one).
        c => match c.parse::<i32>().map(|n| n & 0xff) {
            Ok(5 | 6 | 10 | 13 | 14 | 8) => Class::Unavailable,
            _ => Class::Other,
        },
    }
}

fn class(err: &DbErr) -> Class {
    use sea_orm::sqlx::Error as Sqlx;
    let runtime = match err {
        DbErr::ConnectionAcquire(_) => return Class::Unavailable,
        DbErr::Conn(_) => return Class::Unavailable,
        DbErr::Exec(r) | DbErr::Query(r) => r,
        _ => return Class::Other,
    };
    let RuntimeErr::SqlxError(sqlx) = runtime else {
        return Class::Other;
    };
    match sqlx.as_ref() {
        Sqlx::Database(db) => db.code().map_or(Class::Other, |c| classify_code(&c)),
        Sqlx::Io(_)
        | Sqlx::Tls(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed
        | Sqlx::Protocol(_) => Class::Unavailable,
        _ => Class::Other,
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        match class(&err) {
            Class::Unavailable => AppError::DatabaseUnavailable(err),
            Class::NulInText => {
                AppError::BadUserInput("text must not contain NUL characters".into())
            }
            Class::Other => AppError::Internal(err.to_string()),
        }
    }
}

impl From<serde_json::Error> for AppError {
    fn from(err: serde_json::Error) -> Self {
        AppError::Internal(format!("json: {err}"))
    }
}
