//! The node core on the network, for the page and the CLI alike (issue 16's one driver).
//!
//! The node does no I/O: it queues [`Outgoing`] messages and [`NodeEvent`]s, takes messages
//! from peers, and says when its timers are next due ([`Node::poll_timeout`]). What is not
//! browser- or tokio-specific about carrying that out lives here:
//!
//! - [`transmit`] sends what the node queued on the network ([`NetHandle`]);
//! - [`deliver`] gives the node what the network brought (and the time it came at), and hands
//!   back what is not the node's (peers coming and going, reservations) to the driver's owner;
//! - [`run_timers`] and [`time_to_next_timer`] run the node's timer work when it is due;
//! - [`flush`] is what follows every step: send what it queued, collect what it told.
//!
//! [`Driver`] puts them together for the one task that owns the node: [`Driver::step`] waits
//! for the next input (a network event, the node's timer, or the owner's own) and handles it.
//! The node reads no clock: the driver reads its own [`Clock`] (the page's `Date.now()`, the
//! CLI's `SystemTime`) and gives the node the time before every input ([`Node::advance_to`]).
//! The CLI's `run` loop steps it with stdin as its own input; the page's node task runs
//! [`own`], which steps it with operations sent through a [`NodeSender`] (see [`owner`]).

mod owner;

pub use owner::{channel, own, Commands, NodeSender};

use std::future::Future;
use std::time::Duration;

use futures::channel::mpsc::UnboundedReceiver;
use futures::{FutureExt, StreamExt};
use tabnode_net::{NetEvent, NetHandle};
use tabnode_node::{Clock, Env, Node, NodeEvent, Outgoing};
use tabnode_store::Store;

/// Carries out on the network what the node asked for, in order. A refusal (the network task
/// stopped) is logged and the rest is still tried: the node repairs lost messages itself
/// (anti-entropy), so a driver need not.
pub fn transmit(net: &NetHandle, outgoing: Vec<Outgoing>) {
    for out in outgoing {
        let result = match out {
            Outgoing::Subscribe { topic, key } => net.subscribe(&topic, key),
            Outgoing::Publish { topic, data } => net.publish(&topic, data),
            Outgoing::Reply { peer, topic, data } => net.send_to(&peer, &topic, data),
        };
        if let Err(e) = result {
            tracing::warn!("network: {e}");
        }
    }
}

/// What follows every step of the node: what it queued goes out on `net` (dropped when
/// offline: members catch up by anti-entropy later), and what it told is returned in order.
pub fn flush<S: Store, E: Env>(node: &mut Node<S, E>, net: Option<&NetHandle>) -> Vec<NodeEvent> {
    let outgoing = node.take_outgoing();
    if let Some(net) = net {
        transmit(net, outgoing);
    }
    node.take_events()
}

/// Gives the node a message the network brought at `now` (ns since the epoch); any other event
/// is not the node's and is handed back for the driver's owner to show or keep.
pub async fn deliver<S: Store, E: Env>(
    node: &mut Node<S, E>,
    now: u64,
    event: NetEvent,
) -> Option<NetEvent> {
    match event {
        NetEvent::Message {
            topic,
            data,
            source,
        } => {
            node.advance_to(now);
            node.handle_message_from(&topic, &data, source.as_deref())
                .await;
            None
        }
        other => Some(other),
    }
}

/// Runs the node's timer work if it is due at `now` (ns since the epoch, the node's clock);
/// says whether it ran.
pub async fn run_timers<S: Store, E: Env>(node: &mut Node<S, E>, now: u64) -> bool {
    let due = node.poll_timeout().is_some_and(|due| due <= now);
    if due {
        node.handle_timeout(now).await;
    }
    due
}

/// How long from `now` until the node's timers are next due, at most `most` (with none due,
/// `most`): a driver sleeps this long unless input comes first, and asks again after each step.
pub fn time_to_next_timer<S: Store, E: Env>(
    node: &Node<S, E>,
    now: u64,
    most: Duration,
) -> Duration {
    match node.poll_timeout() {
        Some(due) => Duration::from_nanos(due.saturating_sub(now)).min(most),
        None => most,
    }
}

/// The node's timer wakes its driver at least this often with no input, to ask
/// [`time_to_next_timer`] again...
pub const MOST_SLEEP: Duration = Duration::from_secs(1);

/// ...and at most this often: timer work that stays due (a clock stepped back) must not spin.
pub const LEAST_SLEEP: Duration = Duration::from_millis(5);

/// A node, its network and the clock it is given time from, owned by one task: each step
/// runs, then what it queued is sent and what it told is returned.
pub struct Driver<S: Store, E: Env> {
    node: Node<S, E>,
    clock: Box<dyn Clock>,
    net: Option<NetHandle>,
    /// What the network brings; `None` offline, or once the network task stopped.
    net_events: Option<UnboundedReceiver<NetEvent>>,
}

/// What one [`Driver::step`] did.
pub enum Step<T> {
    /// A network event or the node's timer came first and was handled: the events the node
    /// told, and the network event that was not the node's (peers, reservations).
    Ran {
        events: Vec<NodeEvent>,
        other: Option<NetEvent>,
    },
    /// The owner's own input came first (not yet handled: it is the owner's).
    Input(T),
    /// The network's event stream ended (its task stopped); the node goes on offline.
    NetworkStopped,
}

impl<S: Store, E: Env> Driver<S, E> {
    /// Takes the node, the clock its inputs are timed by, its network's handle and what that
    /// network brings (`tabnode_net::start` gives both; `None` offline), and sends what the
    /// node queued when opened (its subscriptions and requests).
    pub fn new(
        node: Node<S, E>,
        clock: impl Clock + 'static,
        net: Option<NetHandle>,
        net_events: Option<UnboundedReceiver<NetEvent>>,
    ) -> (Self, Vec<NodeEvent>) {
        let mut driver = Self {
            node,
            clock: Box::new(clock),
            net,
            net_events,
        };
        let events = driver.flush();
        (driver, events)
    }

    pub fn node(&self) -> &Node<S, E> {
        &self.node
    }

    pub fn net(&self) -> Option<&NetHandle> {
        self.net.as_ref()
    }

    fn flush(&mut self) -> Vec<NodeEvent> {
        flush(&mut self.node, self.net.as_ref())
    }

    /// What the driver's clock reads now.
    pub fn now(&self) -> u64 {
        self.clock.now_nanos()
    }

    /// Gives the node the time, before an input.
    fn clock_in(&mut self) {
        let now = self.now();
        self.node.advance_to(now);
    }

    /// Runs one operation on the node (a call, a join...) at the clock's time; returns its
    /// result and the events it caused.
    pub async fn run<T>(
        &mut self,
        op: impl AsyncFnOnce(&mut Node<S, E>) -> T,
    ) -> (T, Vec<NodeEvent>) {
        self.clock_in();
        let result = op(&mut self.node).await;
        (result, self.flush())
    }

    /// Handles one network event: see [`deliver`].
    pub async fn on_network(&mut self, event: NetEvent) -> (Option<NetEvent>, Vec<NodeEvent>) {
        let now = self.now();
        let other = deliver(&mut self.node, now, event).await;
        (other, self.flush())
    }

    /// Runs the node's timer work due at `now`: see [`run_timers`].
    pub async fn on_timer(&mut self, now: u64) -> Vec<NodeEvent> {
        run_timers(&mut self.node, now).await;
        self.flush()
    }

    /// See [`time_to_next_timer`].
    pub fn time_to_next_timer(&self, now: u64, most: Duration) -> Duration {
        time_to_next_timer(&self.node, now, most)
    }

    /// Waits for whichever comes first of a network event, the node's timer (`sleep` makes the
    /// wait, between [`LEAST_SLEEP`] and [`MOST_SLEEP`], from [`time_to_next_timer`]) and the
    /// owner's `input`, and handles the first two. Ask again after each step: an input may
    /// make timer work due sooner. `input` is dropped when something else comes first, so it
    /// must lose nothing then (a channel's `next()` does not).
    pub async fn step<T, Sleep: Future<Output = ()>>(
        &mut self,
        sleep: impl FnOnce(Duration) -> Sleep,
        input: impl Future<Output = T>,
    ) -> Step<T> {
        enum Woke<T> {
            Network(Option<NetEvent>),
            Timer,
            Input(T),
        }
        let now = self.now();
        let wait = self.time_to_next_timer(now, MOST_SLEEP).max(LEAST_SLEEP);
        let woke = {
            let network = async {
                match &mut self.net_events {
                    Some(events) => events.next().await,
                    None => std::future::pending().await,
                }
            }
            .fuse();
            let timer = sleep(wait).fuse();
            let input = input.fuse();
            futures::pin_mut!(network, timer, input);
            futures::select! {
                event = network => Woke::Network(event),
                () = timer => Woke::Timer,
                value = input => Woke::Input(value),
            }
        };
        match woke {
            Woke::Input(value) => Step::Input(value),
            Woke::Network(None) => {
                self.net_events = None;
                Step::NetworkStopped
            }
            Woke::Network(Some(event)) => {
                let (other, events) = self.on_network(event).await;
                Step::Ran { events, other }
            }
            Woke::Timer => {
                let now = self.now();
                let events = self.on_timer(now).await;
                Step::Ran {
                    events,
                    other: None,
                }
            }
        }
    }

    /// Gives the node back (the network stops when its last handle and event stream go).
    pub fn into_node(self) -> Node<S, E> {
        self.node
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use futures::executor::block_on;
    use tabnode_runtime::{Limits, Runtime};
    use tabnode_store::MemoryStore;

    use super::*;

    /// A clock the test sets (and the node's randomness).
    #[derive(Clone)]
    pub(crate) struct TestClock(pub(crate) Rc<Cell<u64>>);

    impl Clock for TestClock {
        fn now_nanos(&self) -> u64 {
            self.0.get()
        }
    }

    impl Env for TestClock {
        fn random32(&self) -> [u8; 32] {
            [self.0.get() as u8; 32]
        }
    }

    pub(crate) fn kv_store() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/apps/dist/kv_store.wasm"
        );
        std::fs::read(path).expect("build the apps first: bash tests/apps/build.sh")
    }

    #[test]
    fn timers_run_when_the_node_says_and_steps_return_their_events_and_subscriptions_go_out() {
        let clock = TestClock(Rc::new(Cell::new(1_000_000_000)));
        let node = block_on(Node::open(
            MemoryStore::default(),
            clock.clone(),
            Runtime::new(Limits::default()),
        ))
        .unwrap();
        let (mut driver, events) = Driver::new(node, clock.clone(), None, None);
        assert!(events.is_empty());
        let most = Duration::from_secs(1);
        assert_eq!(driver.time_to_next_timer(clock.0.get(), most), most);

        let (context, _) = block_on(driver.run(async |node| {
            let app = node.install_app(&kv_store()).await?;
            node.create_context(app, serde_json::Value::Null).await
        }));
        let context = context.unwrap();
        // A context announces its heads on a timer: it runs once due, then is due again later.
        let due = driver
            .node()
            .poll_timeout()
            .expect("a context has timer work");
        clock.0.set(due);
        assert!(block_on(run_timers(&mut driver.node, due)));
        let next = driver.node().poll_timeout().expect("announced again later");
        assert!(next > due);
        assert!(!block_on(run_timers(&mut driver.node, next - 1)));
        assert_eq!(
            driver.time_to_next_timer(due, Duration::from_secs(3600)),
            Duration::from_nanos(next - due)
        );
        assert_eq!(
            driver.time_to_next_timer(due, most),
            most.min(Duration::from_nanos(next - due))
        );
        clock.0.set(next);

        let (result, _) = block_on(driver.run(async |node| {
            node.execute(
                &context,
                "set",
                serde_json::json!({"key": "k", "value": "v"}),
            )
            .await
        }));
        assert!(result.unwrap().delta_id.is_some());
        // The node was given the driver's clock before the call: it reads none of its own.
        assert_eq!(driver.node().now(), next);
    }
}
