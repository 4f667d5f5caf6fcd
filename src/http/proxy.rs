//! Proxy headers: which peers are trusted (`--forwarded-allow-ips`) and how `X-Forwarded-*` and
//! RFC 7239 `Forwarded` rewrite a request's client, scheme and host. Pure logic, no I/O.

use std::net::IpAddr;

/// One trusted entry: an address, a network in CIDR form, or a literal such as `unix:`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Trusted {
    Ip(IpAddr),
    Network { base: IpAddr, prefix: u8 },
    Literal(String),
}

/// The set of peers whose proxy headers are believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedHosts {
    everyone: bool,
    entries: Vec<Trusted>,
}

/// An entry in `--forwarded-allow-ips` that is not an address, a network or a literal.
#[derive(Debug, PartialEq, Eq)]
pub struct BadTrustedHost(pub String);

impl TrustedHosts {
    /// Parse a comma-separated list: IPs, CIDR networks, `*`, or other literals (`unix:`).
    pub fn parse(list: &str) -> Result<Self, BadTrustedHost> {
        let mut hosts = TrustedHosts::default();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "*" {
                hosts.everyone = true;
            } else if let Some((base, prefix)) = item.split_once('/') {
                let base: IpAddr = base.parse().map_err(|_| BadTrustedHost(item.into()))?;
                let max = if base.is_ipv4() { 32 } else { 128 };
                let prefix: u8 =
                    prefix.parse().ok().filter(|p| *p <= max).ok_or_else(|| BadTrustedHost(item.into()))?;
                hosts.entries.push(Trusted::Network { base, prefix });
            } else if let Ok(ip) = item.parse::<IpAddr>() {
                hosts.entries.push(Trusted::Ip(ip));
            } else if item.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return Err(BadTrustedHost(item.into()));
            } else {
                hosts.entries.push(Trusted::Literal(item.into()));
            }
        }
        Ok(hosts)
    }

    /// Is the peer `host` (an IP address string, or a literal) trusted?
    pub fn contains(&self, host: &str) -> bool {
        if self.everyone {
            return true;
        }
        let ip = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
        self.entries.iter().any(|entry| match (entry, ip) {
            (Trusted::Ip(trusted), Some(ip)) => *trusted == ip,
            (Trusted::Network { base, prefix }, Some(ip)) => in_network(ip, *base, *prefix),
            (Trusted::Literal(literal), _) => literal == host,
            _ => false,
        })
    }

    /// Walk a hop list (nearest proxy last) right to left and return the first untrusted hop;
    /// if every hop is trusted, the leftmost one.
    fn client_from_hops<'a>(&self, hops: &[&'a str]) -> Option<&'a str> {
        if self.everyone {
            return hops.first().copied();
        }
        hops.iter().rev().find(|hop| !self.contains(hop)).or(hops.first()).copied()
    }
}

fn in_network(ip: IpAddr, base: IpAddr, prefix: u8) -> bool {
    match (ip, base) {
        (IpAddr::V4(ip), IpAddr::V4(base)) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
            u32::from(ip) & mask == u32::from(base) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(base)) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
            u128::from(ip) & mask == u128::from(base) & mask
        }
        (IpAddr::V6(ip), IpAddr::V4(_)) => {
            ip.to_ipv4_mapped().is_some_and(|v4| in_network(v4.into(), base, prefix))
        }
        _ => false,
    }
}

/// What the proxy headers say about the original request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Forwarded {
    pub client: Option<String>,
    pub scheme: Option<&'static str>,
    pub host: Option<String>,
}

fn known_scheme(proto: &str) -> Option<&'static str> {
    match proto.trim().to_ascii_lowercase().as_str() {
        "http" => Some("http"),
        "https" => Some("https"),
        "ws" => Some("ws"),
        "wss" => Some("wss"),
        _ => None,
    }
}

/// Strip quotes and brackets and a port from a `for=` node (`"[2001:db8::1]:4711"`, `1.2.3.4:80`).
fn node_host(node: &str) -> &str {
    let node = node.trim().trim_matches('"');
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match node.split_once(':') {
        Some((host, _port)) if !host.contains(':') => host,
        _ => node,
    }
}

/// The proxy headers `read_forwarded` reads.
const FORWARDED: &str = "forwarded";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_HOST: &str = "x-forwarded-host";

/// Is `name` one of the headers `read_forwarded` reads?
pub fn is_proxy_header(name: &str) -> bool {
    matches!(name, FORWARDED | X_FORWARDED_PROTO | X_FORWARDED_FOR | X_FORWARDED_HOST)
}

/// Read proxy headers for a request whose direct peer is trusted. `header(name)` returns every
/// value of a header, in order. `Forwarded` wins over `X-Forwarded-*` when both are present.
pub fn read_forwarded<'h>(trusted: &TrustedHosts, header: impl Fn(&str) -> Vec<&'h str>) -> Forwarded {
    let forwarded = header(FORWARDED);
    if !forwarded.is_empty() {
        return read_rfc7239(trusted, &forwarded.join(","));
    }
    let mut out = Forwarded::default();
    if let Some(proto) = header(X_FORWARDED_PROTO).last() {
        // A chain of protocols: the last one is what the nearest proxy saw.
        out.scheme = proto.rsplit(',').next().and_then(known_scheme);
    }
    let for_values = header(X_FORWARDED_FOR).join(",");
    let hops: Vec<&str> = for_values.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    out.client = trusted.client_from_hops(&hops).map(str::to_string);
    if let Some(host) = header(X_FORWARDED_HOST).last() {
        let host = host.rsplit(',').next().unwrap_or("").trim();
        if !host.is_empty() {
            out.host = Some(host.to_string());
        }
    }
    out
}

fn read_rfc7239(trusted: &TrustedHosts, value: &str) -> Forwarded {
    let elements: Vec<Vec<(String, &str)>> = value
        .split(',')
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"')))
                .collect()
        })
        .collect();
    fn param<'v>(element: &[(String, &'v str)], key: &str) -> Option<&'v str> {
        element.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
    // The client is the first untrusted `for=` from the right; its element describes the request
    // as the proxy that received it from the client saw it.
    let chosen = elements
        .iter()
        .rev()
        .find(|element| param(element, "for").is_none_or(|node| !trusted.contains(node_host(node))))
        .or(elements.first());
    let Some(element) = chosen else { return Forwarded::default() };
    Forwarded {
        client: param(element, "for").map(|node| node_host(node).to_string()),
        scheme: param(element, "proto").and_then(known_scheme),
        host: param(element, "host").filter(|h| !h.is_empty()).map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Vec<&'a str> + 'a {
        move |name| pairs.iter().filter(|(n, _)| *n == name).map(|(_, v)| *v).collect()
    }

    #[test]
    fn parses_ips_networks_wildcard_and_literals() {
        let hosts = TrustedHosts::parse("127.0.0.1, 10.0.0.0/8, ::1, fd00::/8, unix:").unwrap();
        assert!(hosts.contains("127.0.0.1"));
        assert!(hosts.contains("10.1.2.3"));
        assert!(!hosts.contains("11.0.0.1"));
        assert!(hosts.contains("::1"));
        assert!(hosts.contains("fd12::5"));
        assert!(hosts.contains("unix:"));
        assert!(!hosts.contains("192.168.0.1"));
        assert!(TrustedHosts::parse("*").unwrap().contains("203.0.113.9"));
        assert_eq!(TrustedHosts::parse("10.0.0.0/33"), Err(BadTrustedHost("10.0.0.0/33".into())));
        assert_eq!(TrustedHosts::parse("1.2.3"), Err(BadTrustedHost("1.2.3".into())));
    }

    #[test]
    fn x_forwarded_for_stops_at_the_first_untrusted_hop() {
        let trusted = TrustedHosts::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let h = [("x-forwarded-for", "1.1.1.1, 6.6.6.6, 10.0.0.5"), ("x-forwarded-proto", "https")];
        let fwd = read_forwarded(&trusted, headers(&h));
        assert_eq!(fwd.client.as_deref(), Some("6.6.6.6"), "1.1.1.1 could be spoofed by 6.6.6.6");
        assert_eq!(fwd.scheme, Some("https"));
    }

    #[test]
    fn all_trusted_hops_give_the_leftmost() {
        let trusted = TrustedHosts::parse("10.0.0.0/8").unwrap();
        let h = [("x-forwarded-for", "10.0.0.1, 10.0.0.2")];
        assert_eq!(read_forwarded(&trusted, headers(&h)).client.as_deref(), Some("10.0.0.1"));
    }

    #[test]
    fn unknown_proto_is_ignored_and_host_is_taken() {
        let trusted = TrustedHosts::parse("*").unwrap();
        let h = [("x-forwarded-proto", "gopher"), ("x-forwarded-host", "example.com")];
        let fwd = read_forwarded(&trusted, headers(&h));
        assert_eq!(fwd.scheme, None);
        assert_eq!(fwd.host.as_deref(), Some("example.com"));
    }

    #[test]
    fn rfc7239_forwarded_wins_and_walks_right_to_left() {
        let trusted = TrustedHosts::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let h = [
            (
                "forwarded",
                r#"for=9.9.9.9;proto=http, for="[2001:db8::7]:4711";proto=https;host=a.example, for=10.0.0.3"#,
            ),
            ("x-forwarded-for", "5.5.5.5"),
        ];
        let fwd = read_forwarded(&trusted, headers(&h));
        assert_eq!(fwd.client.as_deref(), Some("2001:db8::7"));
        assert_eq!(fwd.scheme, Some("https"));
        assert_eq!(fwd.host.as_deref(), Some("a.example"));
    }

    #[test]
    fn node_hosts_lose_ports_and_quotes() {
        assert_eq!(node_host("1.2.3.4:80"), "1.2.3.4");
        assert_eq!(node_host("\"[::1]:80\""), "::1");
        assert_eq!(node_host("_hidden"), "_hidden");
    }
}
