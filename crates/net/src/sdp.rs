//! The SDP WebRTC-direct needs (libp2p specs `webrtc/webrtc-direct.md`): the browser's offer
//! gets the ICE username fragment and password the dialler chose (the server reads them from the
//! STUN requests, having no signalling channel); the local DTLS certificate's fingerprint is read
//! back out of the local description for the Noise prologue; and the server's answer, which the
//! dialler writes itself, is made here (`libp2p-webrtc-utils`' `sdp::answer` renders the same
//! text through a template engine, `tinytemplate` with a serde context: 31 KB of the page's wasm,
//! raw; docs/performance.md).

use std::net::SocketAddr;

/// `offer` with its `a=ice-ufrag` and `a=ice-pwd` lines set to `ufrag`.
pub fn munge_offer(offer: &str, ufrag: &str) -> String {
    let mut out = String::with_capacity(offer.len());
    for line in offer.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with("a=ice-ufrag:") {
            out.push_str(&format!("a=ice-ufrag:{ufrag}"));
        } else if line.starts_with("a=ice-pwd:") {
            out.push_str(&format!("a=ice-pwd:{ufrag}"));
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
    }
    out
}

/// The description the dialler sets as the server's answer: the server is ICE-lite at `addr`,
/// with the certificate `fingerprint` (`algorithm`, e.g. `sha-256`, and the value as SDP writes it,
/// `AB:CD:…`), and takes the dialler's `ufrag` as its ICE username fragment and password. The
/// text of `libp2p_webrtc_utils::sdp::answer`, line for line (the libp2p specs
/// `webrtc/webrtc-direct.md`; why each line: that crate's `sdp.rs`).
pub fn answer(addr: SocketAddr, algorithm: &str, fingerprint: &str, ufrag: &str) -> String {
    let ip = addr.ip();
    let port = addr.port();
    let version = if addr.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "v=0\n\
         o=- 0 0 IN {version} {ip}\n\
         s=-\n\
         t=0 0\n\
         a=ice-lite\n\
         m=application {port} UDP/DTLS/SCTP webrtc-datachannel\n\
         c=IN {version} {ip}\n\
         a=mid:0\n\
         a=ice-options:ice2\n\
         a=ice-ufrag:{ufrag}\n\
         a=ice-pwd:{ufrag}\n\
         a=fingerprint:{algorithm} {fingerprint}\n\
         a=setup:passive\n\
         a=sctp-port:5000\n\
         a=max-message-size:16384\n\
         a=candidate:1467250027 1 UDP 1467250027 {ip} {port} typ host\n\
         a=end-of-candidates\n"
    )
}

/// The SHA-256 certificate fingerprint an SDP declares (`a=fingerprint:sha-256 AB:CD:…`).
pub fn sha256_fingerprint(sdp: &str) -> Option<[u8; 32]> {
    let line = sdp
        .split("\r\n")
        .find_map(|l| l.strip_prefix("a=fingerprint:sha-256 "))?;
    let bytes = line
        .trim()
        .split(':')
        .map(|pair| u8::from_str_radix(pair, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=ice-ufrag:abcd\r\na=ice-pwd:secretsecretsecret\r\na=fingerprint:sha-256 A8:17:77:1E:02:7E:D1:2B:53:92:70:A6:8E:F9:02:CC:21:72:3A:92:5D:F4:97:5F:27:C4:5E:75:D4:F4:31:89\r\na=sctp-port:5000\r\n";

    #[test]
    fn sets_the_chosen_ufrag_and_password_and_nothing_else() {
        let munged = munge_offer(OFFER, "libp2p+webrtc+v1/xyz");
        assert!(munged.contains("\r\na=ice-ufrag:libp2p+webrtc+v1/xyz\r\n"));
        assert!(munged.contains("\r\na=ice-pwd:libp2p+webrtc+v1/xyz\r\n"));
        assert!(!munged.contains("abcd") && !munged.contains("secretsecret"));
        assert_eq!(munged.lines().count(), OFFER.lines().count());
        assert!(munged.ends_with("a=sctp-port:5000\r\n"));
    }

    const FINGERPRINT: &str =
        "A8:17:77:1E:02:7E:D1:2B:53:92:70:A6:8E:F9:02:CC:21:72:3A:92:5D:F4:97:5F:27:C4:5E:75:D4:F4:31:89";

    #[test]
    fn answers_as_an_ice_lite_server_at_the_address_with_the_dialler_s_ufrag() {
        let v4 = answer(
            "1.2.3.4:5678".parse().unwrap(),
            "sha-256",
            FINGERPRINT,
            "libp2p+webrtc+v1/xyz",
        );
        assert_eq!(
            v4,
            format!(
                "v=0\no=- 0 0 IN IP4 1.2.3.4\ns=-\nt=0 0\na=ice-lite\n\
                 m=application 5678 UDP/DTLS/SCTP webrtc-datachannel\n\
                 c=IN IP4 1.2.3.4\na=mid:0\na=ice-options:ice2\n\
                 a=ice-ufrag:libp2p+webrtc+v1/xyz\na=ice-pwd:libp2p+webrtc+v1/xyz\n\
                 a=fingerprint:sha-256 {FINGERPRINT}\na=setup:passive\na=sctp-port:5000\n\
                 a=max-message-size:16384\n\
                 a=candidate:1467250027 1 UDP 1467250027 1.2.3.4 5678 typ host\n\
                 a=end-of-candidates\n"
            )
        );
        let v6 = answer(
            "[2001:db8::7]:9".parse().unwrap(),
            "sha-256",
            FINGERPRINT,
            "u",
        );
        assert!(v6.contains("\no=- 0 0 IN IP6 2001:db8::7\n"), "{v6}");
        assert!(v6.contains("\nc=IN IP6 2001:db8::7\n"), "{v6}");
        assert!(v6.contains("\na=candidate:1467250027 1 UDP 1467250027 2001:db8::7 9 typ host\n"));
    }

    /// The text libp2p's own helper renders (in the page only, where that crate is built).
    #[cfg(target_arch = "wasm32")]
    #[wasm_bindgen_test::wasm_bindgen_test]
    fn answers_what_libp2p_webrtc_utils_renders() {
        let fingerprint = libp2p_webrtc_utils::Fingerprint::raw(sha256_fingerprint(OFFER).unwrap());
        for addr in ["1.2.3.4:5678", "[2001:db8::7]:9"] {
            let addr = addr.parse().unwrap();
            let ufrag = libp2p_webrtc_utils::sdp::random_ufrag();
            assert_eq!(
                answer(
                    addr,
                    &fingerprint.algorithm(),
                    &fingerprint.to_sdp_format(),
                    &ufrag
                ),
                libp2p_webrtc_utils::sdp::answer(addr, fingerprint, &ufrag)
            );
        }
    }

    #[test]
    fn reads_the_sha256_fingerprint() {
        let fingerprint = sha256_fingerprint(OFFER).unwrap();
        assert_eq!(fingerprint[..3], [0xa8, 0x17, 0x77]);
        assert_eq!(fingerprint[31], 0x89);
        assert_eq!(sha256_fingerprint("v=0\r\n"), None);
        assert_eq!(
            sha256_fingerprint("a=fingerprint:sha-256 A8:17\r\n"),
            None,
            "too short"
        );
        assert_eq!(sha256_fingerprint("a=fingerprint:sha-256 ZZ\r\n"), None);
    }
}
