//! WebRTC in the page, on the browser's `RTCPeerConnection`: between pages as libp2p's
//! private-to-private transport, signalled over a relayed connection ([`transport`]), and to a
//! relay as WebRTC-direct ([`direct`]); either way a connection whose data channels are libp2p
//! streams ([`connection`], [`channel`]).

mod channel;
mod connection;
pub mod direct;
mod transport;

pub use transport::{listen_address, Transport};
