//! The address check at send time. With private addresses forbidden, names
//! resolve through `GuardedResolver`, which refuses a name when any of its
//! addresses is forbidden: the address checked is the address connected
//! to, so a name that resolves to a public address at creation and to
//! 127.0.0.1 later (DNS rebinding) is refused. IP literals never reach a
//! resolver and are checked by `refused_literal` before the request.

use std::net::SocketAddr;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::webhook_urls::{forbidden, literal_forbidden};

/// Why a request was not sent.
#[derive(Debug, thiserror::Error)]
#[error("refused: {0}; set BULKWATCH_WEBHOOK_ALLOW_PRIVATE=true to allow it")]
pub struct Refused(pub String);

pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(reason) = addrs.iter().find_map(|a| forbidden(a.ip())) {
                return Err(Box::new(Refused(format!("{host} resolves to {reason}"))) as _);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The refusal of a URL whose host is a forbidden IP literal.
pub fn refused_literal(url: &Url) -> Option<Refused> {
    literal_forbidden(url).map(|reason| Refused(format!("the URL points to {reason}")))
}
