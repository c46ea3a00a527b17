use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The id of the built-in organisation that owns every task until tenancy is switched on.
pub const DEFAULT_ORGANISATION_ID: &str = "00000000-0000-7000-8000-000000000001";

// Plain DDL reads better than the builder for indexes with expressions and
// predicates; the only difference between the backends is the uuid type.
const DDL: &str = r#"
CREATE TABLE organisations (
    id {uuid} PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE bulk_tasks (
    id {uuid} PRIMARY KEY,
    organisation_id {uuid} NOT NULL REFERENCES organisations (id),
    task_type TEXT NOT NULL,
    description TEXT,
    status TEXT NOT NULL,
    sealed BOOLEAN NOT NULL,
    cancel_requested BOOLEAN NOT NULL,
    total INTEGER NOT NULL,
    pending INTEGER NOT NULL,
    running INTEGER NOT NULL,
    succeeded INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    cancelled INTEGER NOT NULL,
    progress DOUBLE PRECISION NOT NULL,
    version BIGINT NOT NULL,
    error_code TEXT,
    error_message TEXT,
    error_details TEXT,
    metadata TEXT NOT NULL,
    idempotency_key TEXT,
    request_hash TEXT,
    max_attempts INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    CHECK (total = pending + running + succeeded + failed + skipped + rejected + cancelled)
);

CREATE UNIQUE INDEX bulk_tasks_idempotency ON bulk_tasks (organisation_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX bulk_tasks_updated ON bulk_tasks (organisation_id, updated_at, id);
CREATE INDEX bulk_tasks_created ON bulk_tasks (organisation_id, created_at, id);
CREATE INDEX bulk_tasks_finished ON bulk_tasks (organisation_id, (COALESCE(finished_at, 9223372036854775807)), id);
CREATE INDEX bulk_tasks_total ON bulk_tasks (organisation_id, total, id);
CREATE INDEX bulk_tasks_failed ON bulk_tasks (organisation_id, failed, id);
CREATE INDEX bulk_tasks_progress ON bulk_tasks (organisation_id, progress, id);
CREATE INDEX bulk_tasks_status ON bulk_tasks (organisation_id, status, updated_at);
CREATE INDEX bulk_tasks_type ON bulk_tasks (organisation_id, task_type, updated_at);
CREATE INDEX bulk_tasks_started ON bulk_tasks (organisation_id, started_at);

CREATE TABLE task_items (
    id {uuid} PRIMARY KEY,
    organisation_id {uuid} NOT NULL,
    task_id {uuid} NOT NULL REFERENCES bulk_tasks (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    client_item_id TEXT,
    status TEXT NOT NULL,
    payload TEXT,
    result TEXT,
    error_code TEXT,
    error_message TEXT,
    error_details TEXT,
    attempts INTEGER NOT NULL,
    worker_id TEXT,
    lease_token TEXT,
    lease_expires_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT
);

CREATE UNIQUE INDEX task_items_position ON task_items (task_id, idx);
CREATE UNIQUE INDEX task_items_client_id ON task_items (task_id, client_item_id)
    WHERE client_item_id IS NOT NULL AND status <> 'REJECTED';
CREATE INDEX task_items_status ON task_items (task_id, status, idx);
CREATE INDEX task_items_updated ON task_items (task_id, updated_at, id);
CREATE INDEX task_items_created ON task_items (task_id, created_at, id);
CREATE INDEX task_items_finished ON task_items (task_id, (COALESCE(finished_at, 9223372036854775807)), id);
CREATE INDEX task_items_error ON task_items (task_id, error_code) WHERE error_code IS NOT NULL;
CREATE INDEX task_items_lease ON task_items (lease_expires_at) WHERE status = 'RUNNING';
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let uuid = match manager.get_database_backend() {
            DbBackend::Postgres => "UUID",
            _ => "BLOB",
        };
        for statement in DDL.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            db.execute_unprepared(&statement.replace("{uuid}", uuid))
                .await?;
        }
        let default_org = match manager.get_database_backend() {
            DbBackend::Postgres => format!("'{DEFAULT_ORGANISATION_ID}'"),
            _ => format!("X'{}'", DEFAULT_ORGANISATION_ID.replace('-', "")),
        };
        db.execute_unprepared(&format!(
            "INSERT INTO organisations (id, name, created_at) VALUES ({default_org}, 'default', 0)"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for table in ["task_items", "bulk_tasks", "organisations"] {
            db.execute_unprepared(&format!("DROP TABLE {table}"))
                .await?;
        }
        Ok(())
    }
}
