//! Schema migrations. Every schema change is a new migration; applied ones never change.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_tables;

pub use m20261122_000001_create_tables::DEFAULT_ORGANISATION_ID;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261122_000001_create_tables::Migration)]
    }
}
