use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::m20261122_000004_row_level_security::{APP_ROLE, ORGANISATION_SETTING, SYSTEM_SETTING};

/// The change outbox of the NATS JetStream bus: with that bus a change
/// writes its event here in its own transaction (where the database bus
/// queues a NOTIFY), and a relay on any instance publishes the row to the
/// stream and deletes it. A change that commits is published even when its
/// instance dies right after; one that rolls back never is. Unused, and
/// empty, with the database bus.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let db = manager.get_connection();
        let (id, uuid) = match backend {
            DbBackend::Postgres => ("BIGSERIAL PRIMARY KEY", "UUID"),
            _ => ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"),
        };
        db.execute_unprepared(&format!(
            "CREATE TABLE change_outbox (
                id {id},
                organisation_id {uuid} NOT NULL,
                payload TEXT NOT NULL,
                created_at BIGINT NOT NULL
            )"
        ))
        .await?;
        if backend != DbBackend::Postgres {
            return Ok(());
        }
        db.execute_unprepared(&format!(
            "DO $$
            BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}')
                    AND (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) THEN
                    -- UPDATE for the relay's SELECT ... FOR UPDATE.
                    GRANT SELECT, INSERT, UPDATE, DELETE ON change_outbox TO {APP_ROLE};
                    GRANT USAGE ON SEQUENCE change_outbox_id_seq TO {APP_ROLE};
                END IF;
            END $$"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "ALTER TABLE change_outbox ENABLE ROW LEVEL SECURITY;
            ALTER TABLE change_outbox FORCE ROW LEVEL SECURITY;
            CREATE POLICY organisation_isolation ON change_outbox
                USING (organisation_id = nullif(current_setting('{ORGANISATION_SETTING}', true), '')::uuid
                    OR current_setting('{SYSTEM_SETTING}', true) = 'on')"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE change_outbox")
            .await?;
        Ok(())
    }
}
