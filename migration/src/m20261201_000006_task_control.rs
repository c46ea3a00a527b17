use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::m20261122_000004_row_level_security::{APP_ROLE, ORGANISATION_SETTING, SYSTEM_SETTING};

/// Task control: pause, priority, a scheduled start, a deadline and a
/// failure policy on the task row, and the audit trail of who changed what.
#[derive(DeriveMigrationName)]
pub struct Migration;

// The claim index holds only tasks that can hand out items, in the order
// claims by type take them (highest priority, then oldest): a claim reads the
// first rows of one type's range and never sorts the backlog. The claim
// query repeats its predicate word for word, so that both planners (and
// PostgreSQL's generic plans) can use it.
//
// Audit entries carry no foreign key to their task: they outlive it, until
// retention removes them.
const DDL: &str = r#"
ALTER TABLE bulk_tasks ADD COLUMN paused BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE bulk_tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bulk_tasks ADD COLUMN not_before BIGINT;
ALTER TABLE bulk_tasks ADD COLUMN deadline BIGINT;
ALTER TABLE bulk_tasks ADD COLUMN failure_policy TEXT;

CREATE INDEX bulk_tasks_claimable ON bulk_tasks (organisation_id, task_type, priority DESC, created_at, id)
    WHERE pending > 0 AND NOT paused AND NOT cancel_requested AND error_code IS NULL;
CREATE INDEX bulk_tasks_deadline ON bulk_tasks (deadline)
    WHERE deadline IS NOT NULL AND finished_at IS NULL AND error_code IS NULL AND NOT cancel_requested;

CREATE TABLE audit_entries (
    id {uuid} PRIMARY KEY,
    organisation_id {uuid} NOT NULL REFERENCES organisations (id),
    task_id {uuid} NOT NULL,
    at BIGINT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT,
    details TEXT
);

CREATE INDEX audit_entries_task ON audit_entries (organisation_id, task_id, at, id);
CREATE INDEX audit_entries_at ON audit_entries (at)
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let uuid = match backend {
            DbBackend::Postgres => "UUID",
            _ => "BLOB",
        };
        for statement in DDL.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            db.execute_unprepared(&statement.replace("{uuid}", uuid))
                .await?;
        }
        if backend == DbBackend::Postgres {
            db.execute_unprepared(&format!(
                "DO $$
                BEGIN
                    IF (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) THEN
                        GRANT SELECT, INSERT, UPDATE, DELETE ON audit_entries TO {APP_ROLE};
                    END IF;
                END $$;
                ALTER TABLE audit_entries ENABLE ROW LEVEL SECURITY;
                ALTER TABLE audit_entries FORCE ROW LEVEL SECURITY;
                CREATE POLICY organisation_isolation ON audit_entries
                    USING (organisation_id = nullif(current_setting('{ORGANISATION_SETTING}', true), '')::uuid
                        OR current_setting('{SYSTEM_SETTING}', true) = 'on')"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP TABLE audit_entries").await?;
        for statement in [
            "DROP INDEX bulk_tasks_deadline",
            "DROP INDEX bulk_tasks_claimable",
            "ALTER TABLE bulk_tasks DROP COLUMN failure_policy",
            "ALTER TABLE bulk_tasks DROP COLUMN deadline",
            "ALTER TABLE bulk_tasks DROP COLUMN not_before",
            "ALTER TABLE bulk_tasks DROP COLUMN priority",
            "ALTER TABLE bulk_tasks DROP COLUMN paused",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
