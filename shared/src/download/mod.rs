//! Server-side downloads (import by URL, generation results) under one
//! guard (SPEC §5): only `https` (plain `http` where private networks are
//! allowed: the local stack), every address a name resolves to public — not
//! loopback, private, link-local (the instance metadata service), CGNAT,
//! multicast or reserved —, redirects re-checked (at most 5), size and time
//! capped, bodies streamed into S3 without being held whole. The address
//! rules are here; `client.rs` puts them into the HTTP client's resolver,
//! `object.rs` streams a body into the bucket.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

mod client;
mod object;

pub use client::{blocked_cause, guarded_client};
pub use object::{FetchError, Limits, PART_BYTES, Placement, Stored, fetch_into_bucket};

/// A URL or address the download guard refuses, with the reason to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked(pub String);

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Blocked {}

/// Whether an address is on the public internet: not loopback, private,
/// link-local (169.254.169.254 is the metadata service), CGNAT, multicast,
/// documentation, benchmarking or otherwise reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..=127).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..=19).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || first == 0x0064 // NAT64 64:ff9b::/96 and local-use 64:ff9b:1::/48
        || first == 0x2002 // 6to4, which embeds an IPv4 address
        || (first & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
        || ip.segments()[..6].iter().all(|s| *s == 0)) // IPv4-compatible ::/96
}

/// The scheme and, for an IP-literal host, the address of a URL.
pub fn check_url(url: &url::Url, allow_private: bool) -> Result<(), Blocked> {
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(Blocked("only https URLs can be fetched".into())),
    }
    let literal = match url.host() {
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        Some(url::Host::Domain(_)) => None,
        None => return Err(Blocked("the URL has no host".into())),
    };
    if let Some(ip) = literal
        && !allow_private
        && !is_public(ip)
    {
        return Err(Blocked(
            "the URL points to a private network address".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "2001:db8::1",
            "64:ff9b::a9fe:a9fe",
            "::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "fec0::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "52.95.110.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_need_https_and_a_public_literal() {
        let url = |u: &str| url::Url::parse(u).unwrap();
        assert!(check_url(&url("https://example.com/a.png"), false).is_ok());
        assert!(check_url(&url("http://example.com/a.png"), false).is_err());
        assert!(check_url(&url("ftp://example.com/a.png"), false).is_err());
        assert!(check_url(&url("file:///etc/passwd"), false).is_err());
        assert!(check_url(&url("https://169.254.169.254/latest/meta-data"), false).is_err());
        assert!(check_url(&url("https://[::1]/x"), false).is_err());
        assert!(check_url(&url("https://8.8.8.8/x"), false).is_ok());
        // The local stack allows its own loopback server, over http too.
        assert!(check_url(&url("http://127.0.0.1:8080/x"), true).is_ok());
        assert!(check_url(&url("ftp://127.0.0.1/x"), true).is_err());
    }
}
