//! `[lines]`: the limits and the exposure of the seed's TCP/UDP line protocol
//! (`docs/line-protocol.md`).

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;

/// `[lines]` of `offload.toml`: limits of the seed's TCP/UDP line protocol
/// (`docs/line-protocol.md`). Every field is optional; see [`LineLimits`] for the defaults.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LinesSection {
    /// Largest request (TCP) or datagram (UDP), in bytes.
    pub max_request_bytes: Option<usize>,
    /// TCP connections served at once; more are answered `503:` and closed.
    pub max_connections: Option<usize>,
    /// A connection that sends nothing for this long is answered `408:` and closed.
    pub idle_timeout_ms: Option<u64>,
    /// The whole request must arrive within this time, else `408:`.
    pub request_timeout_ms: Option<u64>,
    /// Quiet time that ends a request from a client that neither half-closes nor ends its
    /// request with a newline.
    pub end_gap_ms: Option<u64>,
    /// Attempts of a line-protocol job when its pool does not set `max_attempts`.
    pub max_attempts: Option<u32>,
    /// Networks (`10.0.0.0/8`, `192.168.1.7`, `fd00::/8`) allowed beyond loopback: the explicit
    /// opt-in for a non-loopback bind or for running beside a `token`.
    pub allow: Option<Vec<String>>,
    /// Requests waiting for a job's end at once (`module:data`, `queue:get`).
    pub max_waits: Option<usize>,
    /// The longest wait for a job's end.
    pub max_wait_ms: Option<u64>,
    /// UDP datagrams per second per source address.
    pub udp_rate_per_s: Option<u32>,
    /// UDP burst per source address.
    pub udp_burst: Option<u32>,
    /// UDP-submitted jobs not yet ended, at most.
    pub udp_max_queued: Option<usize>,
}

/// The limits of the seed's TCP/UDP line protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineLimits {
    /// Largest request or datagram (default 1 MiB; a datagram is at most 65,507 bytes anyway).
    pub max_request: usize,
    /// TCP connections served at once (default 256).
    pub max_connections: usize,
    /// Silence before the first byte that drops a connection (default 10 s).
    pub idle_timeout: Duration,
    /// Time for the whole request to arrive (default 30 s).
    pub request_timeout: Duration,
    /// Quiet time that ends a request without newline or half-close (default 100 ms).
    pub end_gap: Duration,
    /// Attempts of a line-protocol job whose pool does not set `max_attempts` (default 1: the
    /// client is waiting; a failure is answered `500:` at once).
    pub max_attempts: u32,
    /// Networks allowed beyond loopback (default none: loopback peers only). Non-empty is the
    /// explicit opt-in for a non-loopback bind and for the line protocol beside a `token`.
    pub allow: Vec<Network>,
    /// Requests waiting for a job's end at once (default 128, below `max_connections` so that
    /// waits never take every connection); more are answered `503:`.
    pub max_waits: usize,
    /// The longest wait for a job's end (default 5 minutes); then `504:` (the job goes on).
    pub max_wait: Duration,
    /// UDP datagrams per second per source address (default 100); over it: dropped.
    pub udp_rate_per_s: u32,
    /// UDP burst per source address (default 200).
    pub udp_burst: u32,
    /// UDP-submitted jobs not yet ended (default 10,000); over it: dropped.
    pub udp_max_queued: usize,
}

impl Default for LineLimits {
    fn default() -> Self {
        Self {
            max_request: 1 << 20,
            max_connections: 256,
            idle_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            end_gap: Duration::from_millis(100),
            max_attempts: 1,
            allow: Vec::new(),
            max_waits: 128,
            max_wait: Duration::from_secs(300),
            udp_rate_per_s: 100,
            udp_burst: 200,
            udp_max_queued: 10_000,
        }
    }
}

impl LineLimits {
    pub(super) fn apply(&mut self, s: LinesSection) -> Result<(), ConfigError> {
        if let Some(n) = s.max_request_bytes {
            self.max_request = n.max(16);
        }
        if let Some(n) = s.max_connections {
            self.max_connections = n.max(1);
        }
        if let Some(ms) = s.idle_timeout_ms {
            self.idle_timeout = Duration::from_millis(ms.max(10));
        }
        if let Some(ms) = s.request_timeout_ms {
            self.request_timeout = Duration::from_millis(ms.max(10));
        }
        if let Some(ms) = s.end_gap_ms {
            self.end_gap = Duration::from_millis(ms.max(1));
        }
        if let Some(n) = s.max_attempts {
            self.max_attempts = n.max(1);
        }
        if let Some(allow) = s.allow {
            self.allow = allow
                .iter()
                .map(|a| a.parse())
                .collect::<Result<_, _>>()
                .map_err(|e: String| ConfigError::Invalid(format!("[lines] allow: {e}")))?;
        }
        if let Some(n) = s.max_waits {
            self.max_waits = n.max(1);
        }
        if let Some(ms) = s.max_wait_ms {
            self.max_wait = Duration::from_millis(ms.clamp(10, 24 * 3600 * 1000));
        }
        if let Some(n) = s.udp_rate_per_s {
            self.udp_rate_per_s = n.max(1);
        }
        if let Some(n) = s.udp_burst {
            self.udp_burst = n.max(1);
        }
        if let Some(n) = s.udp_max_queued {
            self.udp_max_queued = n;
        }
        Ok(())
    }

    /// Whether `peer` may use the line protocol: loopback, or inside an `allow` network.
    pub fn allows(&self, peer: IpAddr) -> bool {
        let peer = canonical(peer);
        peer.is_loopback() || self.allow.iter().any(|n| n.contains(peer))
    }
}

/// A network of `[lines] allow`: `10.0.0.0/8`, `fd00::/8`, or one address (`192.168.1.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let (ip, prefix) = t.split_once('/').unwrap_or((t, ""));
        let addr: IpAddr = ip
            .parse()
            .map_err(|_| format!("{s:?} is not an address or network (like 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length is 0..={max}"))?
        };
        Ok(Self {
            addr: canonical(addr),
            prefix,
        })
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An IPv4-mapped IPv6 address as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_and_contain() {
        let n: Network = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains("10.200.3.4".parse().unwrap()));
        assert!(
            n.contains("::ffff:10.1.1.1".parse().unwrap()),
            "IPv4-mapped counts"
        );
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        let one: Network = "192.168.1.7".parse().unwrap();
        assert_eq!(one.to_string(), "192.168.1.7/32");
        assert!(!one.contains("192.168.1.8".parse().unwrap()));
        let v6: Network = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129", ""] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
        let mut l = LineLimits::default();
        assert!(l.allows("127.0.0.2".parse().unwrap()));
        assert!(l.allows("::1".parse().unwrap()));
        assert!(!l.allows("10.0.0.1".parse().unwrap()));
        l.allow = vec![n];
        assert!(l.allows("10.0.0.1".parse().unwrap()));
        assert!(!l.allows("192.168.0.1".parse().unwrap()));
    }
}
