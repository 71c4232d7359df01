//! Address checks for user-supplied links: which IP ranges a fetch may never reach (loopback,
//! private, link-local, unique-local, CGNAT, multicast, unspecified, reserved; IPv4 and IPv6,
//! including IPv4 embedded in IPv6), and resolving a host once so the connection is pinned to the
//! addresses that were checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why `ip` must not be fetched from, or `None` when it is a public unicast address.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() || a == 0 => "an unspecified address",
        _ if ip.is_loopback() => "a loopback address",
        _ if ip.is_private() => "a private address",
        _ if ip.is_link_local() => "a link-local address",
        (100, 64..=127, _) => "a shared (CGNAT) address",
        _ if ip.is_multicast() => "a multicast address",
        _ if ip.is_broadcast() => "a broadcast address",
        (192, 0, 0) => "an IETF protocol address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (198, 18..=19, _) => "a benchmarking address",
        (240..=255, _, _) => "a reserved address",
        _ => return None,
    })
}

fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4); // ::ffff:a.b.c.d
    }
    match s {
        // ::a.b.c.d (deprecated IPv4-compatible), but not :: or ::1
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 => Some(tail(hi, lo)),
        // 64:ff9b::a.b.c.d (NAT64 well-known prefix)
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(tail(hi, lo)),
        // 2002:AABB:CCDD::/48 (6to4)
        [0x2002, hi, lo, ..] => Some(tail(hi, lo)),
        _ => None,
    }
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        return v4_reason(v4);
    }
    let first = ip.segments()[0];
    Some(match first {
        _ if ip.is_unspecified() => "an unspecified address",
        _ if ip.is_loopback() => "a loopback address",
        _ if ip.is_multicast() => "a multicast address",
        f if f & 0xfe00 == 0xfc00 => "a unique-local address",
        f if f & 0xffc0 == 0xfe80 => "a link-local address",
        f if f & 0xffc0 == 0xfec0 => "a site-local address",
        0x2001 if ip.segments()[1] == 0x0db8 => "a documentation address",
        0x0100 if ip.segments()[1..4] == [0, 0, 0] => "a discard-only address",
        _ => return None,
    })
}

/// Resolves `host` (an IP literal is returned as is) to the addresses to connect to.
pub async fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port)).await?.collect();
    if addrs.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{bare} has no address"),
        ));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(s: &str) -> Option<&'static str> {
        forbidden_reason(s.parse().unwrap())
    }

    #[test]
    fn internal_ranges_are_refused() {
        assert_eq!(reason("10.0.0.5"), Some("a private address"));
        assert_eq!(reason("172.16.3.4"), Some("a private address"));
        assert_eq!(reason("192.168.1.1"), Some("a private address"));
        assert_eq!(reason("127.0.0.1"), Some("a loopback address"));
        assert_eq!(reason("169.254.169.254"), Some("a link-local address"));
        assert_eq!(reason("100.100.1.1"), Some("a shared (CGNAT) address"));
        assert_eq!(reason("224.0.0.1"), Some("a multicast address"));
        assert_eq!(reason("0.0.0.0"), Some("an unspecified address"));
        assert_eq!(reason("255.255.255.255"), Some("a broadcast address"));
        assert_eq!(reason("::1"), Some("a loopback address"));
        assert_eq!(reason("::"), Some("an unspecified address"));
        assert_eq!(reason("fd00::1"), Some("a unique-local address"));
        assert_eq!(reason("fe80::1"), Some("a link-local address"));
        assert_eq!(reason("ff02::1"), Some("a multicast address"));
        assert_eq!(reason("::ffff:10.0.0.5"), Some("a private address"));
        assert_eq!(reason("::ffff:127.0.0.1"), Some("a loopback address"));
        assert_eq!(reason("64:ff9b::a9fe:a9fe"), Some("a link-local address"));
        assert_eq!(reason("2002:0a00:0001::1"), Some("a private address"));
    }

    #[test]
    fn public_addresses_pass() {
        assert_eq!(reason("140.82.112.3"), None);
        assert_eq!(reason("185.199.108.133"), None);
        assert_eq!(reason("2606:4700::6810:84e5"), None);
        assert_eq!(reason("100.128.0.1"), None);
    }

    #[tokio::test]
    async fn ip_literals_resolve_to_themselves() {
        assert_eq!(
            resolve("[::1]", 443).await.unwrap(),
            vec!["[::1]:443".parse().unwrap()]
        );
        let local = resolve("localhost", 80).await.unwrap();
        assert!(local.iter().all(|a| forbidden_reason(a.ip()).is_some()));
    }
}
