//! Parsed documents, kept by their query text.
//!
//! Clients send a handful of operations over and over: a status poll every
//! few seconds, a worker's claim and report. Parsing the text again for each
//! is about a tenth of a poll's CPU, so a document that parsed once is kept
//! and handed out again. Only documents that parsed are kept: a bad query is
//! parsed, and refused, each time.

use std::sync::Arc;

use async_graphql::ServerError;
use async_graphql::parser::types::ExecutableDocument;
use moka::sync::Cache;

use super::document::fragment_cycle;
use super::errors::{is_limit, with_code};

/// Query texts of at most this many bytes in all; the least used go first.
const CAPACITY_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Clone)]
pub struct DocumentCache(Cache<Arc<str>, Arc<ExecutableDocument>>);

impl Default for DocumentCache {
    fn default() -> Self {
        DocumentCache(
            Cache::builder()
                .weigher(|query: &Arc<str>, _| u32::try_from(query.len()).unwrap_or(u32::MAX))
                .max_capacity(CAPACITY_BYTES)
                .build(),
        )
    }
}

impl DocumentCache {
    /// The document of `query`, parsed now or before; a text that does not
    /// parse is BAD_USER_INPUT, or LIMIT_EXCEEDED for the parser's limits.
    pub fn parse(&self, query: &str) -> Result<Arc<ExecutableDocument>, ServerError> {
        if let Some(document) = self.0.get(query) {
            return Ok(document);
        }
        let document = async_graphql::parser::parse_query(query).map_err(|e| {
            let e = ServerError::from(e);
            let code = if is_limit(&e.message) {
                "LIMIT_EXCEEDED"
            } else {
                "BAD_USER_INPUT"
            };
            with_code(e, code)
        })?;
        // A fragment cycle would otherwise surface as the recursion limit.
        if let Some(name) = fragment_cycle(&document) {
            let message = format!("fragment \"{name}\" spreads itself");
            return Err(with_code(ServerError::new(message, None), "BAD_USER_INPUT"));
        }
        let document = Arc::new(document);
        self.0.insert(Arc::from(query), document.clone());
        Ok(document)
    }
}
