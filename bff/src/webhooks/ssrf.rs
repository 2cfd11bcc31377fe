//! The SSRF guard of webhooks: requests go only to http(s) URLs whose
//! addresses are public.
//!
//! Refused: loopback, private (RFC 1918), link-local (169.254/16, which
//! holds the cloud metadata services, and fe80::/10), unique-local
//! (fc00::/7), unspecified and "this network" (0.0.0.0/8, ::), shared
//! (100.64/10), multicast, broadcast, reserved, documentation and
//! benchmarking ranges, and IPv6 forms that carry an IPv4 address
//! (::ffff:a.b.c.d, NAT64 64:ff9b::/96, the old ::a.b.c.d) whose IPv4
//! address is one of those. `allow_loopback` (BIZOS_WEBHOOKS_ALLOW_LOOPBACK,
//! development and tests) lets 127.0.0.0/8 and ::1 through, nothing else.
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

/// Whether a request may go to `ip`.
pub fn allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => allowed_v4(v4, allow_loopback),
        IpAddr::V6(v6) => allowed_v6(v6, allow_loopback),
    }
}

fn allowed_v4(ip: Ipv4Addr, allow_loopback: bool) -> bool {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        return allow_loopback;
    }
    !(a == 0                                   // this network, 0.0.0.0
        || a == 10                             // private
        || (a == 100 && (64..128).contains(&b)) // shared (carrier-grade NAT)
        || (a == 169 && b == 254)              // link-local, metadata services
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)      // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)      // documentation
        || (a == 192 && b == 88 && c == 99)    // 6to4 relay anycast
        || (a == 192 && b == 168)              // private
        || (a == 198 && (b == 18 || b == 19))  // benchmarking
        || (a == 198 && b == 51 && c == 100)   // documentation
        || (a == 203 && b == 0 && c == 113)    // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn allowed_v6(ip: Ipv6Addr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    if ip.is_unspecified() {
        return false;
    }
    let s = ip.segments();
    // IPv4 inside IPv6: mapped (::ffff:0:0/96), NAT64 (64:ff9b::/96) and
    // the deprecated compatible form (::/96): judged as the IPv4 address.
    let embedded = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        return allowed_v4(embedded, allow_loopback);
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return allowed_v4(embedded, allow_loopback);
    }
    !((s[0] & 0xfe00) == 0xfc00         // unique-local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80    // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0    // site-local (deprecated) fec0::/10
        || (s[0] & 0xff00) == 0xff00    // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[0] == 0x2002               // 6to4: an IPv4 address inside
        || (s[0] == 0x0100 && s[1..4] == [0; 3])) // discard-only 100::/64
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
    if allowed(ip, allow_loopback) {
        Ok(())
    } else {
        Err(format!(
            "{ip} is a loopback, private, link-local or otherwise non-public address"
        ))
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
    if let Some(bad) = addrs.iter().find(|a| !allowed(a.ip(), allow_loopback)) {
        return Err(format!(
            "{host} resolves to {}, a loopback, private, link-local or otherwise non-public address",
            bad.ip()
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

    #[test]
    fn only_public_addresses_pass() {
        for bad in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::10.0.0.1",
            "2001:db8::1",
            "2002:a00:1::1",
        ] {
            assert!(!allowed(ip(bad), false), "{bad} passed");
        }
        for good in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(allowed(ip(good), false), "{good} refused");
        }
        // The development flag opens loopback only.
        for lo in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(allowed(ip(lo), true), "{lo}");
        }
        for still in ["10.0.0.1", "169.254.169.254", "0.0.0.0", "fd00::1", "::"] {
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
