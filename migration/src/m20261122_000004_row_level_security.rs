use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// The role the server works as on PostgreSQL when the role it logs in with
/// bypasses row-level security (a superuser, say).
pub const APP_ROLE: &str = "bulkwatch_app";

/// The setting that names the organisation a transaction may see.
pub const ORGANISATION_SETTING: &str = "bulkwatch.organisation_id";

/// The setting that lets a transaction see every organisation: only for
/// authentication, the lease reaper, the event hubs and the CLI.
pub const SYSTEM_SETTING: &str = "bulkwatch.system";

/// Row-level security on PostgreSQL: a second wall behind the store's own
/// organisation filters, so a statement that forgets its filter sees only
/// the organisation its transaction names, and nothing when it names none.
/// SQLite has no such feature; there the store's filters are the only wall.
#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: [(&str, &str); 4] = [
    ("organisations", "id"),
    ("bulk_tasks", "organisation_id"),
    ("task_items", "organisation_id"),
    ("api_keys", "organisation_id"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        let tables = TABLES.map(|(t, _)| t).join(", ");
        // Roles belong to the whole cluster, so several databases (or
        // schemas) migrating at once may race to create it.
        db.execute_unprepared(&format!(
            "DO $$
            BEGIN
                IF (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) THEN
                    BEGIN
                        CREATE ROLE {APP_ROLE} NOLOGIN NOBYPASSRLS;
                    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                    END;
                    EXECUTE format('GRANT USAGE ON SCHEMA %I TO {APP_ROLE}', current_schema());
                    GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {APP_ROLE};
                    IF NOT pg_has_role(current_user, '{APP_ROLE}', 'MEMBER') THEN
                        EXECUTE format('GRANT {APP_ROLE} TO %I', current_user);
                    END IF;
                END IF;
            END $$"
        ))
        .await?;
        for (table, column) in TABLES {
            db.execute_unprepared(&format!(
                "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
                ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
                CREATE POLICY organisation_isolation ON {table}
                    USING ({column} = nullif(current_setting('{ORGANISATION_SETTING}', true), '')::uuid
                        OR current_setting('{SYSTEM_SETTING}', true) = 'on')"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for (table, _) in TABLES {
            db.execute_unprepared(&format!(
                "DROP POLICY organisation_isolation ON {table};
                ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY;
                ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"
            ))
            .await?;
        }
        Ok(())
    }
}
