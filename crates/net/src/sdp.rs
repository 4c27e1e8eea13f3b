//! The two SDP edits WebRTC-direct needs (libp2p specs `webrtc/webrtc-direct.md`): the
//! browser's offer gets the ICE username fragment and password the dialler chose (the server
//! reads them from the STUN requests, having no signalling channel), and the local DTLS
//! certificate's fingerprint is read back out of the local description for the Noise prologue.

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
