//! One `RTCDataChannel` as a byte stream (`AsyncRead` + `AsyncWrite`), under libp2p's WebRTC
//! stream framing ([`libp2p_webrtc_utils::Stream`]).
//!
//! Two choices differ from libp2p-webrtc-websys 0.4's channel, for the same reason (a page
//! busy running a guest falls behind a burst): up to [`MAX_UNREAD`] bytes received and not yet
//! read are kept (websys fails the stream past one 16 KiB message, and gossipsub then gives up
//! on the connection), and writes go on while less than [`HIGH_WATER`] is queued in the
//! browser rather than waiting for the queue to empty. The callbacks are taken off the channel
//! when the last handle goes, so none fires into a freed closure.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures::{AsyncRead, AsyncWrite};
use send_wrapper::SendWrapper;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, RtcDataChannel, RtcDataChannelState, RtcDataChannelType};

/// Received bytes kept for a reader that has fallen behind; past it the stream fails.
pub(crate) const MAX_UNREAD: usize = 8 * 1024 * 1024;
/// Bytes queued in the browser beyond which writes wait.
const HIGH_WATER: u32 = 1024 * 1024;
/// Writes resume when the queue drains to this.
const LOW_WATER: u32 = 256 * 1024;
/// Largest single `send`: RFC 8831 asks senders to keep messages to 16 KiB.
const MAX_SEND: usize = libp2p_webrtc_utils::MAX_MSG_LEN;

#[derive(Default)]
struct Shared {
    unread: VecDeque<u8>,
    overflowed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Shared {
    fn wake_all(&mut self) {
        for waker in [self.reader.take(), self.writer.take()]
            .into_iter()
            .flatten()
        {
            waker.wake();
        }
    }
}

/// Event handlers set on a channel or connection, kept alive as long as it is.
pub(crate) type Handlers = Vec<Closure<dyn FnMut(JsValue)>>;

struct Inner {
    channel: RtcDataChannel,
    shared: Rc<RefCell<Shared>>,
    _handlers: Handlers,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.channel.set_onopen(None);
        self.channel.set_onmessage(None);
        self.channel.set_onclose(None);
        self.channel.set_onerror(None);
        self.channel.set_onbufferedamountlow(None);
        self.channel.close();
    }
}

/// A handle on a data channel; clones share it (the stream and its drop listener each hold one).
#[derive(Clone)]
pub struct DataChannel {
    inner: SendWrapper<Rc<Inner>>,
}

impl DataChannel {
    pub(crate) fn new(channel: RtcDataChannel) -> Self {
        channel.set_binary_type(RtcDataChannelType::Arraybuffer);
        channel.set_buffered_amount_low_threshold(LOW_WATER);
        let shared = Rc::new(RefCell::new(Shared::default()));
        let wake = |shared: &Rc<RefCell<Shared>>| {
            let shared = shared.clone();
            Closure::new(move |_: JsValue| shared.borrow_mut().wake_all())
        };
        let on_message = {
            let shared = shared.clone();
            Closure::new(move |event: JsValue| {
                let Ok(event) = event.dyn_into::<MessageEvent>() else {
                    return;
                };
                let bytes = js_sys::Uint8Array::new(&event.data()).to_vec();
                let mut shared = shared.borrow_mut();
                if shared.unread.len() + bytes.len() > MAX_UNREAD {
                    tracing::warn!("a data channel's reader fell {MAX_UNREAD} bytes behind");
                    shared.overflowed = true;
                } else {
                    shared.unread.extend(bytes);
                }
                if let Some(waker) = shared.reader.take() {
                    waker.wake();
                }
            })
        };
        let handlers: Handlers = vec![
            wake(&shared),
            on_message,
            wake(&shared),
            wake(&shared),
            wake(&shared),
        ];
        channel.set_onopen(Some(handlers[0].as_ref().unchecked_ref()));
        channel.set_onmessage(Some(handlers[1].as_ref().unchecked_ref()));
        channel.set_onclose(Some(handlers[2].as_ref().unchecked_ref()));
        channel.set_onerror(Some(handlers[3].as_ref().unchecked_ref()));
        channel.set_onbufferedamountlow(Some(handlers[4].as_ref().unchecked_ref()));
        Self {
            inner: SendWrapper::new(Rc::new(Inner {
                channel,
                shared,
                _handlers: handlers,
            })),
        }
    }

    fn channel(&self) -> &RtcDataChannel {
        &self.inner.channel
    }

    /// Ready once the channel is open; an error once it is closing or closed.
    fn poll_open(
        &self,
        cx: &mut Context<'_>,
        waker: fn(&mut Shared) -> &mut Option<Waker>,
    ) -> Poll<io::Result<()>> {
        match self.channel().ready_state() {
            RtcDataChannelState::Connecting => {
                *waker(&mut self.inner.shared.borrow_mut()) = Some(cx.waker().clone());
                Poll::Pending
            }
            RtcDataChannelState::Open => Poll::Ready(Ok(())),
            _ => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }
}

impl AsyncRead for DataChannel {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut shared = self.inner.shared.borrow_mut();
        if !shared.unread.is_empty() {
            let n = buf.len().min(shared.unread.len());
            for (slot, byte) in buf.iter_mut().zip(shared.unread.drain(..n)) {
                *slot = byte;
            }
            return Poll::Ready(Ok(n));
        }
        if shared.overflowed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "the peer sent more than the reader could keep up with",
            )));
        }
        match self.channel().ready_state() {
            RtcDataChannelState::Connecting | RtcDataChannelState::Open => {
                shared.reader = Some(cx.waker().clone());
                Poll::Pending
            }
            _ => Poll::Ready(Ok(0)), // closed: the end of the stream
        }
    }
}

impl AsyncWrite for DataChannel {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures::ready!(self.poll_open(cx, |s| &mut s.writer))?;
        if self.channel().buffered_amount() >= HIGH_WATER {
            // `bufferedamountlow` wakes us when the queue has drained to LOW_WATER.
            self.inner.shared.borrow_mut().writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(MAX_SEND);
        match self.channel().send_with_u8_array(&buf[..n]) {
            Ok(()) => Poll::Ready(Ok(n)),
            Err(_) => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    /// What was sent is the browser's to deliver, also across a `close()`: nothing to wait for.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_open(cx, |s| &mut s.writer)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.channel().ready_state() {
            RtcDataChannelState::Closed => Poll::Ready(Ok(())),
            state => {
                if state != RtcDataChannelState::Closing {
                    self.channel().close();
                }
                self.inner.shared.borrow_mut().writer = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
