//! WebRTC between pages, as libp2p's private-to-private transport: signalling over a relayed
//! connection ([`transport`]), then a connection whose data channels are libp2p streams
//! ([`connection`], [`channel`]).

mod channel;
mod connection;
mod transport;

pub use transport::{listen_address, Transport};
