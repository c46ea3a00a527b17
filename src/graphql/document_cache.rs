//! Parsed documents, kept by their query text.
//!
//! Clients send a handful of operations over and over: a status poll every
//! few seconds, a worker's claim and report. Parsing the text again for each
//! is about a tenth of a poll's CPU, so a document that parsed once (within
//! the schema's limits) is kept and handed out again. Only documents that
//! parsed are kept: a bad query is parsed, and refused, each time.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerResult, Variables};
use moka::sync::Cache;

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
    /// The document of `query` when it parsed before.
    pub fn get(&self, query: &str) -> Option<Arc<ExecutableDocument>> {
        self.0.get(query)
    }
}

impl ExtensionFactory for DocumentCache {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Extension for DocumentCache {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if let Some(document) = self.get(query) {
            return Ok(ExecutableDocument::clone(&document));
        }
        let document = next.run(ctx, query, variables).await?;
        self.0.insert(Arc::from(query), Arc::new(document.clone()));
        Ok(document)
    }
}
