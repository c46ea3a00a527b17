//! Database handles that name whose rows they may touch.
//!
//! `Scoped` carries one organisation: every store function that reads or
//! writes an organisation's rows takes one and puts the organisation into
//! each of its statements, so a statement without it cannot be written by
//! accident. `System` is the visible exception, for the few callers that act
//! before or across organisations: authentication, the lease reaper's scan
//! and the CLI.

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr};

use super::ReadConn;
use uuid::Uuid;

/// A connection or transaction bound to one organisation.
pub struct Scoped<C> {
    conn: C,
    org: Uuid,
}

/// Reads as one organisation.
pub type Reader<'a> = Scoped<ReadConn<'a>>;
/// A write transaction as one organisation.
pub type Writer = Scoped<DatabaseTransaction>;

impl<C: ConnectionTrait> Scoped<C> {
    pub(super) fn new(conn: C, org: Uuid) -> Self {
        Scoped { conn, org }
    }

    /// The organisation every statement through this handle is filtered by.
    pub fn org(&self) -> Uuid {
        self.org
    }

    pub(crate) fn conn(&self) -> &C {
        &self.conn
    }

    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }
}

impl Writer {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.conn.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.conn.rollback().await
    }
}

/// A connection or transaction that sees every organisation's rows.
pub struct System<C>(C);

impl<C: ConnectionTrait> System<C> {
    pub(super) fn new(conn: C) -> Self {
        System(conn)
    }

    pub(crate) fn conn(&self) -> &C {
        &self.0
    }
}

impl System<DatabaseTransaction> {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.0.commit().await
    }
}
