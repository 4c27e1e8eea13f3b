//! A libp2p connection over an `RTCPeerConnection`: every data channel is a stream, framed as
//! libp2p's WebRTC specs say ([`libp2p_webrtc_utils::Stream`]). Channels the peer opens arrive
//! through `ondatachannel`, whose handler is set before the remote description and listens on
//! each channel at once, so neither a channel nor its first message is missed; none is dropped
//! for lack of room either (the queue is the muxer's to drain).

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures::channel::mpsc;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use libp2p_webrtc_utils::{DropListener, Stream};
use send_wrapper::SendWrapper;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{
    RtcConfiguration, RtcDataChannelEvent, RtcIceServer, RtcPeerConnection, RtcPeerConnectionState,
};

use super::channel::{DataChannel, Handlers};

/// The label of the channel an offerer opens only so that its offer has a data section, and
/// closes once connected (libp2p's JS implementation does the same); the answerer ignores it.
pub(crate) const INIT_LABEL: &str = "init";

pub type Substream = Stream<DataChannel>;

/// A new `RTCPeerConnection` with the given STUN/TURN servers (none: host candidates only).
pub(crate) fn peer_connection(ice_servers: &[String]) -> Result<RtcPeerConnection, JsValue> {
    let config = RtcConfiguration::new();
    if !ice_servers.is_empty() {
        let servers = js_sys::Array::new();
        for url in ice_servers {
            let server = RtcIceServer::new();
            server.set_urls(&JsValue::from_str(url));
            servers.push(&server);
        }
        config.set_ice_servers(&servers);
    }
    RtcPeerConnection::new_with_configuration(&config)
}

/// Whether the connection failed or was closed (by either side): no stream can run on it.
pub(super) fn ended(pc: &RtcPeerConnection) -> bool {
    matches!(
        pc.connection_state(),
        RtcPeerConnectionState::Failed | RtcPeerConnectionState::Closed
    )
}

pub struct Connection {
    pc: SendWrapper<RtcPeerConnection>,
    inbound: SendWrapper<mpsc::UnboundedReceiver<DataChannel>>,
    drop_listeners: FuturesUnordered<DropListener<DataChannel>>,
    /// The last `poll`'s waker: woken when a drop listener is added or the connection fails.
    waker: SendWrapper<Rc<Cell<Option<Waker>>>>,
    /// Channels kept open as long as the connection (WebRTC-direct's handshake channel).
    held: Vec<DataChannel>,
    _handlers: SendWrapper<Handlers>,
}

impl Connection {
    /// Takes over `pc`: call before its remote description is set.
    pub(crate) fn new(pc: RtcPeerConnection) -> Self {
        let (tx, inbound) = mpsc::unbounded();
        let on_channel = Closure::new(move |event: JsValue| {
            let Ok(event) = event.dyn_into::<RtcDataChannelEvent>() else {
                return;
            };
            let channel = event.channel();
            if channel.label() == INIT_LABEL {
                // The offerer's, and its to close: js-libp2p's waits for it to open first.
                return;
            }
            // Wrapped here, in the event itself: a message the peer sends right after opening
            // the channel would otherwise be dispatched before anything listens, and be lost.
            let _ = tx.unbounded_send(DataChannel::new(channel));
        });
        pc.set_ondatachannel(Some(on_channel.as_ref().unchecked_ref()));
        let waker: Rc<Cell<Option<Waker>>> = Rc::new(Cell::new(None));
        let on_state = {
            let (pc, waker) = (pc.clone(), waker.clone());
            Closure::new(move |_: JsValue| {
                if ended(&pc) {
                    if let Some(waker) = waker.take() {
                        waker.wake();
                    }
                }
            })
        };
        pc.set_onconnectionstatechange(Some(on_state.as_ref().unchecked_ref()));
        Self {
            pc: SendWrapper::new(pc),
            inbound: SendWrapper::new(inbound),
            drop_listeners: FuturesUnordered::new(),
            waker: SendWrapper::new(waker),
            held: Vec::new(),
            _handlers: SendWrapper::new(vec![on_channel, on_state]),
        }
    }

    /// Keeps `channel` open until the connection closes: closing WebRTC-direct's handshake
    /// channel (id 0) frees its id for the next channel while the relay may still hold the old
    /// one, and what is sent on the new one is then lost.
    pub(crate) fn hold(&mut self, channel: DataChannel) {
        self.held.push(channel);
    }

    fn stream_on(&mut self, channel: DataChannel) -> Substream {
        let (stream, listener) = Stream::new(channel);
        self.drop_listeners.push(listener);
        if let Some(waker) = Cell::take(&self.waker) {
            waker.wake();
        }
        stream
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.pc.set_ondatachannel(None);
        self.pc.set_onconnectionstatechange(None);
        self.pc.close();
    }
}

impl StreamMuxer for Connection {
    type Substream = Substream;
    type Error = io::Error;

    fn poll_inbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        match futures::ready!(self.inbound.poll_next_unpin(cx)) {
            Some(channel) => Poll::Ready(Ok(self.stream_on(channel))),
            None => Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into())),
        }
    }

    fn poll_outbound(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let channel = DataChannel::new(self.pc.create_data_channel(""));
        Poll::Ready(Ok(self.stream_on(channel)))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.pc.close();
        Poll::Ready(Ok(()))
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        if ended(&self.pc) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "the WebRTC connection failed or closed",
            )));
        }
        self.waker.set(Some(cx.waker().clone()));
        while let Poll::Ready(Some(result)) = self.drop_listeners.poll_next_unpin(cx) {
            if let Err(e) = result {
                tracing::debug!("closing a dropped WebRTC stream: {e}");
            }
        }
        Poll::Pending
    }
}

/// In headless Chromium (`scripts/wasm-test.sh -p tabnode-net`): two connections in one page.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::{AsyncReadExt, AsyncWriteExt};
    use libp2p::core::muxing::StreamMuxerExt;
    use wasm_bindgen_futures::JsFuture;
    use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
    use web_sys::{RtcIceGatheringState, RtcSdpType};

    use super::super::transport::{sdp_of, set_description};
    use super::*;

    wasm_bindgen_test_configure!(run_in_browser);

    async fn sleep(ms: u64) {
        futures_timer::Delay::new(Duration::from_millis(ms)).await;
    }

    /// Our description once every candidate is in it.
    async fn gathered(pc: &RtcPeerConnection) -> String {
        while pc.ice_gathering_state() != RtcIceGatheringState::Complete {
            sleep(10).await;
        }
        pc.local_description().unwrap().sdp()
    }

    /// Two connected peer connections, each taken over by a [`Connection`] first.
    async fn pair() -> (Connection, Connection) {
        let (a, b) = (peer_connection(&[]).unwrap(), peer_connection(&[]).unwrap());
        let (ca, cb) = (Connection::new(a.clone()), Connection::new(b.clone()));
        let _init = a.create_data_channel(INIT_LABEL);
        let offer = sdp_of(&JsFuture::from(a.create_offer()).await.unwrap()).unwrap();
        set_description(&a, RtcSdpType::Offer, &offer, true)
            .await
            .unwrap();
        let offer = gathered(&a).await;
        set_description(&b, RtcSdpType::Offer, &offer, false)
            .await
            .unwrap();
        let answer = sdp_of(&JsFuture::from(b.create_answer()).await.unwrap()).unwrap();
        set_description(&b, RtcSdpType::Answer, &answer, true)
            .await
            .unwrap();
        let answer = gathered(&b).await;
        set_description(&a, RtcSdpType::Answer, &answer, false)
            .await
            .unwrap();
        for pc in [&a, &b] {
            while pc.connection_state() != RtcPeerConnectionState::Connected {
                sleep(10).await;
            }
        }
        (ca, cb)
    }

    #[wasm_bindgen_test]
    async fn a_burst_far_over_16_kib_reaches_a_reader_that_starts_late_whole() {
        let (mut a, mut b) = pair().await;
        let mut out = futures::future::poll_fn(|cx| a.poll_outbound_unpin(cx))
            .await
            .unwrap();
        let burst: Vec<u8> = (0..2 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let sent = burst.clone();
        wasm_bindgen_futures::spawn_local(async move {
            out.write_all(&sent).await.unwrap();
            out.flush().await.unwrap();
            sleep(60_000).await; // keep the stream open while the reader reads
        });
        // The reader comes late: everything sent meanwhile waits, unread, in its channel (and
        // the "init" channel the offerer opened never shows up as a stream).
        sleep(1_000).await;
        let mut inbound = futures::future::poll_fn(|cx| b.poll_inbound_unpin(cx))
            .await
            .unwrap();
        let mut got = vec![0u8; burst.len()];
        inbound.read_exact(&mut got).await.unwrap();
        assert!(got == burst, "the bytes arrived changed");
    }

    #[wasm_bindgen_test]
    async fn streams_go_both_ways_and_many_at_once() {
        let (mut a, mut b) = pair().await;
        let mut outs = Vec::new();
        for i in 0..8u8 {
            let mut out = futures::future::poll_fn(|cx| a.poll_outbound_unpin(cx))
                .await
                .unwrap();
            out.write_all(&[i; 100]).await.unwrap();
            out.flush().await.unwrap();
            outs.push(out);
        }
        let mut seen = Vec::new();
        for _ in 0..8 {
            let mut inbound = futures::future::poll_fn(|cx| b.poll_inbound_unpin(cx))
                .await
                .unwrap();
            let mut first = [0u8; 100];
            inbound.read_exact(&mut first).await.unwrap();
            assert!(first.iter().all(|x| *x == first[0]));
            seen.push(first[0]);
            inbound.write_all(b"ack").await.unwrap();
            inbound.flush().await.unwrap();
        }
        seen.sort();
        assert_eq!(seen, (0..8).collect::<Vec<u8>>());
        for out in &mut outs {
            let mut ack = [0u8; 3];
            out.read_exact(&mut ack).await.unwrap();
            assert_eq!(&ack, b"ack");
        }
    }
}
