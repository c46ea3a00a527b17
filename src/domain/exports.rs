//! Export links: a task's items as a file that a browser or `curl` fetches
//! without an API key, because the link itself carries an HMAC-SHA256
//! signature over what it may download and until when.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use super::now_ms;
use super::status::ItemStatus;
use crate::config::SigningSecret;
use crate::error::{AppError, AppResult};
use crate::store::{Db, secrets};

/// Name of the generated signing key in `server_secrets`.
const SECRET_NAME: &str = "export_signing_key";

/// The file formats of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Ndjson,
}

impl ExportFormat {
    /// The file extension, which is also how the route names the format.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Ndjson => "ndjson",
        }
    }

    pub fn from_extension(ext: &str) -> Option<ExportFormat> {
        match ext {
            "csv" => Some(ExportFormat::Csv),
            "ndjson" => Some(ExportFormat::Ndjson),
            _ => None,
        }
    }
}

/// What a link grants: one task's items, in one format, of some statuses
/// (all when empty), until `expires` (Unix seconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportGrant {
    pub organisation_id: Uuid,
    pub task_id: Uuid,
    pub format: ExportFormat,
    pub statuses: Vec<ItemStatus>,
    pub expires: i64,
}

impl ExportGrant {
    /// The statuses in one canonical order without repeats, so that a link
    /// names its statuses in exactly one way.
    pub fn canonical_statuses(mut statuses: Vec<ItemStatus>) -> Vec<ItemStatus> {
        statuses.sort_by_key(|s| s.as_str());
        statuses.dedup();
        statuses
    }

    /// The `status` query parameter: comma-separated, canonical.
    pub fn status_param(&self) -> String {
        let names: Vec<&str> = self.statuses.iter().map(|s| s.as_str()).collect();
        names.join(",")
    }

    /// The signed text: every field, each on a line, versioned.
    fn message(&self) -> String {
        format!(
            "bulkwatch-export-v1\n{}\n{}\n{}\n{}\n{}",
            self.organisation_id,
            self.task_id,
            self.format.extension(),
            self.status_param(),
            self.expires
        )
    }
}

/// Signs and checks export links with a key every instance shares.
#[derive(Clone)]
pub struct Signer {
    key: Arc<[u8]>,
}

impl Signer {
    /// The configured key, or the one stored in the database (generated and
    /// stored on the first start of the first instance).
    pub async fn load(db: &Db, configured: Option<&SigningSecret>) -> AppResult<Signer> {
        if let Some(secret) = configured {
            return Ok(Signer::new(secret.0.as_bytes()));
        }
        // Two v4 UUIDs: 244 bits from the operating system's generator.
        let candidate = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        let tx = db.system_begin().await?;
        let key = secrets::get_or_create(&tx, SECRET_NAME, &candidate, now_ms()).await?;
        tx.commit().await?;
        Ok(Signer::new(key.as_bytes()))
    }

    pub fn new(key: &[u8]) -> Signer {
        Signer { key: key.into() }
    }

    fn mac(&self, grant: &ExportGrant) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(grant.message().as_bytes());
        mac
    }

    /// The signature of `grant`, URL-safe base64.
    pub fn sign(&self, grant: &ExportGrant) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(grant).finalize().into_bytes())
    }

    /// Accepts `signature` for `grant` only when it is this server's and the
    /// grant has not expired; the comparison takes constant time.
    pub fn verify(&self, grant: &ExportGrant, signature: &str) -> AppResult<()> {
        let forbidden = |why: &str| AppError::Forbidden(format!("the export link {why}"));
        let bytes = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| forbidden("is not valid"))?;
        self.mac(grant)
            .verify_slice(&bytes)
            .map_err(|_| forbidden("is not valid"))?;
        if grant.expires < now_ms() / 1000 {
            return Err(forbidden("has expired"));
        }
        Ok(())
    }

    /// A relative link to the export `grant` describes.
    pub fn url(&self, grant: &ExportGrant, task_global_id: &str) -> String {
        let mut url = format!(
            "/exports/{task_global_id}.{}?org={}&expires={}",
            grant.format.extension(),
            grant.organisation_id,
            grant.expires
        );
        if !grant.statuses.is_empty() {
            url.push_str("&status=");
            url.push_str(&grant.status_param());
        }
        url.push_str("&sig=");
        url.push_str(&self.sign(grant));
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> ExportGrant {
        ExportGrant {
            organisation_id: Uuid::now_v7(),
            task_id: Uuid::now_v7(),
            format: ExportFormat::Csv,
            statuses: vec![ItemStatus::Failed],
            expires: now_ms() / 1000 + 60,
        }
    }

    #[test]
    fn a_signature_covers_every_field() {
        let signer = Signer::new(b"0123456789abcdef0123456789abcdef");
        let g = grant();
        let sig = signer.sign(&g);
        assert!(signer.verify(&g, &sig).is_ok());
        let changed = [
            ExportGrant {
                organisation_id: Uuid::now_v7(),
                ..g.clone()
            },
            ExportGrant {
                task_id: Uuid::now_v7(),
                ..g.clone()
            },
            ExportGrant {
                format: ExportFormat::Ndjson,
                ..g.clone()
            },
            ExportGrant {
                statuses: vec![],
                ..g.clone()
            },
            ExportGrant {
                expires: g.expires + 1,
                ..g.clone()
            },
        ];
        for other in changed {
            assert!(signer.verify(&other, &sig).is_err(), "{other:?}");
        }
        assert!(Signer::new(b"another key").verify(&g, &sig).is_err());
        let expired = ExportGrant { expires: 1, ..g };
        assert!(signer.verify(&expired, &signer.sign(&expired)).is_err());
    }
}
