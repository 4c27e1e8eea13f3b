//! The page's background tasks: one feeds network events to the node, one runs its timers.

use super::*;

/// Feeds network events to the node for as long as the page lives.
pub(super) async fn pump_network(
    inner: std::rc::Weak<Inner>,
    mut events: futures::channel::mpsc::UnboundedReceiver<NetEvent>,
) {
    while let Some(event) = events.next().await {
        let Some(inner) = inner.upgrade() else { return };
        let other = inner
            .run(async |node| Ok(tabnode_driver::deliver(node, event).await))
            .await;
        let Ok(Some(event)) = other else { continue };
        match event {
            NetEvent::Connected { peer, via } => {
                inner.peers.borrow_mut().insert(peer.clone(), via);
                inner.notify_peer("peerConnected", &peer);
            }
            NetEvent::Reserved { relay } => {
                inner.reserved.borrow_mut().insert(relay);
            }
            NetEvent::Disconnected { peer } => {
                inner.peers.borrow_mut().remove(&peer);
                inner.reserved.borrow_mut().remove(&peer);
                inner.notify_peer("peerDisconnected", &peer);
            }
            NetEvent::DirectOpened { peer } => {
                inner.notify_peer("directOpened", &peer);
            }
            NetEvent::DirectClosed { peer } => {
                inner.notify_peer("directClosed", &peer);
            }
            other => tracing::debug!(?other, "network event"),
        }
    }
}

/// The page's timer: runs the node's timer work when it is due ([`CoreNode::poll_timeout`]),
/// with the page's clock as the time, sleeping until then (at most [`MOST_TIMER_SLEEP`]) unless
/// an operation makes work due sooner. This is what repairs gossip lost while a connection was
/// down (each context announces its heads every few seconds) and writes reads' audit records.
/// Stops when the node is dropped.
pub(super) async fn timers(
    inner: std::rc::Weak<Inner>,
    mut wakes: futures::channel::mpsc::UnboundedReceiver<()>,
) {
    loop {
        let sleep = {
            let Some(inner) = inner.upgrade() else { return };
            let node = inner.node.lock().await;
            let now = node.env().now_nanos();
            let sleep = tabnode_driver::time_to_next_timer(&node, now, MOST_TIMER_SLEEP);
            inner
                .timer_wakes_at
                .set(now.saturating_add(sleep.as_nanos() as u64));
            sleep
        };
        let delay = futures_timer::Delay::new(sleep);
        futures::future::select(delay, wakes.next()).await;
        let Some(inner) = inner.upgrade() else { return };
        inner.timer_wakes_at.set(0);
        let _ = inner
            .run(async |node| {
                let now = node.env().now_nanos();
                tabnode_driver::run_timers(node, now).await;
                Ok(())
            })
            .await;
    }
}
