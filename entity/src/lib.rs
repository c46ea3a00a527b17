//! SeaORM entities of bulkwatch: one module per table, no logic, and the
//! value types their columns hold.

pub mod api_key;
pub mod audit_entry;
pub mod bulk_task;
pub mod organisation;
pub mod status;
pub mod task_item;
pub mod webhook_delivery;
pub mod webhook_endpoint;
