//! SeaORM entities of bulkwatch: one module per table, no logic.

pub mod bulk_task;
pub mod organisation;
pub mod task_item;
