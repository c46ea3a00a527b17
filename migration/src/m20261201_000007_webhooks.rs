use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::m20261122_000004_row_level_security::{APP_ROLE, ORGANISATION_SETTING, SYSTEM_SETTING};

/// Webhook endpoints and their deliveries. A delivery row is the outbox:
/// the domain writes it in the transaction of the change it reports, and
/// the dispatcher claims, sends and records it.
#[derive(DeriveMigrationName)]
pub struct Migration;

const DDL: &str = r#"
CREATE TABLE webhook_endpoints (
    id {uuid} PRIMARY KEY,
    organisation_id {uuid} NOT NULL REFERENCES organisations (id),
    url TEXT NOT NULL,
    description TEXT,
    events TEXT NOT NULL,
    types TEXT,
    enabled BOOLEAN NOT NULL,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_until BIGINT,
    disabled_reason TEXT,
    failing_since BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_organisation ON webhook_endpoints (organisation_id, created_at, id);

CREATE TABLE webhook_deliveries (
    id {uuid} PRIMARY KEY,
    organisation_id {uuid} NOT NULL REFERENCES organisations (id),
    endpoint_id {uuid} NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    event TEXT NOT NULL,
    task_id {uuid},
    task_version BIGINT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at BIGINT,
    last_response_status INTEGER,
    last_response_body TEXT,
    last_error TEXT,
    last_duration_ms INTEGER,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at, id);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status IN ('PENDING', 'RETRYING');
CREATE INDEX webhook_deliveries_open_by_task ON webhook_deliveries (endpoint_id, task_id, task_version)
    WHERE status IN ('PENDING', 'RETRYING');
"#;

const TABLES: [&str; 2] = ["webhook_endpoints", "webhook_deliveries"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let uuid = match backend {
            DbBackend::Postgres => "UUID",
            _ => "BLOB",
        };
        let db = manager.get_connection();
        for statement in DDL.replace("{uuid}", uuid).split(';') {
            if !statement.trim().is_empty() {
                db.execute_unprepared(statement).await?;
            }
        }
        if backend != DbBackend::Postgres {
            return Ok(());
        }
        let tables = TABLES.join(", ");
        // The app role exists when the migrating role bypasses row-level
        // security (see the row-level security migration); it gets the new
        // tables like the others.
        db.execute_unprepared(&format!(
            "DO $$
            BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}')
                    AND (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) THEN
                    GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {APP_ROLE};
                END IF;
            END $$"
        ))
        .await?;
        for table in TABLES {
            db.execute_unprepared(&format!(
                "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
                ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
                CREATE POLICY organisation_isolation ON {table}
                    USING (organisation_id = nullif(current_setting('{ORGANISATION_SETTING}', true), '')::uuid
                        OR current_setting('{SYSTEM_SETTING}', true) = 'on')"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP TABLE webhook_deliveries")
            .await?;
        db.execute_unprepared("DROP TABLE webhook_endpoints")
            .await?;
        Ok(())
    }
}
