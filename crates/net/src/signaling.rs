//! The messages of libp2p's WebRTC (private-to-private) signalling protocol
//! (`/webrtc-signaling/0.0.1`, libp2p specs `webrtc/webrtc.md`): an SDP offer, an SDP answer or
//! an ICE candidate, each the protobuf `Message { optional Type type = 1; optional string data
//! = 2; }` behind a varint length ([`crate::prefixed`]). Two fields do not warrant a protobuf
//! code generator; the encoding below is checked against bytes written out by hand.

/// The protocol the offer, answer and candidates travel on, over a relayed connection.
pub const PROTOCOL: &str = "/webrtc-signaling/0.0.1";
/// Largest message taken: a session description is a few KB.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// What a message's `data` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `RTCSessionDescription.sdp` of the offer.
    SdpOffer = 0,
    /// `RTCSessionDescription.sdp` of the answer.
    SdpAnswer = 1,
    /// `JSON.stringify(RTCIceCandidate.toJSON())`; `null` (or empty) when gathering ended.
    IceCandidate = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: Kind,
    pub data: String,
}

/// Why bytes are not a signalling message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error("malformed signalling message: {0}")]
    Malformed(&'static str),
    #[error("unknown signalling message type {0}")]
    UnknownType(u64),
}

impl Message {
    pub fn new(kind: Kind, data: impl Into<String>) -> Self {
        Self {
            kind,
            data: data.into(),
        }
    }

    /// The protobuf body (without the length prefix).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 8);
        let mut buf = unsigned_varint::encode::u64_buffer();
        out.push(0x08); // field 1, varint
        out.extend_from_slice(unsigned_varint::encode::u64(self.kind as u64, &mut buf));
        out.push(0x12); // field 2, length-delimited
        let len = self.data.len() as u64;
        out.extend_from_slice(unsigned_varint::encode::u64(len, &mut buf));
        out.extend_from_slice(self.data.as_bytes());
        out
    }

    /// Parses a protobuf body; fields it does not know are skipped, as protobuf requires.
    pub fn decode(mut bytes: &[u8]) -> Result<Self, SignalError> {
        let (mut kind, mut data) = (None, None);
        while !bytes.is_empty() {
            let (key, rest) = varint(bytes)?;
            bytes = rest;
            match (key >> 3, key & 7) {
                (1, 0) => {
                    let (value, rest) = varint(bytes)?;
                    bytes = rest;
                    kind = Some(match value {
                        0 => Kind::SdpOffer,
                        1 => Kind::SdpAnswer,
                        2 => Kind::IceCandidate,
                        other => return Err(SignalError::UnknownType(other)),
                    });
                }
                (field, 2) => {
                    let (len, rest) = varint(bytes)?;
                    let len = usize::try_from(len).map_err(|_| SignalError::Malformed("length"))?;
                    let value = rest
                        .get(..len)
                        .ok_or(SignalError::Malformed("a field runs past the end"))?;
                    bytes = &rest[len..];
                    if field == 2 {
                        let text = std::str::from_utf8(value)
                            .map_err(|_| SignalError::Malformed("data is not UTF-8"))?;
                        data = Some(text.to_owned());
                    }
                }
                (_, 0) => bytes = varint(bytes)?.1,
                (_, 1) => bytes = bytes.get(8..).ok_or(SignalError::Malformed("fixed64"))?,
                (_, 5) => bytes = bytes.get(4..).ok_or(SignalError::Malformed("fixed32"))?,
                _ => return Err(SignalError::Malformed("unknown wire type")),
            }
        }
        Ok(Self {
            kind: kind.ok_or(SignalError::Malformed("no type"))?,
            data: data.unwrap_or_default(),
        })
    }
}

fn varint(bytes: &[u8]) -> Result<(u64, &[u8]), SignalError> {
    unsigned_varint::decode::u64(bytes).map_err(|_| SignalError::Malformed("varint"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_protobuf_the_spec_describes() {
        let answer = Message::new(Kind::SdpAnswer, "v=0");
        assert_eq!(answer.encode(), b"\x08\x01\x12\x03v=0");
        assert_eq!(Message::decode(&answer.encode()), Ok(answer));
        let offer = Message::new(Kind::SdpOffer, "x".repeat(200));
        let bytes = offer.encode();
        assert_eq!(
            &bytes[..5],
            &[0x08, 0x00, 0x12, 0xc8, 0x01],
            "200 as a varint"
        );
        assert_eq!(Message::decode(&bytes), Ok(offer));
    }

    #[test]
    fn skips_unknown_fields_and_refuses_what_is_not_a_message() {
        // An unknown varint field 3 and an unknown string field 4 around a candidate.
        let bytes = b"\x18\x05\x08\x02\x22\x01z\x12\x04null";
        assert_eq!(
            Message::decode(bytes),
            Ok(Message::new(Kind::IceCandidate, "null"))
        );
        assert_eq!(
            Message::decode(b"\x08\x07"),
            Err(SignalError::UnknownType(7))
        );
        assert!(Message::decode(b"\x12\x01x").is_err(), "no type");
        assert!(Message::decode(b"\x08\x00\x12\x09ab").is_err(), "cut short");
        assert!(
            Message::decode(b"\x08\x00\x12\x02\xff\xfe").is_err(),
            "not UTF-8"
        );
        assert!(Message::decode(b"\x0b").is_err(), "a group (wire type 3)");
    }
}
