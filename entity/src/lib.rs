//! SeaORM entities of bulkwatch: one module per table, no logic.

pub mod api_key;
pub mod bulk_task;
pub mod organisation;
pub mod task_item;
