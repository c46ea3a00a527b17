//! Organisations, API keys and what a key may do.
//!
//! A key is `bw_` and 64 random hex digits, shown once at creation; only its
//! SHA-256 is stored. Unknown and revoked keys are refused alike.

use std::fmt;

use entity::{api_key, organisation};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{Principal, now_ms};
use crate::error::{AppError, AppResult, bad_input, conflict, not_found};
use crate::store::{DEFAULT_ORGANISATION_ID, Db, keys};

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Read tasks and items.
    TasksRead,
    /// Create, append, seal, cancel, retry, fail and delete tasks.
    TasksWrite,
    /// Claim items, renew leases, report outcomes.
    ItemsReport,
    /// Create, change and delete webhook endpoints; read and redeliver their deliveries.
    WebhooksManage,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::TasksRead,
        Scope::TasksWrite,
        Scope::ItemsReport,
        Scope::WebhooksManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::TasksRead => "tasks:read",
            Scope::TasksWrite => "tasks:write",
            Scope::ItemsReport => "items:report",
            Scope::WebhooksManage => "webhooks:manage",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A set of scopes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

impl Scopes {
    pub fn all() -> Scopes {
        Scope::ALL.into_iter().collect()
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & (1 << scope as u8) != 0
    }

    /// Parses `tasks:read,items:report`.
    pub fn parse_list(text: &str) -> AppResult<Scopes> {
        let scopes = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                Scope::parse(s).ok_or_else(|| {
                    bad_input(format!(
                        "unknown scope {s:?}; known: tasks:read, tasks:write, items:report, webhooks:manage"
                    ))
                })
            })
            .collect::<AppResult<Vec<Scope>>>()?;
        Ok(scopes.into_iter().collect())
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |bits, s| bits | 1 << s as u8))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Scope::ALL
            .into_iter()
            .filter(|s| self.contains(*s))
            .map(Scope::as_str)
            .collect();
        f.write_str(&names.join(","))
    }
}

/// The public prefix of a key (`bw_` and 8 hex digits), kept inline so
/// that a principal stays `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyPrefix {
    bytes: [u8; KeyPrefix::MAX],
    len: u8,
}

impl KeyPrefix {
    const MAX: usize = 16;

    /// The prefix, cut to 16 bytes at a character boundary.
    pub fn new(text: &str) -> KeyPrefix {
        let mut len = text.len().min(Self::MAX);
        while !text.is_char_boundary(len) {
            len -= 1;
        }
        let mut bytes = [0; Self::MAX];
        bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
        KeyPrefix {
            bytes,
            len: len as u8,
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Debug for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Refreshing `last_used_at` at most this often keeps reads from writing.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// The principal a presented key stands for.
pub async fn authenticate(db: &Db, token: &str) -> AppResult<Principal> {
    let presented = hash(token);
    // Before a key is known there is no organisation to scope the lookup to.
    let key = keys::find_key_by_hash(&db.system_reader().await?, &presented).await?;
    let valid = key.filter(|k| {
        bool::from(k.key_hash.as_bytes().ct_eq(presented.as_bytes())) && k.revoked_at.is_none()
    });
    let Some(key) = valid else {
        return Err(AppError::Unauthenticated("the API key is not valid".into()));
    };
    let now = now_ms();
    if key
        .last_used_at
        .is_none_or(|t| now - t > LAST_USED_RESOLUTION_MS)
    {
        // Best effort, off the request's path: a busy writer must not
        // hold up (or fail) a read.
        let (db, id) = (db.clone(), key.id);
        tokio::spawn(async move {
            if let Err(e) = touch(&db, id, now).await {
                tracing::debug!(error = %e, "recording a key's last use");
            }
        });
    }
    Ok(Principal {
        organisation_id: key.organisation_id,
        scopes: Scopes::parse_list(&key.scopes)?,
        key_id: key.id,
        key_prefix: KeyPrefix::new(&key.prefix),
    })
}

/// A new key, and the only copy of its secret.
pub struct NewKey {
    pub key: api_key::Model,
    pub token: String,
}

pub async fn create_key(db: &Db, organisation_id: Uuid, scopes: Scopes) -> AppResult<NewKey> {
    if scopes == Scopes::default() {
        return Err(bad_input("a key needs at least one scope"));
    }
    let token = format!("bw_{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let key = api_key::Model {
        id: Uuid::now_v7(),
        organisation_id,
        prefix: token[..11].to_owned(),
        key_hash: hash(&token),
        scopes: scopes.to_string(),
        created_at: now_ms(),
        last_used_at: None,
        revoked_at: None,
    };
    let tx = db.system_begin().await?;
    keys::insert_key(&tx, key.clone()).await?;
    tx.commit().await?;
    Ok(NewKey { key, token })
}

pub async fn organisation_named(db: &Db, name: &str) -> AppResult<organisation::Model> {
    keys::find_org_by_name(&db.system_reader().await?, name)
        .await?
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "organisation {name:?} not found; see `bulkwatch orgs list`, or create it with `bulkwatch orgs create {name}`"
            ))
        })
}

/// Every organisation, for the CLI.
pub async fn organisations(db: &Db) -> AppResult<Vec<organisation::Model>> {
    Ok(keys::list_orgs(&db.system_reader().await?).await?)
}

pub async fn create_organisation(db: &Db, name: &str) -> AppResult<organisation::Model> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(bad_input("an organisation name is 1 to 200 bytes"));
    }
    let tx = db.system_begin().await?;
    if keys::find_org_by_name(&tx, name).await?.is_some() {
        return Err(conflict(format!("organisation {name:?} exists")));
    }
    let org = organisation::Model {
        id: Uuid::now_v7(),
        name: name.to_owned(),
        created_at: now_ms(),
    };
    keys::insert_org(&tx, org.clone()).await?;
    tx.commit().await?;
    Ok(org)
}

/// Revokes the active key that `named` names: its id, the prefix that
/// `keys list` shows (or a longer start of the key), or the whole key.
/// Refuses a prefix that more than one active key starts with.
pub async fn revoke(db: &Db, named: &str) -> AppResult<api_key::Model> {
    let named = named.trim();
    let active: Vec<api_key::Model> = list(db)
        .await?
        .into_iter()
        .map(|(key, _)| key)
        .filter(|k| k.revoked_at.is_none())
        .collect();
    let matching: Vec<&api_key::Model> = match Uuid::try_parse(named) {
        Ok(id) => active.iter().filter(|k| k.id == id).collect(),
        Err(_) if named.len() >= 6 => active
            .iter()
            .filter(|k| {
                named.starts_with(&k.prefix)
                    && (named.len() <= k.prefix.len() || hash(named) == k.key_hash)
                    || k.prefix.starts_with(named)
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let key = match matching.as_slice() {
        [key] => (*key).clone(),
        [] => {
            return Err(AppError::NotFound(format!(
                "no active key has the id or prefix {named:?}; `bulkwatch keys list` shows both"
            )));
        }
        several => {
            let ids: Vec<String> = several.iter().map(|k| k.id.to_string()).collect();
            return Err(conflict(format!(
                "{} active keys start with {named:?} ({}); name one by its id",
                several.len(),
                ids.join(", ")
            )));
        }
    };
    let tx = db.system_begin().await?;
    if keys::revoke_key(&tx, key.id, now_ms()).await? {
        tx.commit().await?;
        Ok(key)
    } else {
        Err(not_found("active key"))
    }
}

/// Every key with its organisation's name, for the CLI.
pub async fn list(db: &Db) -> AppResult<Vec<(api_key::Model, String)>> {
    Ok(keys::list_keys(&db.system_reader().await?).await?)
}

async fn touch(db: &Db, id: Uuid, now: i64) -> Result<(), sea_orm::DbErr> {
    let tx = db.system_begin().await?;
    keys::touch_key(&tx, id, now).await?;
    tx.commit().await
}

/// On a database without any key, makes an admin key of the default
/// organisation so that a fresh install can be used at once.
pub async fn first_start_key(db: &Db) -> AppResult<Option<String>> {
    if keys::count_keys(&db.system_reader().await?).await? > 0 {
        return Ok(None);
    }
    let org = DEFAULT_ORGANISATION_ID
        .parse()
        .map_err(|_| AppError::Internal("default organisation id".into()))?;
    Ok(Some(create_key(db, org, Scopes::all()).await?.token))
}
