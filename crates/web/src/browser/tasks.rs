//! The page's node task: the one owner of the node.

use super::*;
use tabnode_driver::{Commands, Driver};

/// Owns the node for as long as the page holds it ([`tabnode_driver::own`]): runs the
/// operations `BrowserNode`'s methods send, in the order sent, and in between feeds it what the
/// network brings and runs its timer work when [`CoreNode::poll_timeout`] says (this is what
/// repairs gossip lost while a connection was down, and writes reads' audit records). After
/// each step, subscribers hear what the node told, and the page's view of its peers follows
/// the network. `opened`: what the node told when opened, held for the first step, when the
/// page has subscribed.
pub(super) async fn drive(
    inner: std::rc::Weak<Inner>,
    driver: Driver<Rc<PageStore>, BrowserEnv>,
    commands: Commands<BrowserEnv>,
    opened: Vec<NodeEvent>,
) {
    let mut opened = Some(opened);
    let show = move |events: Vec<NodeEvent>, other: Option<NetEvent>| {
        let Some(inner) = inner.upgrade() else { return };
        if let Some(opened) = opened.take() {
            inner.notify(&opened);
        }
        inner.notify(&events);
        if inner.sends_proposals && proposals::told_of_proposals(&events) {
            wasm_bindgen_futures::spawn_local(inner.clone().send_own_parts(events));
        }
        if let Some(event) = other {
            inner.network_event(event);
        }
    };
    tabnode_driver::own(driver, commands, futures_timer::Delay::new, show).await;
}

impl Inner {
    /// What the network told that is not the node's: the peers and reservations this page
    /// shows, and `null` subscribers told of peers coming and going.
    fn network_event(&self, event: NetEvent) {
        match event {
            NetEvent::Connected { peer, via } => {
                self.peers.borrow_mut().insert(peer.clone(), via);
                self.notify_peer("peerConnected", &peer);
            }
            NetEvent::Reserved { relay } => {
                self.reserved.borrow_mut().insert(relay);
            }
            NetEvent::Disconnected { peer } => {
                self.peers.borrow_mut().remove(&peer);
                self.reserved.borrow_mut().remove(&peer);
                self.notify_peer("peerDisconnected", &peer);
            }
            NetEvent::DirectOpened { peer } => {
                self.notify_peer("directOpened", &peer);
            }
            NetEvent::DirectClosed { peer } => {
                self.notify_peer("directClosed", &peer);
            }
            other => tracing::debug!(?other, "network event"),
        }
    }
}
