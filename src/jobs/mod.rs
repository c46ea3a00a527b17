//! Background jobs. Each is safe to run on several instances over one
//! PostgreSQL at once, and its tests say so.

pub mod webhooks;
