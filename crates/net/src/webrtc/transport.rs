//! libp2p's WebRTC (private-to-private) transport in the page, as libp2p's spec
//! (`webrtc/webrtc.md`) describes it, on the browser's `RTCPeerConnection`:
//!
//! - the dialler (the outbound side of a relayed connection to the peer) opens a
//!   `/webrtc-signaling/0.0.1` stream on it, sends its SDP offer, takes the answer, and both
//!   trickle their ICE candidates over the stream until the connection is up, then close it;
//! - the DTLS fingerprints travel inside offer and answer over that relayed connection, which
//!   Noise has authenticated, so no further handshake is needed: the peer is the relayed
//!   connection's peer;
//! - every data channel of the connection is then a libp2p stream ([`super::Connection`]).
//!
//! It dials `…/webrtc/p2p/<peer>` once a relayed connection to the peer is up (the swarm task
//! makes that first) and takes the offers that arrive while it listens on `/webrtc`.

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{AsyncReadExt, AsyncWriteExt, Future, FutureExt, StreamExt};
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use send_wrapper::SendWrapper;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    RtcIceCandidateInit, RtcPeerConnection, RtcPeerConnectionIceEvent, RtcPeerConnectionState,
    RtcSdpType, RtcSessionDescriptionInit,
};

use super::connection::{ended, peer_connection, Connection, INIT_LABEL};
use crate::prefixed;
use crate::signaling::{Kind, Message, MAX_MESSAGE_BYTES, PROTOCOL};

/// How long signalling may take, from the offer to the connection being up.
const SETUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a WebRTC connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("WebRTC: {0}")]
    Browser(String),
    #[error("WebRTC signalling: {0}")]
    Signalling(String),
    #[error("the WebRTC connection did not come up in {0:?}")]
    Timeout(Duration),
    #[error("the WebRTC connection failed")]
    Failed,
}

impl From<JsValue> for Error {
    fn from(value: JsValue) -> Self {
        Error::Browser(format!("{value:?}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Signalling(e.to_string())
    }
}

type Setup = Pin<Box<dyn Future<Output = Result<(PeerId, Connection), Error>> + Send>>;

pub struct Transport {
    control: libp2p_stream::Control,
    ice_servers: Vec<String>,
    listener: Option<(ListenerId, libp2p_stream::IncomingStreams)>,
    events: VecDeque<TransportEvent<Setup, Error>>,
    /// Peers whose offer is being answered: one at a time each, [`MAX_ANSWERING`] in all, so
    /// that a flood of offers costs a bounded number of `RTCPeerConnection`s.
    answering: Arc<Mutex<HashSet<PeerId>>>,
}

/// Offers answered at once; more wait for the dialler's retry.
const MAX_ANSWERING: usize = 8;

/// Takes `peer` off the answering set when its setup ends, however it ends.
struct Answering(Arc<Mutex<HashSet<PeerId>>>, PeerId);

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.lock().expect("not poisoned").remove(&self.1);
    }
}

impl Transport {
    /// `control` opens and takes signalling streams (a `libp2p_stream::Behaviour` in the swarm).
    pub fn new(control: libp2p_stream::Control, ice_servers: Vec<String>) -> Self {
        Self {
            control,
            ice_servers,
            listener: None,
            events: VecDeque::new(),
            answering: Arc::default(),
        }
    }
}

/// `/webrtc`: where a node listens for offers.
pub fn listen_address() -> Multiaddr {
    Multiaddr::empty().with(Protocol::WebRTC)
}

/// The peer of a `…/webrtc/p2p/<peer>` address.
fn dial_target(addr: &Multiaddr) -> Option<PeerId> {
    let mut protocols = addr.iter().collect::<Vec<_>>().into_iter().rev();
    match (protocols.next(), protocols.next()) {
        (Some(Protocol::P2p(peer)), Some(Protocol::WebRTC)) => Some(peer),
        _ => None,
    }
}

fn setup(future: impl Future<Output = Result<Connection, Error>> + 'static, peer: PeerId) -> Setup {
    let timed = async move {
        let timeout = futures_timer::Delay::new(SETUP_TIMEOUT);
        let result = futures::select! {
            result = future.fuse() => result.map(|connection| (peer, connection)),
            _ = timeout.fuse() => Err(Error::Timeout(SETUP_TIMEOUT)),
        };
        if let Err(e) = &result {
            tracing::warn!(%peer, "a WebRTC connection was not made: {e}");
        }
        result
    };
    Box::pin(SendWrapper::new(Box::pin(timed)))
}

impl libp2p::core::Transport for Transport {
    type Output = (PeerId, Connection);
    type Error = Error;
    type ListenerUpgrade = Setup;
    type Dial = Setup;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        if addr != listen_address() {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        if self.listener.is_some() {
            return Err(TransportError::Other(Error::Signalling(
                "already listening on /webrtc".into(),
            )));
        }
        let incoming = self
            .control
            .accept(StreamProtocol::new(PROTOCOL))
            .map_err(|e| TransportError::Other(Error::Signalling(e.to_string())))?;
        self.listener = Some((id, incoming));
        self.events.push_back(TransportEvent::NewAddress {
            listener_id: id,
            listen_addr: addr,
        });
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        if !self.listener.as_ref().is_some_and(|(l, _)| *l == id) {
            return false;
        }
        self.listener = None;
        self.events.push_back(TransportEvent::ListenerClosed {
            listener_id: id,
            reason: Ok(()),
        });
        true
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        _: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        let Some(peer) = dial_target(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let (mut control, ice_servers) = (self.control.clone(), self.ice_servers.clone());
        Ok(setup(
            async move {
                let stream = control
                    .open_stream(peer, StreamProtocol::new(PROTOCOL))
                    .await
                    .map_err(|e| Error::Signalling(e.to_string()))?;
                offer(stream, &ice_servers).await
            },
            peer,
        ))
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(event);
        }
        let ice_servers = self.ice_servers.clone();
        let answering = self.answering.clone();
        let Some((id, incoming)) = self.listener.as_mut() else {
            return Poll::Pending;
        };
        while let Poll::Ready(Some((peer, stream))) = incoming.poll_next_unpin(cx) {
            {
                let mut busy = answering.lock().expect("not poisoned");
                if busy.len() >= MAX_ANSWERING || !busy.insert(peer) {
                    tracing::debug!(%peer, "a WebRTC offer refused: too many being answered");
                    continue; // dropping the stream resets it; the dialler backs off
                }
            }
            let guard = Answering(answering.clone(), peer);
            return Poll::Ready(TransportEvent::Incoming {
                listener_id: *id,
                upgrade: setup(
                    async move {
                        let _guard = guard;
                        answer(stream, &ice_servers).await
                    },
                    peer,
                ),
                local_addr: listen_address(),
                send_back_addr: Multiaddr::empty()
                    .with(Protocol::WebRTC)
                    .with(Protocol::P2p(peer)),
            });
        }
        Poll::Pending
    }
}

/// The dialler's side: offer, answer, candidates both ways until the connection is up.
async fn offer(stream: libp2p::Stream, ice_servers: &[String]) -> Result<Connection, Error> {
    let pc = peer_connection(ice_servers)?;
    let connection = Connection::new(pc.clone());
    // Without a channel the offer would have no data section; the answerer drops this one.
    let init = pc.create_data_channel(INIT_LABEL);
    let candidates = Candidates::gather(&pc);
    let sdp = sdp_of(&JsFuture::from(pc.create_offer()).await?)?;
    set_description(&pc, RtcSdpType::Offer, &sdp, true).await?;
    let (reader, mut writer) = stream.split();
    let mut messages = messages(reader);
    send(&mut writer, Kind::SdpOffer, sdp).await?;
    let answer = expect(&mut messages, Kind::SdpAnswer).await?;
    set_description(&pc, RtcSdpType::Answer, &answer, false).await?;
    exchange(&pc, candidates, messages, writer).await?;
    init.close();
    Ok(connection)
}

/// The listener's side: take the offer, answer it, candidates both ways until it is up.
async fn answer(stream: libp2p::Stream, ice_servers: &[String]) -> Result<Connection, Error> {
    let (reader, mut writer) = stream.split();
    let mut messages = messages(reader);
    let offer = expect(&mut messages, Kind::SdpOffer).await?;
    let pc = peer_connection(ice_servers)?;
    let connection = Connection::new(pc.clone());
    let candidates = Candidates::gather(&pc);
    set_description(&pc, RtcSdpType::Offer, &offer, false).await?;
    let sdp = sdp_of(&JsFuture::from(pc.create_answer()).await?)?;
    set_description(&pc, RtcSdpType::Answer, &sdp, true).await?;
    send(&mut writer, Kind::SdpAnswer, sdp).await?;
    exchange(&pc, candidates, messages, writer).await?;
    Ok(connection)
}

type Messages = Pin<Box<dyn futures::Stream<Item = Result<Message, Error>>>>;

/// The signalling messages the peer sends, until it closes the stream.
fn messages(reader: futures::io::ReadHalf<libp2p::Stream>) -> Messages {
    Box::pin(futures::stream::unfold(reader, |mut reader| async move {
        match prefixed::read(&mut reader, MAX_MESSAGE_BYTES).await {
            Ok(Some(bytes)) => {
                let message = Message::decode(&bytes).map_err(|e| Error::Signalling(e.to_string()));
                Some((message, reader))
            }
            Ok(None) => None,
            Err(e) => Some((Err(e.into()), reader)),
        }
    }))
}

async fn send(
    writer: &mut futures::io::WriteHalf<libp2p::Stream>,
    kind: Kind,
    data: String,
) -> Result<(), Error> {
    Ok(prefixed::write(writer, &Message::new(kind, data).encode()).await?)
}

/// The next message, which must be of `kind`; its data.
async fn expect(messages: &mut Messages, kind: Kind) -> Result<String, Error> {
    match messages.next().await {
        Some(Ok(message)) if message.kind == kind => Ok(message.data),
        Some(Ok(message)) => Err(Error::Signalling(format!(
            "expected {kind:?}, got {:?}",
            message.kind
        ))),
        Some(Err(e)) => Err(e),
        None => Err(Error::Signalling(format!("closed before {kind:?}"))),
    }
}

/// Sends our candidates and adds the peer's until the connection is up, then closes the
/// signalling stream (spec step 8).
async fn exchange(
    pc: &RtcPeerConnection,
    mut candidates: Candidates,
    mut messages: Messages,
    mut writer: futures::io::WriteHalf<libp2p::Stream>,
) -> Result<(), Error> {
    loop {
        if pc.connection_state() == RtcPeerConnectionState::Connected {
            break;
        }
        if ended(pc) {
            return Err(Error::Failed);
        }
        let poll = futures_timer::Delay::new(Duration::from_millis(20)).fuse();
        futures::pin_mut!(poll);
        futures::select! {
            candidate = candidates.next.next() => if let Some(json) = candidate {
                // A candidate that cannot be sent is not needed once the connection is up.
                let _ = send(&mut writer, Kind::IceCandidate, json).await;
            },
            message = messages.next().fuse() => match message {
                Some(Ok(Message { kind: Kind::IceCandidate, data })) => add_candidate(pc, &data).await?,
                Some(Ok(other)) => return Err(Error::Signalling(format!("unexpected {:?}", other.kind))),
                Some(Err(e)) => return Err(e),
                // The peer is through; wait for our side.
                None => messages = Box::pin(futures::stream::pending()),
            },
            _ = poll => {}
        }
    }
    let _ = writer.close().await;
    Ok(())
}

/// The local ICE candidates as the browser finds them, as JSON (`RTCIceCandidate.toJSON()`).
struct Candidates {
    next: mpsc::UnboundedReceiver<String>,
    pc: RtcPeerConnection,
    _handler: Closure<dyn FnMut(JsValue)>,
}

impl Candidates {
    fn gather(pc: &RtcPeerConnection) -> Self {
        let (tx, next) = mpsc::unbounded();
        let handler = Closure::new(move |event: JsValue| {
            let candidate = event
                .dyn_into::<RtcPeerConnectionIceEvent>()
                .ok()
                .and_then(|e| e.candidate());
            if let Some(json) = candidate.and_then(|c| js_sys::JSON::stringify(&c).ok()) {
                let _ = tx.unbounded_send(String::from(json));
            }
        });
        pc.set_onicecandidate(Some(handler.as_ref().unchecked_ref()));
        Self {
            next,
            pc: pc.clone(),
            _handler: handler,
        }
    }
}

impl Drop for Candidates {
    fn drop(&mut self) {
        self.pc.set_onicecandidate(None);
    }
}

/// Adds a candidate the peer sent; an empty one (or `null`) marks the end of its candidates.
async fn add_candidate(pc: &RtcPeerConnection, json: &str) -> Result<(), Error> {
    if json.is_empty() || json == "null" {
        return Ok(());
    }
    let init: RtcIceCandidateInit = js_sys::JSON::parse(json)
        .map_err(|_| Error::Signalling("a candidate that is not JSON".into()))?
        .unchecked_into();
    JsFuture::from(pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init))).await?;
    Ok(())
}

pub(super) fn sdp_of(description: &JsValue) -> Result<String, Error> {
    js_sys::Reflect::get(description, &JsValue::from_str("sdp"))?
        .as_string()
        .ok_or_else(|| Error::Browser("a description without SDP".into()))
}

pub(super) async fn set_description(
    pc: &RtcPeerConnection,
    kind: RtcSdpType,
    sdp: &str,
    local: bool,
) -> Result<(), Error> {
    let init = RtcSessionDescriptionInit::new(kind);
    init.set_sdp(sdp);
    let promise = if local {
        pc.set_local_description(&init)
    } else {
        pc.set_remote_description(&init)
    };
    JsFuture::from(promise).await?;
    Ok(())
}
