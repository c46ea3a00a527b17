//! Background jobs. Each is safe with several instances on one database:
//! it scans across organisations, then changes each task under its lock
//! after reading it again.

pub mod deadlines;
pub mod pruner;
pub mod webhooks;

use std::sync::atomic::AtomicU64;

/// What the background jobs of this instance did, for `/metrics`.
#[derive(Debug, Default)]
pub struct JobMetrics {
    pub pruned_tasks: AtomicU64,
    pub pruned_items: AtomicU64,
}
