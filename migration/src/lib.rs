//! Schema migrations. Every schema change is a new migration; applied ones never change.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_tables;
mod m20261122_000002_lease_tokens;
mod m20261122_000003_api_keys;
mod m20261122_000004_row_level_security;
mod m20261201_000005_results;
mod m20261201_000006_task_control;
mod m20261201_000007_webhooks;
mod m20261202_000008_change_outbox;

pub use m20261122_000001_create_tables::DEFAULT_ORGANISATION_ID;
pub use m20261122_000004_row_level_security::{APP_ROLE, ORGANISATION_SETTING, SYSTEM_SETTING};
pub use m20261201_000005_results::METADATA_FUNCTION;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_tables::Migration),
            Box::new(m20261122_000002_lease_tokens::Migration),
            Box::new(m20261122_000003_api_keys::Migration),
            Box::new(m20261122_000004_row_level_security::Migration),
            Box::new(m20261201_000005_results::Migration),
            Box::new(m20261201_000006_task_control::Migration),
            Box::new(m20261201_000007_webhooks::Migration),
            Box::new(m20261202_000008_change_outbox::Migration),
        ]
    }
}
