//! WebRTC-direct from the page to a relay (libp2p specs `webrtc/webrtc-direct.md`): the relay's
//! address carries its certificate's hash, so no signalling is needed. The offer's ICE
//! credentials are set to a random ufrag, the relay's answer is written from its address, the
//! DTLS handshake checks the hash, and Noise over the first data channel (negotiated, id 0)
//! binds both certificates to both peer ids.
//!
//! The connection is this crate's [`Connection`], not libp2p-webrtc-websys's: its channels keep
//! up with a burst (see [`super::channel`]), and it takes the relay's first data channels,
//! which arrive right after the handshake, rather than letting them time out.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Future;
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use libp2p_webrtc_utils::Fingerprint;
use send_wrapper::SendWrapper;
use wasm_bindgen_futures::JsFuture;
use web_sys::{RtcConfiguration, RtcDataChannelInit, RtcPeerConnection, RtcSdpType};

use super::channel::DataChannel;
use super::connection::Connection;
use super::transport::{sdp_of, set_description, Error};
use crate::sdp;

type Dial = Pin<Box<dyn Future<Output = Result<(PeerId, Connection), Error>> + Send>>;

/// Dials only: a page cannot listen for WebRTC-direct.
pub struct Transport {
    keypair: Keypair,
}

impl Transport {
    pub fn new(keypair: Keypair) -> Self {
        Self { keypair }
    }
}

impl libp2p::core::Transport for Transport {
    type Output = (PeerId, Connection);
    type Error = Error;
    type ListenerUpgrade = Dial;
    type Dial = Dial;

    fn listen_on(&mut self, _: ListenerId, addr: Multiaddr) -> Result<(), TransportError<Error>> {
        Err(TransportError::MultiaddrNotSupported(addr))
    }

    fn remove_listener(&mut self, _: ListenerId) -> bool {
        false
    }

    fn dial(&mut self, addr: Multiaddr, _: DialOpts) -> Result<Dial, TransportError<Error>> {
        let Some((socket, remote)) = libp2p_webrtc_utils::parse_webrtc_dial_addr(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let keypair = self.keypair.clone();
        Ok(Box::pin(SendWrapper::new(Box::pin(async move {
            dial(socket, remote, keypair).await
        }))))
    }

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<TransportEvent<Dial, Error>> {
        Poll::Pending // no listener, so never an event
    }
}

async fn dial(
    socket: std::net::SocketAddr,
    remote: Fingerprint,
    keypair: Keypair,
) -> Result<(PeerId, Connection), Error> {
    let pc = with_certificate(&remote.algorithm()).await?;
    let mut connection = Connection::new(pc.clone());
    // The channel Noise runs on; created before the offer so that the offer has data in it.
    let init = RtcDataChannelInit::new();
    init.set_negotiated(true);
    init.set_id(0);
    let channel = DataChannel::new(pc.create_data_channel_with_data_channel_dict("", &init));
    let (handshake, _) = libp2p_webrtc_utils::Stream::new(channel.clone());
    let ufrag = libp2p_webrtc_utils::sdp::random_ufrag();
    let offer = sdp_of(&JsFuture::from(pc.create_offer()).await?)?;
    set_description(
        &pc,
        RtcSdpType::Offer,
        &sdp::munge_offer(&offer, &ufrag),
        true,
    )
    .await?;
    let answer = sdp::answer(socket, &remote.algorithm(), &remote.to_sdp_format(), &ufrag);
    set_description(&pc, RtcSdpType::Answer, &answer, false).await?;
    let local = pc
        .local_description()
        .and_then(|d| sdp::sha256_fingerprint(&d.sdp()))
        .ok_or_else(|| Error::Browser("no certificate fingerprint in our description".into()))?;
    let peer =
        libp2p_webrtc_utils::noise::outbound(keypair, handshake, remote, Fingerprint::raw(local))
            .await
            .map_err(|e| Error::Signalling(format!("Noise: {e}")))?;
    connection.hold(channel);
    Ok((peer, connection))
}

/// A peer connection with a fresh ECDSA P-256 certificate, hashed with `hash`.
async fn with_certificate(hash: &str) -> Result<RtcPeerConnection, Error> {
    let algorithm = js_sys::Object::new();
    for (key, value) in [("name", "ECDSA"), ("namedCurve", "P-256"), ("hash", hash)] {
        js_sys::Reflect::set(&algorithm, &key.into(), &value.into())?;
    }
    let certificate = JsFuture::from(RtcPeerConnection::generate_certificate_with_object(
        &algorithm,
    )?)
    .await?;
    let config = RtcConfiguration::new();
    config.set_certificates(&js_sys::Array::of1(&certificate));
    Ok(RtcPeerConnection::new_with_configuration(&config)?)
}
