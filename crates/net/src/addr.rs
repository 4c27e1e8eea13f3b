//! Multiaddrs from their text (`/ip4/1.2.3.4/udp/9090/webrtc-direct/certhash/uEi…/p2p/12D3…`).
//!
//! Not `Multiaddr`'s own `FromStr`: that one reads every multibase for `certhash` and the onion
//! and garlic addresses, through `multibase` and `data-encoding`: 76 KB of the page's wasm, raw,
//! for the few relay addresses a node is given (docs/performance.md). This reads the protocols
//! `multiaddr` 0.18 names the same way, into the same bytes; a `certhash` in base64url (`u`, as
//! libp2p writes it), base64 (`m`) or base58btc (`z`); and refuses, with the reason, the few
//! no transport of this node dials (`onion`, `onion3`, `garlic32`, `garlic64`, `x-parity-ws`,
//! `x-parity-wss`) and a `certhash` in any other multibase.

use std::borrow::Cow;

use base64::Engine as _;
use libp2p::multiaddr::{multihash::Multihash, Protocol};
use libp2p::Multiaddr;

/// `text` as a multiaddr, or why it is not one.
pub(crate) fn parse(text: &str) -> Result<Multiaddr, String> {
    let mut parts = text.split('/');
    if parts.next() != Some("") {
        return Err("a multiaddr starts with /".into());
    }
    let mut addr = Multiaddr::empty();
    while let Some(name) = parts.next() {
        let mut value = || {
            parts
                .next()
                .ok_or_else(|| format!("{name} without its value"))
        };
        let protocol = match name {
            "ip4" => Protocol::Ip4(parsed(name, value()?)?),
            "ip6" => Protocol::Ip6(parsed(name, value()?)?),
            "tcp" => Protocol::Tcp(parsed(name, value()?)?),
            "udp" => Protocol::Udp(parsed(name, value()?)?),
            "dccp" => Protocol::Dccp(parsed(name, value()?)?),
            "sctp" => Protocol::Sctp(parsed(name, value()?)?),
            "memory" => Protocol::Memory(parsed(name, value()?)?),
            "ipcidr" => Protocol::Ipcidr(parsed(name, value()?)?),
            "dns" => Protocol::Dns(Cow::Borrowed(value()?)),
            "dns4" => Protocol::Dns4(Cow::Borrowed(value()?)),
            "dns6" => Protocol::Dns6(Cow::Borrowed(value()?)),
            "dnsaddr" => Protocol::Dnsaddr(Cow::Borrowed(value()?)),
            "unix" => Protocol::Unix(Cow::Borrowed(value()?)),
            "ip6zone" => Protocol::Ip6zone(Cow::Borrowed(value()?)),
            "sni" => Protocol::Sni(Cow::Borrowed(value()?)),
            "p2p" | "ipfs" => Protocol::P2p(parsed(name, value()?)?),
            "certhash" => Protocol::Certhash(certhash(value()?)?),
            "tls" => Protocol::Tls,
            "noise" => Protocol::Noise,
            "udt" => Protocol::Udt,
            "utp" => Protocol::Utp,
            "http" => Protocol::Http,
            "https" => Protocol::Https,
            "quic" => Protocol::Quic,
            "quic-v1" => Protocol::QuicV1,
            "webtransport" => Protocol::WebTransport,
            "ws" => Protocol::Ws(Cow::Borrowed("/")),
            "wss" => Protocol::Wss(Cow::Borrowed("/")),
            "webrtc-direct" => Protocol::WebRTCDirect,
            "webrtc" => Protocol::WebRTC,
            "p2p-circuit" => Protocol::P2pCircuit,
            "p2p-websocket-star" => Protocol::P2pWebSocketStar,
            "p2p-webrtc-star" => Protocol::P2pWebRtcStar,
            "p2p-webrtc-direct" => Protocol::P2pWebRtcDirect,
            "p2p-stardust" => Protocol::P2pStardust,
            "onion" | "onion3" | "garlic32" | "garlic64" | "x-parity-ws" | "x-parity-wss" => {
                return Err(format!(
                    "{name} addresses are not read here: no transport of this node dials them"
                ));
            }
            "" => return Err("an empty protocol name (// or a trailing /)".into()),
            other => return Err(format!("unknown protocol {other}")),
        };
        addr.push(protocol);
    }
    Ok(addr)
}

/// `value` of protocol `name`, parsed as its type.
fn parsed<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e| format!("{name} {value}: {e}"))
}

/// A `certhash` value: a multihash in multibase.
fn certhash(value: &str) -> Result<Multihash<64>, String> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut chars = value.chars();
    let bytes = match chars.next() {
        Some('u') => URL_SAFE_NO_PAD
            .decode(chars.as_str())
            .map_err(|e| e.to_string()),
        Some('m') => STANDARD_NO_PAD
            .decode(chars.as_str())
            .map_err(|e| e.to_string()),
        Some('z') => bs58::decode(chars.as_str())
            .into_vec()
            .map_err(|e| e.to_string()),
        _ => Err(
            "a multibase this node does not read (it reads base64url u, base64 m, base58btc z)"
                .into(),
        ),
    };
    bytes
        .and_then(|bytes| Multihash::from_bytes(&bytes).map_err(|e| e.to_string()))
        .map_err(|e| format!("certhash {value}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Addresses of every protocol read here, each as `multiaddr`'s own parser reads it.
    #[test]
    fn reads_what_multiaddrs_own_parser_reads_into_the_same_bytes() {
        let peer = libp2p::identity::Keypair::ed25519_from_bytes([7; 32])
            .unwrap()
            .public()
            .to_peer_id();
        // A certhash as libp2p writes one: a sha2-256 multihash in base64url.
        let hash = Multihash::<64>::wrap(0x12, &[0xab; 32]).unwrap();
        let written = format!(
            "/certhash/u{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash.to_bytes())
        );
        let webrtc = format!("webrtc/p2p/{peer}");
        for text in [
            format!("/ip4/127.0.0.1/tcp/9090/ws/p2p/{peer}"),
            format!("/ip4/1.2.3.4/udp/9090/webrtc-direct{written}/p2p/{peer}"),
            format!(
                "/ip4/1.2.3.4/udp/9090/webrtc-direct/certhash/z{}/p2p/{peer}",
                bs58::encode(hash.to_bytes()).into_string()
            ),
            format!("/dns4/relay.example.org/tcp/443/wss/p2p/{peer}/p2p-circuit/{webrtc}"),
            format!("/ipfs/{peer}"),
            "/ip6/2001:db8::7/tcp/5/tls/sni/relay.example.org/ws".into(),
            "/ip6zone/eth0/ip6/fe80::1/udp/1/quic-v1/webtransport".into(),
            "/ip4/1.2.3.4/udp/1/quic/ipcidr/24/dns/a/dns6/b/dnsaddr/c".into(),
            "/memory/42/dccp/1/sctp/2/udt/utp/http/https/noise/unix/sock".into(),
            "/p2p-websocket-star/p2p-webrtc-star/p2p-webrtc-direct/p2p-stardust".into(),
        ] {
            let theirs: Multiaddr = text.parse().unwrap();
            assert_eq!(parse(&text), Ok(theirs), "{text}");
        }
        let base64 = format!(
            "/certhash/m{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash.to_bytes())
        );
        assert_eq!(parse(&base64), parse(&written));
    }

    #[test]
    fn refuses_what_is_not_an_address_and_says_why() {
        for (text, why) in [
            ("ip4/1.2.3.4", "starts with /"),
            ("/ip4/1.2.3.4/", "empty protocol name"),
            ("/ip4//tcp/1", "ip4 : invalid IPv4 address syntax"),
            ("/ip4/1.2.3.4/tcp", "tcp without its value"),
            ("/ip4/1.2.3.4/tcp/65536", "tcp 65536"),
            ("/ip4/1.2.3.4/tcp/1/wsss", "unknown protocol wsss"),
            ("/p2p/QmNotAPeer", "p2p QmNotAPeer"),
            ("/certhash/uEi!!", "certhash uEi!!"),
            ("/certhash/uAAAA", "certhash uAAAA"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
            assert!(text.parse::<Multiaddr>().is_err(), "{text}");
        }
        // Addresses no transport here dials, which `multiaddr` reads.
        for (text, why) in [
            (
                "/onion/aaimaq4ygg2iegci:80",
                "onion addresses are not read here",
            ),
            // The empty identity multihash, in base32.
            ("/certhash/baaaa", "a multibase this node does not read"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
            assert!(text.parse::<Multiaddr>().is_ok(), "{text}");
        }
    }
}
