//! `Artifact`: a file a task produced, kept elsewhere.

use async_graphql::Object;

use crate::domain::results;
use crate::graphql::scalars::DateTime;

/// Wraps the domain's artifact.
pub struct Artifact(pub results::Artifact);

/// A file a task handed back (a failure report, an imported or exported
/// file), stored outside bulkwatch and named by its URL.
#[Object]
impl Artifact {
    /// Unique among the task's artifacts, e.g. `failure_report`.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Where to fetch it (http or https).
    async fn url(&self) -> &str {
        &self.0.url
    }

    /// Its media type, e.g. `text/csv`.
    async fn content_type(&self) -> Option<&str> {
        self.0.content_type.as_deref()
    }

    /// Its size in bytes.
    async fn size_bytes(&self) -> Option<f64> {
        self.0.size_bytes
    }

    /// When it was added to the task.
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }
}
