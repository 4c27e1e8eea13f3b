//! WebRTC in the page: the `RtcPeerConnection`s and data channels that carry the direct links
//! [`crate::direct::Links`] asks for. One ordered, reliable data channel per peer carries
//! frames ([`crate::direct::encode_frame`]). Everything that happens comes back as an
//! [`RtcEvent`] tagged with the connection's generation, so an event of a connection that was
//! replaced is told apart and dropped.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;

use crate::RtcEvent;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{
    MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelEvent, RtcDataChannelState,
    RtcDataChannelType, RtcIceGatheringState, RtcIceServer, RtcPeerConnection,
    RtcPeerConnectionState, RtcSdpType, RtcSessionDescriptionInit,
};

/// How long to wait for ICE candidates before sending a description with what was gathered.
const GATHER_MS: u64 = 3_000;

/// A connection's event handlers: kept alive while it lives, dropped after they are cleared.
type Handlers = Rc<RefCell<Vec<Closure<dyn FnMut(JsValue)>>>>;

struct Conn {
    gen: u64,
    pc: RtcPeerConnection,
    channel: Rc<RefCell<Option<RtcDataChannel>>>,
    handlers: Handlers,
}

pub(crate) struct Rtc {
    conns: HashMap<String, Conn>,
    events: UnboundedSender<RtcEvent>,
    ice_servers: Vec<String>,
    next_gen: u64,
}

impl Rtc {
    pub(crate) fn new(events: UnboundedSender<RtcEvent>, ice_servers: Vec<String>) -> Self {
        Self {
            conns: HashMap::new(),
            events,
            ice_servers,
            next_gen: 1,
        }
    }

    /// Whether `gen` is the live connection with `peer`.
    pub(crate) fn current(&self, peer: &str, gen: u64) -> bool {
        self.conns.get(peer).is_some_and(|c| c.gen == gen)
    }

    fn connect(&mut self, peer: &str) -> Result<&Conn, JsValue> {
        self.close(peer);
        let config = RtcConfiguration::new();
        if !self.ice_servers.is_empty() {
            let servers = js_sys::Array::new();
            for url in &self.ice_servers {
                let server = RtcIceServer::new();
                server.set_urls(&JsValue::from_str(url));
                servers.push(&server);
            }
            config.set_ice_servers(&servers);
        }
        let pc = RtcPeerConnection::new_with_configuration(&config)?;
        let gen = self.next_gen;
        self.next_gen += 1;
        let conn = Conn {
            gen,
            pc,
            channel: Rc::default(),
            handlers: Rc::default(),
        };
        let (events, who) = (self.events.clone(), peer.to_owned());
        let watched = conn.pc.clone();
        let on_state = Closure::<dyn FnMut(JsValue)>::new(move |_| {
            if matches!(
                watched.connection_state(),
                RtcPeerConnectionState::Failed | RtcPeerConnectionState::Closed
            ) {
                let _ = events.unbounded_send(RtcEvent::Closed {
                    peer: who.clone(),
                    gen,
                });
            }
        });
        conn.pc
            .set_onconnectionstatechange(Some(on_state.as_ref().unchecked_ref()));
        conn.handlers.borrow_mut().push(on_state);
        self.conns.insert(peer.to_owned(), conn);
        Ok(&self.conns[peer])
    }

    /// Makes a connection and its data channel, and an offer (reported as `Described`).
    pub(crate) fn offer(&mut self, peer: &str) {
        let events = self.events.clone();
        let Ok(conn) = self.connect(peer) else {
            return self.report_closed(peer, 0);
        };
        let channel = conn.pc.create_data_channel("tabnode");
        wire_channel(
            peer,
            conn.gen,
            &channel,
            &conn.channel,
            &conn.handlers,
            &events,
        );
        describe(conn.pc.clone(), None, peer, conn.gen, events);
    }

    /// Takes `peer`'s offer and makes an answer (reported as `Described`).
    pub(crate) fn answer(&mut self, peer: &str, offer: String) {
        let events = self.events.clone();
        let Ok(conn) = self.connect(peer) else {
            return self.report_closed(peer, 0);
        };
        let (slot, handlers, gen) = (conn.channel.clone(), conn.handlers.clone(), conn.gen);
        let (who, sink) = (peer.to_owned(), events.clone());
        let handler_list = handlers.clone();
        let on_channel = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let channel = event.unchecked_into::<RtcDataChannelEvent>().channel();
            wire_channel(&who, gen, &channel, &slot, &handler_list, &sink);
        });
        conn.pc
            .set_ondatachannel(Some(on_channel.as_ref().unchecked_ref()));
        handlers.borrow_mut().push(on_channel);
        describe(conn.pc.clone(), Some(offer), peer, gen, events);
    }

    /// Completes the connection we offered with `peer`'s answer.
    pub(crate) fn complete(&mut self, peer: &str, answer: String) {
        let Some(conn) = self.conns.get(peer) else {
            return;
        };
        let (pc, gen, events, peer) = (
            conn.pc.clone(),
            conn.gen,
            self.events.clone(),
            peer.to_owned(),
        );
        spawn_local(async move {
            if let Err(e) = set_description(&pc, RtcSdpType::Answer, &answer, false).await {
                tracing::debug!(?e, "a WebRTC answer did not apply");
                let _ = events.unbounded_send(RtcEvent::Closed { peer, gen });
            }
        });
    }

    /// Sends a frame on the open link with `peer`; false if there is none.
    pub(crate) fn send(&self, peer: &str, frame: &[u8]) -> bool {
        let Some(conn) = self.conns.get(peer) else {
            return false;
        };
        let channel = conn.channel.borrow();
        match channel.as_ref() {
            Some(channel) if channel.ready_state() == RtcDataChannelState::Open => {
                channel.send_with_u8_array(frame).is_ok()
            }
            _ => false,
        }
    }

    /// Closes and forgets the connection with `peer`.
    pub(crate) fn close(&mut self, peer: &str) {
        if let Some(conn) = self.conns.remove(peer) {
            if let Some(channel) = conn.channel.borrow_mut().take() {
                channel.set_onopen(None);
                channel.set_onclose(None);
                channel.set_onmessage(None);
                channel.close();
            }
            conn.pc.set_onconnectionstatechange(None);
            conn.pc.set_ondatachannel(None);
            conn.pc.close();
        }
    }

    fn report_closed(&self, peer: &str, gen: u64) {
        let _ = self.events.unbounded_send(RtcEvent::Closed {
            peer: peer.to_owned(),
            gen,
        });
    }
}

/// Hooks a data channel's open, close and message events to `events`, and keeps it as the
/// connection's channel.
fn wire_channel(
    peer: &str,
    gen: u64,
    channel: &RtcDataChannel,
    slot: &Rc<RefCell<Option<RtcDataChannel>>>,
    handlers: &Handlers,
    events: &UnboundedSender<RtcEvent>,
) {
    channel.set_binary_type(RtcDataChannelType::Arraybuffer);
    let report = |make: fn(String, u64) -> RtcEvent| {
        let (events, peer) = (events.clone(), peer.to_owned());
        Closure::<dyn FnMut(JsValue)>::new(move |_| {
            let _ = events.unbounded_send(make(peer.clone(), gen));
        })
    };
    let on_open = report(|peer, gen| RtcEvent::Opened { peer, gen });
    let on_close = report(|peer, gen| RtcEvent::Closed { peer, gen });
    let (sink, who) = (events.clone(), peer.to_owned());
    let on_message = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let data = event.unchecked_into::<MessageEvent>().data();
        let data = js_sys::Uint8Array::new(&data).to_vec();
        let _ = sink.unbounded_send(RtcEvent::Frame {
            peer: who.clone(),
            gen,
            data,
        });
    });
    channel.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    channel.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    handlers
        .borrow_mut()
        .extend([on_open, on_close, on_message]);
    *slot.borrow_mut() = Some(channel.clone());
}

/// Makes our side's description, an offer, or with `remote_offer` an answer to it, and reports
/// it once ICE gathering is done (`Described`), or the connection as closed if that fails.
fn describe(
    pc: RtcPeerConnection,
    remote_offer: Option<String>,
    peer: &str,
    gen: u64,
    events: UnboundedSender<RtcEvent>,
) {
    let peer = peer.to_owned();
    spawn_local(async move {
        let described = async {
            let (local, kind) = match &remote_offer {
                Some(offer) => {
                    set_description(&pc, RtcSdpType::Offer, offer, false).await?;
                    (pc.create_answer(), RtcSdpType::Answer)
                }
                None => (pc.create_offer(), RtcSdpType::Offer),
            };
            let sdp = sdp_of(&JsFuture::from(local).await?)?;
            set_description(&pc, kind, &sdp, true).await?;
            local_sdp(&pc).await
        };
        let event = match described.await {
            Ok(sdp) => RtcEvent::Described { peer, gen, sdp },
            Err(e) => {
                tracing::debug!(?e, "could not make a WebRTC description");
                RtcEvent::Closed { peer, gen }
            }
        };
        let _ = events.unbounded_send(event);
    });
}

fn sdp_of(description: &JsValue) -> Result<String, JsValue> {
    js_sys::Reflect::get(description, &JsValue::from_str("sdp"))?
        .as_string()
        .ok_or_else(|| JsValue::from_str("a description without SDP"))
}

async fn set_description(
    pc: &RtcPeerConnection,
    kind: RtcSdpType,
    sdp: &str,
    local: bool,
) -> Result<(), JsValue> {
    let init = RtcSessionDescriptionInit::new(kind);
    init.set_sdp(sdp);
    let promise = if local {
        pc.set_local_description(&init)
    } else {
        pc.set_remote_description(&init)
    };
    JsFuture::from(promise).await.map(drop)
}

/// Our description once ICE gathering is complete (or after [`GATHER_MS`], with what it has).
async fn local_sdp(pc: &RtcPeerConnection) -> Result<String, JsValue> {
    let mut waited = 0;
    while pc.ice_gathering_state() != RtcIceGatheringState::Complete && waited < GATHER_MS {
        futures_timer::Delay::new(Duration::from_millis(50)).await;
        waited += 50;
    }
    pc.local_description()
        .map(|d| d.sdp())
        .ok_or_else(|| JsValue::from_str("no local description"))
}
