use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::m20261122_000004_row_level_security::{APP_ROLE, ORGANISATION_SETTING, SYSTEM_SETTING};

/// The PostgreSQL function that lists the tasks whose metadata contains a
/// jsonb value, through the metadata index.
pub const METADATA_FUNCTION: &str = "bulkwatch_tasks_with_metadata";

/// What a task hands back and how long it is kept: its result and
/// artifacts, the last worker heartbeat, its own retention, the mark the
/// pruner sets before it deletes a task in batches, and the server secrets
/// (the key that signs export links) that every instance must share.
#[derive(DeriveMigrationName)]
pub struct Migration;

const COMMON: &str = r#"
ALTER TABLE bulk_tasks ADD COLUMN result TEXT;
ALTER TABLE bulk_tasks ADD COLUMN artifacts TEXT NOT NULL DEFAULT '[]';
ALTER TABLE bulk_tasks ADD COLUMN last_heartbeat_at BIGINT;
ALTER TABLE bulk_tasks ADD COLUMN retain_for BIGINT;
ALTER TABLE bulk_tasks ADD COLUMN pruned_at BIGINT;
CREATE INDEX bulk_tasks_expiry ON bulk_tasks (finished_at)
    WHERE finished_at IS NOT NULL AND retain_for IS NULL AND pruned_at IS NULL;
CREATE INDEX bulk_tasks_expiry_own ON bulk_tasks ((finished_at + retain_for * 1000))
    WHERE finished_at IS NOT NULL AND retain_for > 0 AND pruned_at IS NULL;
CREATE INDEX bulk_tasks_pruning ON bulk_tasks (pruned_at) WHERE pruned_at IS NOT NULL;
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
)
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for statement in COMMON.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            db.execute_unprepared(statement).await?;
        }
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        // Metadata filters are containment (`@>`) on the metadata as jsonb;
        // jsonb_path_ops indexes exactly that operator, compactly.
        db.execute_unprepared(
            "CREATE INDEX bulk_tasks_metadata ON bulk_tasks
                USING GIN ((CAST(metadata AS jsonb)) jsonb_path_ops)",
        )
        .await?;
        // jsonb containment is not leakproof, so under row-level security
        // PostgreSQL evaluates it only after the policy, row by row, and
        // never through the index. This function runs as the role that
        // migrated (which bypasses the policies whenever the app works as
        // APP_ROLE) and applies the policy's own condition itself, so the
        // index serves the filter and the wall stays where it was.
        db.execute_unprepared(&format!(
            "CREATE FUNCTION {METADATA_FUNCTION}(subset jsonb) RETURNS SETOF uuid
                LANGUAGE sql STABLE SECURITY DEFINER
                SET search_path FROM CURRENT
                ROWS 100
                AS $$
                    SELECT id FROM bulk_tasks
                    WHERE CAST(metadata AS jsonb) @> subset
                      AND (organisation_id = nullif(current_setting('{ORGANISATION_SETTING}', true), '')::uuid
                           OR current_setting('{SYSTEM_SETTING}', true) = 'on')
                $$;
            REVOKE ALL ON FUNCTION {METADATA_FUNCTION}(jsonb) FROM PUBLIC"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "DO $$
            BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                    GRANT EXECUTE ON FUNCTION {METADATA_FUNCTION}(jsonb) TO {APP_ROLE};
                END IF;
            END $$"
        ))
        .await?;
        // The secrets belong to no organisation: only system transactions
        // (startup) read or write them.
        db.execute_unprepared(&format!(
            "DO $$
            BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                    GRANT SELECT, INSERT ON server_secrets TO {APP_ROLE};
                END IF;
            END $$;
            ALTER TABLE server_secrets ENABLE ROW LEVEL SECURITY;
            ALTER TABLE server_secrets FORCE ROW LEVEL SECURITY;
            CREATE POLICY system_only ON server_secrets
                USING (current_setting('{SYSTEM_SETTING}', true) = 'on')"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(&format!(
                "DROP FUNCTION {METADATA_FUNCTION}(jsonb); DROP INDEX bulk_tasks_metadata"
            ))
            .await?;
        }
        for statement in [
            "DROP TABLE server_secrets",
            "DROP INDEX bulk_tasks_pruning",
            "DROP INDEX bulk_tasks_expiry_own",
            "DROP INDEX bulk_tasks_expiry",
            "ALTER TABLE bulk_tasks DROP COLUMN pruned_at",
            "ALTER TABLE bulk_tasks DROP COLUMN retain_for",
            "ALTER TABLE bulk_tasks DROP COLUMN last_heartbeat_at",
            "ALTER TABLE bulk_tasks DROP COLUMN artifacts",
            "ALTER TABLE bulk_tasks DROP COLUMN result",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
