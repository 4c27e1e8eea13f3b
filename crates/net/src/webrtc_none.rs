//! Natively there is no WebRTC (the relay and native nodes talk over TCP and WebSocket): the
//! same interface as the page's, doing nothing, so the swarm task reads the same on both.

use futures::channel::mpsc::UnboundedSender;

use crate::RtcEvent;

pub(crate) struct Rtc;

impl Rtc {
    pub(crate) fn new(_events: UnboundedSender<RtcEvent>, _ice_servers: Vec<String>) -> Self {
        Self
    }
    pub(crate) fn current(&self, _peer: &str, _gen: u64) -> bool {
        false
    }
    pub(crate) fn offer(&mut self, _peer: &str) {}
    pub(crate) fn answer(&mut self, _peer: &str, _offer: String) {}
    pub(crate) fn complete(&mut self, _peer: &str, _answer: String) {}
    pub(crate) fn send(&self, _peer: &str, _frame: &[u8]) -> bool {
        false
    }
    pub(crate) fn close(&mut self, _peer: &str) {}
}
