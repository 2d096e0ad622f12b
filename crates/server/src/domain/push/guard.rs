//! The SSRF guard: the one rule for which IP addresses a webhook may reach when private
//! endpoints are not allowed. Registration (`check_endpoint`), the literal check before each
//! attempt (`check_literal`) and the connect-time resolver (`GuardedResolver`) all ask
//! [`check`], so the three cannot drift apart.
//!
//! The rule is the "Globally Reachable" column of the IANA IPv4 and IPv6 Special-Purpose
//! Address Registries (RFC 6890 as updated by RFC 8190), plus the blocks those registries
//! leave to others (multicast, the deprecated site-local block, IPv6 space outside
//! 2000::/3): an address is refused unless the most specific row that holds it says it is
//! globally reachable. Rows marked N/A there (Teredo, the deprecated ORCHID and 6to4 relay
//! blocks) are refused. IPv6 forms that carry an IPv4 address a gateway or the kernel would
//! deliver to (IPv4-mapped and -compatible, NAT64, 6to4) are judged by that address.
//!
//! Not detectable from the address: a network-specific NAT64 prefix (RFC 6052 §2.2) chosen by
//! the operator. Where one exists, the operator should refuse it in the network as well.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What the registries say about destinations in a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reach {
    /// Globally reachable: push may go there.
    Global,
    /// Not globally reachable (or N/A): refused unless private endpoints are allowed.
    Local,
    /// Carries an IPv4 address and is judged by it.
    Embeds(Embedding),
}

/// Where an IPv6 address carries its IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Embedding {
    /// The last 32 bits (IPv4-mapped, IPv4-compatible, NAT64 /96).
    Last32,
    /// Bits 16 to 47 (6to4, RFC 3056 §2).
    SixToFour,
}

#[derive(Clone, Copy, Debug)]
enum Net {
    V4(Ipv4Addr, u8),
    V6(Ipv6Addr, u8),
}

impl Net {
    fn len(self) -> u8 {
        match self {
            Net::V4(_, l) | Net::V6(_, l) => l,
        }
    }

    fn contains(self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Net::V4(net, len), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                ip.to_bits() & mask == net.to_bits() & mask
            }
            (Net::V6(net, len), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                ip.to_bits() & mask == net.to_bits() & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Net::V4(a, l) => write!(f, "{a}/{l}"),
            Net::V6(a, l) => write!(f, "{a}/{l}"),
        }
    }
}

/// One row of the table: a block, its name in the registry, where the rule comes from.
#[derive(Debug)]
pub struct Range {
    net: Net,
    name: &'static str,
    source: &'static str,
    reach: Reach,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Net {
    Net::V4(Ipv4Addr::new(a, b, c, d), len)
}

#[allow(clippy::too_many_arguments)]
const fn v6(a: u16, b: u16, c: u16, d: u16, e: u16, f: u16, g: u16, h: u16, len: u16) -> Net {
    Net::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h), len as u8)
}

const fn row(net: Net, name: &'static str, source: &'static str, reach: Reach) -> Range {
    Range { net, name, source, reach }
}

use Reach::{Embeds, Global, Local};

/// The IPv4 table. The most specific row holding an address decides. Registry rows marked
/// globally reachable that sit in otherwise global space (AS112, AMT) change nothing and are
/// left out.
#[rustfmt::skip] // a table: one row per line reads against the registry
static IPV4: &[Range] = &[
    row(v4(0, 0, 0, 0, 0), "unicast", "IANA IPv4 Address Space Registry", Global),
    row(v4(0, 0, 0, 0, 8), "\"this network\"", "RFC 791 §3.2, IPv4 special registry", Local),
    row(v4(10, 0, 0, 0, 8), "private-use", "RFC 1918, IPv4 special registry", Local),
    row(v4(100, 64, 0, 0, 10), "shared address space", "RFC 6598, IPv4 special registry", Local),
    row(v4(127, 0, 0, 0, 8), "loopback", "RFC 1122 §3.2.1.3, IPv4 special registry", Local),
    row(v4(169, 254, 0, 0, 16), "link-local, where cloud metadata lives", "RFC 3927, IPv4 special registry", Local),
    row(v4(172, 16, 0, 0, 12), "private-use", "RFC 1918, IPv4 special registry", Local),
    row(v4(192, 0, 0, 0, 24), "IETF protocol assignments", "RFC 6890 §2.1, IPv4 special registry", Local),
    // Anycast addresses the registry marks globally reachable inside 192.0.0.0/24.
    row(v4(192, 0, 0, 9, 32), "Port Control Protocol anycast", "RFC 7723, IPv4 special registry", Global),
    row(v4(192, 0, 0, 10, 32), "TURN anycast", "RFC 8155, IPv4 special registry", Global),
    row(v4(192, 0, 2, 0, 24), "documentation (TEST-NET-1)", "RFC 5737, IPv4 special registry", Local),
    row(v4(192, 88, 99, 0, 24), "deprecated 6to4 relay anycast", "RFC 7526, IPv4 special registry (N/A)", Local),
    row(v4(192, 168, 0, 0, 16), "private-use", "RFC 1918, IPv4 special registry", Local),
    row(v4(198, 18, 0, 0, 15), "benchmarking", "RFC 2544, IPv4 special registry", Local),
    row(v4(198, 51, 100, 0, 24), "documentation (TEST-NET-2)", "RFC 5737, IPv4 special registry", Local),
    row(v4(203, 0, 113, 0, 24), "documentation (TEST-NET-3)", "RFC 5737, IPv4 special registry", Local),
    row(v4(224, 0, 0, 0, 4), "multicast", "RFC 5771, IANA IPv4 Multicast Address Space Registry", Local),
    row(v4(240, 0, 0, 0, 4), "reserved", "RFC 1112 §4, IPv4 special registry", Local),
    row(v4(255, 255, 255, 255, 32), "limited broadcast", "RFC 919 §7, RFC 8190, IPv4 special registry", Local),
];

/// The IPv6 table, read like [`IPV4`]. Only 2000::/3 is allocated for global unicast; the rest
/// of the space is reserved, local or multicast unless a row says otherwise.
#[rustfmt::skip] // a table: one row per line reads against the registry
static IPV6: &[Range] = &[
    row(v6(0, 0, 0, 0, 0, 0, 0, 0, 0), "outside 2000::/3, the global unicast space", "IANA IPv6 Address Space Registry, RFC 4291 §2.4", Local),
    row(v6(0x2000, 0, 0, 0, 0, 0, 0, 0, 3), "global unicast", "IANA IPv6 Address Space Registry", Global),
    row(v6(0, 0, 0, 0, 0, 0, 0, 0, 128), "unspecified", "RFC 4291, IPv6 special registry", Local),
    row(v6(0, 0, 0, 0, 0, 0, 0, 1, 128), "loopback", "RFC 4291, IPv6 special registry", Local),
    row(v6(0, 0, 0, 0, 0, 0, 0, 0, 96), "IPv4-compatible (deprecated)", "RFC 4291 §2.5.5.1", Embeds(Embedding::Last32)),
    row(v6(0, 0, 0, 0, 0, 0xffff, 0, 0, 96), "IPv4-mapped", "RFC 4291 §2.5.5.2, IPv6 special registry", Embeds(Embedding::Last32)),
    row(v6(0x64, 0xff9b, 0, 0, 0, 0, 0, 0, 96), "NAT64 well-known prefix", "RFC 6052, IPv6 special registry", Embeds(Embedding::Last32)),
    row(v6(0x64, 0xff9b, 1, 0, 0, 0, 0, 0, 48), "NAT64 local-use prefix", "RFC 8215, IPv6 special registry", Local),
    row(v6(0x100, 0, 0, 0, 0, 0, 0, 0, 64), "discard-only", "RFC 6666, IPv6 special registry", Local),
    row(v6(0x100, 0, 0, 1, 0, 0, 0, 0, 64), "dummy prefix", "RFC 9780, IPv6 special registry", Local),
    row(v6(0x2001, 0, 0, 0, 0, 0, 0, 0, 23), "IETF protocol assignments", "RFC 2928, IPv6 special registry", Local),
    row(v6(0x2001, 0, 0, 0, 0, 0, 0, 0, 32), "Teredo", "RFC 4380, RFC 8190, IPv6 special registry (N/A)", Local),
    // Globally reachable exceptions inside 2001::/23.
    row(v6(0x2001, 1, 0, 0, 0, 0, 0, 1, 128), "Port Control Protocol anycast", "RFC 7723, IPv6 special registry", Global),
    row(v6(0x2001, 1, 0, 0, 0, 0, 0, 2, 128), "TURN anycast", "RFC 8155, IPv6 special registry", Global),
    row(v6(0x2001, 1, 0, 0, 0, 0, 0, 3, 128), "DNS-SD SRP anycast", "RFC 9665, IPv6 special registry", Global),
    row(v6(0x2001, 2, 0, 0, 0, 0, 0, 0, 48), "benchmarking", "RFC 5180, IPv6 special registry", Local),
    row(v6(0x2001, 3, 0, 0, 0, 0, 0, 0, 32), "AMT", "RFC 7450, IPv6 special registry", Global),
    row(v6(0x2001, 4, 0x112, 0, 0, 0, 0, 0, 48), "AS112-v6", "RFC 7535, IPv6 special registry", Global),
    row(v6(0x2001, 0x10, 0, 0, 0, 0, 0, 0, 28), "deprecated ORCHID", "RFC 4843, IPv6 special registry (N/A)", Local),
    row(v6(0x2001, 0x20, 0, 0, 0, 0, 0, 0, 28), "ORCHIDv2", "RFC 7343, IPv6 special registry", Global),
    row(v6(0x2001, 0x30, 0, 0, 0, 0, 0, 0, 28), "drone remote ID tags", "RFC 9374, IPv6 special registry", Global),
    row(v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0, 32), "documentation", "RFC 3849, IPv6 special registry", Local),
    row(v6(0x2002, 0, 0, 0, 0, 0, 0, 0, 16), "6to4", "RFC 3056, IPv6 special registry", Embeds(Embedding::SixToFour)),
    row(v6(0x3fff, 0, 0, 0, 0, 0, 0, 0, 20), "documentation", "RFC 9637, IPv6 special registry", Local),
    row(v6(0x5f00, 0, 0, 0, 0, 0, 0, 0, 16), "segment routing SIDs", "RFC 9602, IPv6 special registry", Local),
    row(v6(0xfc00, 0, 0, 0, 0, 0, 0, 0, 7), "unique-local", "RFC 4193, RFC 8190, IPv6 special registry", Local),
    row(v6(0xfe80, 0, 0, 0, 0, 0, 0, 0, 10), "link-local", "RFC 4291, IPv6 special registry", Local),
    row(v6(0xfec0, 0, 0, 0, 0, 0, 0, 0, 10), "site-local (deprecated)", "RFC 3879, IANA IPv6 Address Space Registry", Local),
    row(v6(0xff00, 0, 0, 0, 0, 0, 0, 0, 8), "multicast", "RFC 4291 §2.7, IANA IPv6 Multicast Address Space Registry", Local),
];

/// The most specific row holding `ip` (the /0 rows hold everything).
fn row_of(ip: IpAddr) -> &'static Range {
    let table = if ip.is_ipv4() { IPV4 } else { IPV6 };
    table.iter().filter(|r| r.net.contains(ip)).max_by_key(|r| r.net.len()).expect("the /0 row holds every address")
}

/// An address push may not reach, and why.
#[derive(Debug, Clone)]
pub struct Refused {
    /// The address as given or resolved.
    pub ip: IpAddr,
    /// The IPv6 form that carried the IPv4 address judged, and that address.
    carrier: Option<(&'static Range, Ipv4Addr)>,
    /// The row that refused it.
    range: &'static Range,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.ip)?;
        if let Some((carrier, v4)) = self.carrier {
            write!(f, " ({} {}, {}) carries {v4}, which", carrier.name, carrier.net, carrier.source)?;
        }
        if self.range.net.len() == 0 {
            write!(f, " is {} ({})", self.range.name, self.range.source)?;
        } else {
            write!(f, " is in {} ({}, {})", self.range.net, self.range.name, self.range.source)?;
        }
        write!(f, ": not globally reachable")
    }
}

impl std::error::Error for Refused {}

/// `Ok` when push may reach `ip` without private endpoints allowed; otherwise the row of the
/// registries that refuses it.
pub fn check(ip: IpAddr) -> Result<(), Refused> {
    let range = row_of(ip);
    let (range, carrier) = match (range.reach, ip) {
        (Reach::Embeds(how), IpAddr::V6(v6)) => {
            let bits = v6.to_bits();
            let inner = Ipv4Addr::from_bits(match how {
                Embedding::Last32 => bits as u32,
                Embedding::SixToFour => (bits >> 80) as u32,
            });
            (row_of(IpAddr::V4(inner)), Some((range, inner)))
        }
        _ => (range, None),
    };
    match range.reach {
        Reach::Global => Ok(()),
        Reach::Local | Reach::Embeds(_) => Err(Refused { ip, carrier, range }),
    }
}

/// The IP address an endpoint URL names literally, if it does. The URL parser has already
/// turned every IPv4 spelling it accepts (`2130706433`, `0x7f.1`, `0177.0.0.1`) into the
/// address; such hosts never reach a resolver, so they must be checked here.
pub fn literal(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        // A name that spells an IPv4 address was turned into one by the parser.
        None => host.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> bool {
        check(ip.parse().unwrap()).is_err()
    }

    #[test]
    fn the_table_rows_are_networks_and_not_listed_twice() {
        for table in [IPV4, IPV6] {
            let mut seen = std::collections::HashSet::new();
            for r in table {
                let text = r.net.to_string();
                assert!(seen.insert(text.clone()), "{text} is listed twice");
                let (addr, len) = match r.net {
                    Net::V4(a, l) => (IpAddr::V4(a), l),
                    Net::V6(a, l) => (IpAddr::V6(a), l),
                };
                // The row's own address has no bits beyond its prefix length.
                let host_bits = match addr {
                    IpAddr::V4(a) => a.to_bits().checked_shl(u32::from(len)).unwrap_or(0) as u128,
                    IpAddr::V6(a) => a.to_bits().checked_shl(u32::from(len)).unwrap_or(0),
                };
                assert_eq!(host_bits, 0, "{text} has host bits set");
            }
        }
    }

    #[test]
    fn every_not_globally_reachable_ipv4_block_is_refused_at_both_ends() {
        for (first, last) in [
            ("0.0.0.0", "0.255.255.255"),
            ("10.0.0.0", "10.255.255.255"),
            ("100.64.0.0", "100.127.255.255"),
            ("127.0.0.0", "127.255.255.255"),
            ("169.254.0.0", "169.254.255.255"),
            ("172.16.0.0", "172.31.255.255"),
            ("192.0.0.0", "192.0.0.255"),
            ("192.0.2.0", "192.0.2.255"),
            ("192.88.99.0", "192.88.99.255"),
            ("192.168.0.0", "192.168.255.255"),
            ("198.18.0.0", "198.19.255.255"),
            ("198.51.100.0", "198.51.100.255"),
            ("203.0.113.0", "203.0.113.255"),
            ("224.0.0.0", "239.255.255.255"),
            ("240.0.0.0", "255.255.255.255"),
        ] {
            assert!(refused(first), "{first}");
            assert!(refused(last), "{last}");
        }
    }

    #[test]
    fn global_ipv4_addresses_pass_including_the_neighbours_of_refused_blocks() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.0.0.9",
            "192.0.0.10",
            "192.31.196.1",
            "192.52.193.1",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert!(!refused(ip), "{ip} is globally reachable: {:?}", check(ip.parse().unwrap()));
        }
    }

    #[test]
    fn every_not_globally_reachable_ipv6_block_is_refused() {
        for ip in [
            "::",
            "::1",
            "64:ff9b:1::1",
            "100::1",
            "100:0:0:1::1",
            "2001::1",               // Teredo
            "2001:0:4136:e378::1",   // Teredo with a server address
            "2001:1::4",             // IETF assignments, not one of the anycasts
            "2001:2::1",             // benchmarking
            "2001:10::1",            // deprecated ORCHID
            "2001:1ff:ffff:ffff::1", // the end of 2001::/23
            "2001:db8::1",           // documentation
            "3fff::1",
            "3fff:fff:ffff::1",
            "5f00::1",
            "fc00::1",
            "fdff:ffff::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "feff::1",
            "ff02::1",
            "ff0e::1", // global-scope multicast: still not a place for a TCP connection
            "4000::1", // reserved by the IETF
            "1000::1",
            "::ffff:0:1.2.3.4", // IPv4-translated (RFC 2765), outside every allocated block
        ] {
            assert!(refused(ip), "{ip}");
        }
    }

    #[test]
    fn global_ipv6_addresses_pass() {
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "2001:200::1", // just past 2001::/23
            "2001:1::1",
            "2001:1::2",
            "2001:1::3",
            "2001:3::1",
            "2001:4:112::1",
            "2001:20::1",
            "2001:30::1",
            "2620:4f:8000::1",
            "3ffe::1",
            "3fff:1000::1",
        ] {
            assert!(!refused(ip), "{ip}: {:?}", check(ip.parse().unwrap()));
        }
    }

    #[test]
    fn ipv6_forms_carrying_an_ipv4_address_are_judged_by_it() {
        for (ip, inner) in [
            ("::ffff:127.0.0.1", "127.0.0.1"),
            ("::ffff:7f00:1", "127.0.0.1"),
            ("::127.0.0.1", "127.0.0.1"),
            ("::7f00:1", "127.0.0.1"),
            ("::169.254.169.254", "169.254.169.254"),
            ("::ffff:10.0.0.1", "10.0.0.1"),
            ("64:ff9b::7f00:1", "127.0.0.1"),
            ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
            ("64:ff9b::192.168.0.1", "192.168.0.1"),
            ("2002:7f00:1::", "127.0.0.1"),
            ("2002:a00:1::1", "10.0.0.1"),
            ("2002:c0a8:101:1::1", "192.168.1.1"),
            ("2002:c612:1::", "198.18.0.1"),
        ] {
            let e = check(ip.parse().unwrap()).expect_err(ip);
            assert_eq!(e.carrier.map(|(_, v4)| v4.to_string()).as_deref(), Some(inner), "{ip}");
        }
        for ip in ["::ffff:8.8.8.8", "::8.8.8.8", "64:ff9b::808:808", "64:ff9b::1.1.1.1", "2002:808:808::1"] {
            assert!(!refused(ip), "{ip} carries a global address: {:?}", check(ip.parse().unwrap()));
        }
    }

    #[test]
    fn every_spelling_the_url_parser_accepts_reaches_the_rule() {
        for url in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0x7f.0.0.1/",
            "http://0177.0.0.1/",
            "http://017700000001/",
            "http://127.0.0.1./",
            "http://[::1]/",
            "http://[::127.0.0.1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[0:0:0:0:0:ffff:7f00:1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[64:ff9b::127.0.0.1]/",
            "http://[2002:7f00:1::]/",
            "http://[2001::1]/",
            "https://169.254.169.254/latest/meta-data",
            "http://0/",
            "http://0x0/",
            "http://[::]/",
            "http://198.18.0.1/",
            "http://240.0.0.1/",
            "http://224.0.0.1/",
            "http://192.0.0.1/",
            "http://100.64.0.1/",
            "http://[fec0::1]/",
            "http://[ff02::1]/",
            "http://[fc00::1]/",
            "http://[fe80::1]/",
            "http://192.0.2.1/",
            "http://[2001:db8::1]/",
        ] {
            let parsed = reqwest::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            let ip = literal(&parsed).unwrap_or_else(|| panic!("{url} is parsed as a name, not an address"));
            assert!(check(ip).is_err(), "{url} ({ip}) passes the guard");
        }
        for url in ["http://localhost/", "http://example.com/", "http://127.0.0.1.example/"] {
            assert_eq!(literal(&reqwest::Url::parse(url).unwrap()), None, "{url} is a name, for the resolver");
        }
    }

    #[test]
    fn a_refusal_names_the_address_the_block_and_its_source() {
        let e = check("::7f00:1".parse().unwrap()).unwrap_err().to_string();
        assert_eq!(
            e,
            "::7f00:1 (IPv4-compatible (deprecated) ::/96, RFC 4291 §2.5.5.1) carries 127.0.0.1, which is in \
             127.0.0.0/8 (loopback, RFC 1122 §3.2.1.3, IPv4 special registry): not globally reachable"
        );
        let e = check("10.1.2.3".parse().unwrap()).unwrap_err().to_string();
        assert_eq!(
            e,
            "10.1.2.3 is in 10.0.0.0/8 (private-use, RFC 1918, IPv4 special registry): not globally reachable"
        );
        let e = check("4000::1".parse().unwrap()).unwrap_err().to_string();
        assert!(e.starts_with("4000::1 is outside 2000::/3"), "{e}");
    }
}
