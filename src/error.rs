//! The one error type of bulkwatch, and its codes.
//!
//! It is mapped to `extensions.code` in one place (`graphql::errors`), which
//! finds it as the source of any `async_graphql::Error` made with `?`.

use sea_orm::DbErr;

/// What went wrong, in terms a client can act on.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadUserInput(String),
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
            AppError::BadUserInput(_) => "BAD_USER_INPUT",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::Unauthenticated(_) => "UNAUTHENTICATED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::Conflict(_) => "CONFLICT",
            AppError::InvalidState(_) => "INVALID_STATE",
            AppError::BadCursor(_) => "BAD_CURSOR",
            AppError::LimitExceeded(_) => "LIMIT_EXCEEDED",
            AppError::DatabaseUnavailable(_) => "DATABASE_UNAVAILABLE",
            AppError::Lagged(_) => "SUBSCRIBER_LAGGED",
            AppError::Internal(_) => "INTERNAL",
        }
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

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        match &err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => AppError::DatabaseUnavailable(err),
            // PostgreSQL text cannot hold NUL; SQLite can, so only one backend says so.
            _ if ["invalid byte sequence", "unsupported Unicode escape"]
                .iter()
                .any(|m| err.to_string().contains(m)) =>
            {
                AppError::BadUserInput("text must not contain NUL characters".into())
            }
            // Worth a retry by the client, like an unreachable database.
            _ if [
                "deadlock detected",
                "could not serialize",
                "connection reset",
                "broken pipe",
            ]
            .iter()
            .any(|m| err.to_string().contains(m)) =>
            {
                AppError::DatabaseUnavailable(err)
            }
            _ => AppError::Internal(err.to_string()),
        }
    }
}

impl From<serde_json::Error> for AppError {
    fn from(err: serde_json::Error) -> Self {
        AppError::Internal(format!("json: {err}"))
    }
}
