//! Who sent a callback, as the status page and the log name it: the TCP
//! peer, or, when that peer is a `--trusted-proxy`, the client it
//! forwarded for. For display only; authentication never looks at it.
use crate::http::cidr::Cidr;
use actix_web::http::header::HeaderMap;
use std::net::{IpAddr, SocketAddr};

/// The client address: with `tcp` inside `trusted`, the first address of
/// `X-Forwarded-For` read from the right that is not trusted (each proxy
/// appends the address it received from; only entries added by trusted
/// proxies can be believed). All trusted: the leftmost. An entry that does
/// not parse ends the walk at the last address read, as anything left of
/// it may be forged.
pub fn client(tcp: Option<IpAddr>, headers: &HeaderMap, trusted: &[Cidr]) -> Option<IpAddr> {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip));
    let mut client = tcp?;
    if !is_trusted(client) {
        return Some(client);
    }
    // Several header lines are one list, in order.
    let lines: Vec<&str> = headers.get_all("x-forwarded-for").filter_map(|v| v.to_str().ok()).collect();
    for entry in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
        let Some(ip) = parse(entry.trim()) else { break };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    Some(client)
}

/// An address as proxies write it: bare, or with a port.
fn parse(entry: &str) -> Option<IpAddr> {
    entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in lines {
            map.append(HeaderName::from_static("x-forwarded-for"), HeaderValue::from_str(line).unwrap());
        }
        map
    }

    fn client_of(tcp: &str, lines: &[&str], trusted: &[&str]) -> String {
        let trusted: Vec<Cidr> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        client(Some(tcp.parse().unwrap()), &headers(lines), &trusted).unwrap().to_string()
    }

    #[test]
    fn the_header_counts_only_behind_a_trusted_proxy() {
        let proxy = ["10.0.0.0/8"];
        assert_eq!(client_of("10.0.0.5", &["203.0.113.9"], &proxy), "203.0.113.9");
        assert_eq!(client_of("198.51.100.1", &["203.0.113.9"], &proxy), "198.51.100.1", "untrusted peer");
        assert_eq!(client_of("10.0.0.5", &["203.0.113.9"], &[]), "10.0.0.5", "no proxy trusted");
        assert_eq!(client_of("10.0.0.5", &[], &proxy), "10.0.0.5", "no header");
    }

    #[test]
    fn read_right_to_left_past_trusted_hops_only() {
        let proxies = ["10.0.0.0/8", "192.0.2.0/24"];
        // The sender wrote 1.2.3.4 itself; the ingress saw 203.0.113.9.
        assert_eq!(client_of("10.0.0.5", &["1.2.3.4, 203.0.113.9, 192.0.2.1"], &proxies), "203.0.113.9");
        assert_eq!(client_of("10.0.0.5", &["1.2.3.4", "203.0.113.9:5555", "192.0.2.1"], &proxies), "203.0.113.9");
        assert_eq!(client_of("10.0.0.5", &["[2001:db8::7]:443"], &proxies), "2001:db8::7");
        assert_eq!(client_of("10.0.0.5", &["10.1.1.1, 192.0.2.9"], &proxies), "10.1.1.1", "all trusted: leftmost");
        assert_eq!(client_of("10.0.0.5", &["203.0.113.9, garbage, 192.0.2.1"], &proxies), "192.0.2.1");
    }
}
