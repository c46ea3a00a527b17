//! Which URLs a webhook may be sent to. Only http(s); and unless private
//! addresses are allowed, no address a request from inside the network
//! could abuse: loopback, private, link-local (cloud metadata at
//! 169.254.169.254 included), shared, multicast and unspecified ones. Names
//! are checked on the address they resolve to when the request is sent
//! (`jobs::webhooks::guard`), so a name that changes its address later
//! (DNS rebinding) is refused then; IP literals are refused at once.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use reqwest::Url;

use crate::error::{AppResult, bad_input};

/// Longest URL accepted.
const MAX_URL: usize = 2048;

/// Why an address may not be a webhook's target, or `None` when it may.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => forbidden_v4(v4),
            None => forbidden_v6(v6),
        },
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local or cloud metadata address")
    } else if a == 100 && (64..128).contains(&b) {
        // Shared (carrier-grade NAT) space; Alibaba's metadata service lives here.
        Some("a shared address")
    } else if ip.is_multicast() || ip.is_broadcast() {
        Some("a multicast or broadcast address")
    } else if ip.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if first & 0xfe00 == 0xfc00 {
        // Unique local addresses; AWS's IPv6 metadata service is fd00:ec2::254.
        Some("a private address")
    } else if let Some(v4) = ip.to_ipv4() {
        // IPv4-compatible (deprecated) forms of a forbidden IPv4 address.
        forbidden_v4(v4)
    } else {
        None
    }
}

/// Parses a webhook URL and refuses what can never be sent: other schemes,
/// credentials, and (unless `allow_private`) IP literals in forbidden ranges.
pub fn check(url: &str, allow_private: bool) -> AppResult<Url> {
    if url.len() > MAX_URL {
        return Err(bad_input(format!("`url` must be at most {MAX_URL} bytes")));
    }
    let parsed = Url::parse(url).map_err(|_| bad_input("`url` is not a valid URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad_input("`url` must be an http or https URL"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad_input("`url` must not carry credentials"));
    }
    if !allow_private && let Some(reason) = literal_forbidden(&parsed) {
        return Err(bad_input(format!(
            "`url` points to {reason}; set BULKWATCH_WEBHOOK_ALLOW_PRIVATE=true to allow it"
        )));
    }
    Ok(parsed)
}

/// Why the URL's host, when it is an IP literal, may not be sent to.
pub fn literal_forbidden(url: &Url) -> Option<&'static str> {
    match url.host()? {
        url::Host::Ipv4(ip) => forbidden(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => forbidden(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(forbidden(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(forbidden(ip.parse().unwrap()).is_none(), "{ip}");
        }
    }

    #[test]
    fn urls() {
        assert!(check("ftp://example.com/", false).is_err());
        assert!(check("http://user:pw@example.com/", false).is_err());
        assert!(check("http://10.0.0.1/hook", false).is_err());
        assert!(check("http://[::1]:8080/hook", false).is_err());
        assert!(check("http://10.0.0.1/hook", true).is_ok());
        assert!(check("https://example.com/hook", false).is_ok());
    }
}
