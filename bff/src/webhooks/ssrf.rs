//! The SSRF guard of webhooks: requests go only to http(s) URLs whose
//! addresses are public.
//!
//! An address passes when it is in no range of [`REFUSED_V4`] /
//! [`REFUSED_V6`] and, for IPv6, inside global unicast (2000::/3; the rest
//! of the IPv6 space is reserved, multicast or special). The tables mirror
//! IANA's special-purpose address registries as the standard library's
//! (unstable) `Ipv4Addr::is_global` / `Ipv6Addr::is_global` read them, and
//! are stricter where a webhook receiver has no business:
//!
//! - multicast (224.0.0.0/4, ff00::/8), which `is_global` lets through;
//! - all of 192.0.0.0/24 and 2001::/23, including the few anycast
//!   services (PCP, TURN, AMT, AS112) IANA calls globally reachable;
//! - every IPv6 form that carries an IPv4 address, refused whole rather
//!   than judged by the IPv4 address inside: mapped (::ffff:0:0/96),
//!   translated (::ffff:0:0:0/96), compatible (::/96), NAT64
//!   (64:ff9b::/96 and 64:ff9b:1::/48), 6to4 (2002::/16) and Teredo
//!   (2001::/32). Which IPv4 host a translator or relay reaches is the
//!   network's business, not the address's (a local NAT64 prefix or a
//!   6to4 relay may lead inside), and a real receiver has a plain IPv4 or
//!   IPv6 address. A BFF on an IPv6-only network behind NAT64/DNS64
//!   therefore reaches IPv4-only receivers not at all.
//!
//! `allow_loopback` (BIZOS_WEBHOOKS_ALLOW_LOOPBACK, development and tests)
//! lets 127.0.0.0/8 and ::1 through, nothing else (not their IPv4-in-IPv6
//! forms).
//!
//! Checked twice: when an endpoint is registered or its URL changed
//! ([`check_url`]: every address the name resolves to must pass), and at
//! every delivery, where [`GuardedResolver`] is the HTTP client's resolver:
//! it resolves, drops the addresses that fail and hands the client only
//! the rest, so the connection goes to an address that was checked (a
//! name that resolves to a public address at registration and to a
//! private one later, DNS rebinding, finds nothing to connect to). IP
//! literals skip resolvers, so [`check_literal`] runs before every request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// IPv4 ranges no webhook goes to: network, prefix length, what it is.
pub const REFUSED_V4: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\""),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private"),
    (
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        "shared (carrier-grade NAT)",
    ),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (
        Ipv4Addr::new(169, 254, 0, 0),
        16,
        "link-local (cloud metadata services)",
    ),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments"),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation"),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "6to4 relay anycast"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (Ipv4Addr::new(255, 255, 255, 255), 32, "broadcast"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved"),
];

/// IPv6 ranges no webhook goes to (the first match names the reason);
/// beyond them, anything outside 2000::/3.
pub const REFUSED_V6: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 128, "unspecified"),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1), 128, "loopback"),
    (
        Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0),
        96,
        "IPv4-mapped",
    ),
    (
        Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0),
        96,
        "IPv4-translated",
    ),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96, "IPv4-compatible"),
    (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96, "NAT64"),
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        "NAT64 (local use)",
    ),
    (
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        "discard-only",
    ),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, "Teredo"),
    (
        Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0),
        48,
        "benchmarking",
    ),
    (
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        23,
        "IETF protocol assignments",
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        "documentation",
    ),
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, "6to4"),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        "documentation",
    ),
    (
        Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0),
        16,
        "segment routing (SRv6)",
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        "unique-local",
    ),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "site-local"),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
];

/// Global unicast, the only IPv6 space with public hosts.
const GLOBAL_UNICAST_V6: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

fn in_v4(ip: Ipv4Addr, (net, len): (Ipv4Addr, u8)) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, (net, len): (Ipv6Addr, u8)) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// Why a request may not go to `ip` (the kind of range it is in), or
/// None when it may.
pub fn refused(ip: IpAddr, allow_loopback: bool) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            if allow_loopback && v4.is_loopback() {
                return None;
            }
            REFUSED_V4
                .iter()
                .find(|(net, len, _)| in_v4(v4, (*net, *len)))
                .map(|(_, _, what)| *what)
        }
        IpAddr::V6(v6) => {
            if allow_loopback && v6 == Ipv6Addr::LOCALHOST {
                return None;
            }
            REFUSED_V6
                .iter()
                .find(|(net, len, _)| in_v6(v6, (*net, *len)))
                .map(|(_, _, what)| *what)
                .or_else(|| (!in_v6(v6, GLOBAL_UNICAST_V6)).then_some("reserved"))
        }
    }
}

/// Whether a request may go to `ip`.
pub fn allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    refused(ip, allow_loopback).is_none()
}

/// The URL of an endpoint as the guard takes it: http(s), a host, no user
/// name or password. The message says what is wrong.
pub fn parse(url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url.trim()).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry a user name or password".into());
    }
    if parsed.host().is_none() {
        return Err("needs a host".into());
    }
    Ok(parsed)
}

/// For a URL whose host is an IP address: whether it may be reached.
pub fn check_literal(url: &Url, allow_loopback: bool) -> Result<(), String> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    match refused(ip, allow_loopback) {
        None => Ok(()),
        Some(what) => Err(format!("{ip} is a non-public address ({what})")),
    }
}

/// The check of a URL when an endpoint is registered or changed: every
/// address it resolves to must pass (at delivery the guarded resolver
/// checks again). `Err` says why, for the client (field `url`).
pub async fn check_url(url: &str, allow_loopback: bool) -> Result<Url, String> {
    let parsed = parse(url)?;
    check_literal(&parsed, allow_loopback)?;
    let Some(url::Host::Domain(host)) = parsed.host() else {
        return Ok(parsed);
    };
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::lookup_host((host, port)),
    )
    .await
    .map_err(|_| format!("the name {host} did not resolve in time"))?
    .map_err(|_| format!("the name {host} does not resolve"))?
    .collect();
    if addrs.is_empty() {
        return Err(format!("the name {host} does not resolve"));
    }
    if let Some((bad, what)) = addrs
        .iter()
        .find_map(|a| refused(a.ip(), allow_loopback).map(|what| (a.ip(), what)))
    {
        return Err(format!(
            "{host} resolves to {bad}, a non-public address ({what})"
        ));
    }
    Ok(parsed)
}

/// The delivery client's resolver: the system's, keeping only addresses
/// that pass (none left: the request fails without connecting).
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    pub allow_loopback: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| allowed(a.ip(), allow_loopback))
                .collect();
            if kept.is_empty() {
                return Err(format!(
                    "{host} resolves to no public address ({}): refused",
                    found
                        .iter()
                        .map(|a| a.ip().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
                .into());
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Every refused range: its first and last address, without the flag.
    #[test]
    fn every_refused_range_is_refused_from_end_to_end() {
        for (net, len, what) in REFUSED_V4 {
            let first = u32::from(*net);
            let last = first | (u32::MAX.checked_shr(u32::from(*len)).unwrap_or(0));
            for a in [first, last] {
                let a = IpAddr::V4(Ipv4Addr::from(a));
                assert!(refused(a, false).is_some(), "{a} ({what}/{len}) passed");
            }
        }
        for (net, len, what) in REFUSED_V6 {
            let first = u128::from(*net);
            let last = first | (u128::MAX.checked_shr(u32::from(*len)).unwrap_or(0));
            for a in [first, last] {
                let a = IpAddr::V6(Ipv6Addr::from(a));
                assert!(refused(a, false).is_some(), "{a} ({what}/{len}) passed");
            }
        }
    }

    #[test]
    fn only_public_addresses_pass() {
        // (address, the reason it is refused)
        for (bad, why) in [
            ("127.0.0.1", "loopback"),
            ("127.1.2.3", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local (cloud metadata services)"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("100.127.255.255", "shared (carrier-grade NAT)"),
            ("0.0.0.0", "\"this network\""),
            ("0.1.2.3", "\"this network\""),
            ("192.0.0.9", "IETF protocol assignments"),
            ("192.0.0.170", "IETF protocol assignments"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.200", "documentation"),
            ("192.88.99.1", "6to4 relay anycast"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.254", "reserved"),
            ("255.255.255.255", "broadcast"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("::ffff:127.0.0.1", "IPv4-mapped"),
            ("::ffff:10.1.2.3", "IPv4-mapped"),
            ("::ffff:169.254.169.254", "IPv4-mapped"),
            ("::ffff:8.8.8.8", "IPv4-mapped"),
            ("::ffff:0:127.0.0.1", "IPv4-translated"),
            ("::ffff:0:a9fe:a9fe", "IPv4-translated"),
            ("::ffff:0:808:808", "IPv4-translated"),
            ("::10.0.0.1", "IPv4-compatible"),
            ("::8.8.8.8", "IPv4-compatible"),
            ("64:ff9b::a9fe:a9fe", "NAT64"),
            ("64:ff9b::808:808", "NAT64"),
            ("64:ff9b:1::a00:1", "NAT64 (local use)"),
            ("64:ff9b:1:ffff::1", "NAT64 (local use)"),
            ("100::1", "discard-only"),
            ("2001::1", "Teredo"),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
            ("2001:2::1", "benchmarking"),
            ("2001:1::1", "IETF protocol assignments"),
            ("2001:20::1", "IETF protocol assignments"),
            ("2001:1ff:ffff::1", "IETF protocol assignments"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("2002:a00:1::1", "6to4"),
            ("2002:808:808::1", "6to4"),
            ("5f00::1", "segment routing (SRv6)"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("ff0e::1", "multicast"),
            ("1::1", "reserved"),
            ("4000::1", "reserved"),
            ("::1:0:0:1", "reserved"),
        ] {
            assert_eq!(refused(ip(bad), false), Some(why), "{bad}");
        }
        for good in [
            "8.8.8.8",
            "1.1.1.1",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.255.255",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.1.0",
            "192.31.196.1",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2001:200::1",
            "2001:4860:4860::8888",
            "2003::1",
            "2a00:1450:4001::1",
            "3ffe::1",
        ] {
            assert_eq!(refused(ip(good), false), None, "{good} refused");
        }
        // The development flag opens loopback only, not its IPv4-in-IPv6
        // forms.
        for lo in ["127.0.0.1", "127.255.255.254", "::1"] {
            assert!(allowed(ip(lo), true), "{lo}");
        }
        for still in [
            "10.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "fd00::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:0:7f00:1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
        ] {
            assert!(!allowed(ip(still), true), "{still} passed with the flag");
        }
    }

    #[test]
    fn urls_are_http_with_a_host_and_no_credentials() {
        assert!(parse("https://hooks.example.com/x?y=1").is_ok());
        for bad in [
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "file:///etc/passwd",
            "not a url",
            "http://",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let u = parse("http://10.1.2.3:8080/x").unwrap();
        assert!(check_literal(&u, true).is_err());
        let u = parse("http://[::1]:8080/x").unwrap();
        assert!(check_literal(&u, false).is_err());
        assert!(check_literal(&u, true).is_ok());
        let u = parse("http://93.184.216.34/").unwrap();
        assert!(check_literal(&u, false).is_ok());
    }

    #[tokio::test]
    async fn names_are_resolved_and_checked() {
        // localhost resolves from /etc/hosts (no network): loopback.
        let err = check_url("http://localhost:9/hook", false)
            .await
            .unwrap_err();
        assert!(err.contains("non-public"), "{err}");
        assert!(check_url("http://localhost:9/hook", true).await.is_ok());
        let resolver = GuardedResolver {
            allow_loopback: false,
        };
        let err = resolver
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("refused");
        assert!(err.to_string().contains("no public address"), "{err}");
        let resolver = GuardedResolver {
            allow_loopback: true,
        };
        let addrs: Vec<SocketAddr> = resolver
            .resolve("localhost".parse().unwrap())
            .await
            .expect("loopback allowed")
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
