//! The client address a request came from, for the allowed IPs of API keys.
//!
//! Without trusted proxies it is the peer of the TCP connection. Behind a
//! reverse proxy (BIZOS_TRUSTED_PROXIES: the proxies' addresses or CIDR
//! blocks) it is the right-most address of `X-Forwarded-For` that is not a
//! trusted proxy: every proxy appends the address it saw, so the entries
//! left of the last untrusted one are whatever the client chose to send.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` entries are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client address of a request; None when the server was not given
    /// the connection's peer (a key with allowed IPs is then refused).
    pub fn client(&self, parts: &Parts) -> Option<IpAddr> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())?;
        Some(self.client_behind(peer, parts))
    }

    fn client_behind(&self, peer: IpAddr, parts: &Parts) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        // Every X-Forwarded-For header, in order, as one list.
        let hops: Vec<IpAddr> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|h| h.trim().parse().ok())
            .collect();
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            client = hop;
            if !self.trusts(hop) {
                break;
            }
        }
        client
    }
}

/// BIZOS_TRUSTED_PROXIES: comma-separated addresses or CIDR blocks.
pub fn parse(v: &str) -> Result<TrustedProxies, String> {
    let mut nets = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let net = match item.parse::<IpNet>() {
            Ok(n) => n,
            Err(_) => IpNet::from(
                item.parse::<IpAddr>()
                    .map_err(|_| format!("{item:?} is not an IP address or CIDR block"))?,
            ),
        };
        nets.push(net);
    }
    Ok(TrustedProxies(nets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(peer: &str, forwarded: &[&str]) -> Parts {
        let mut req = axum::http::Request::builder().uri("/api/v1/leads");
        for f in forwarded {
            req = req.header("x-forwarded-for", *f);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 4000)));
        parts
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let none = TrustedProxies::default();
        let p = parts("198.51.100.7", &["203.0.113.9"]);
        assert_eq!(none.client(&p), Some("198.51.100.7".parse().unwrap()));
    }

    #[test]
    fn behind_a_trusted_proxy_the_last_untrusted_hop_is_the_client() {
        let proxies = parse("10.0.0.0/8, 192.0.2.1").unwrap();
        // The client forged the first entry; the proxy appended the real one.
        let p = parts("10.1.2.3", &["1.1.1.1, 203.0.113.9"]);
        assert_eq!(proxies.client(&p), Some("203.0.113.9".parse().unwrap()));
        // Two proxies, two headers.
        let p = parts("10.1.2.3", &["203.0.113.9", "192.0.2.1"]);
        assert_eq!(proxies.client(&p), Some("203.0.113.9".parse().unwrap()));
        // An untrusted peer's header is ignored.
        let p = parts("198.51.100.7", &["203.0.113.9"]);
        assert_eq!(proxies.client(&p), Some("198.51.100.7".parse().unwrap()));
        // No connection info: unknown.
        let (bare, ()) = axum::http::Request::builder()
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(proxies.client(&bare), None);
    }

    #[test]
    fn bad_proxy_lists_are_refused() {
        assert!(parse("10.0.0.0/8, nope").is_err());
        assert_eq!(parse("").unwrap().0.len(), 0);
    }
}
