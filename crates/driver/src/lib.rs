//! The node core on the network and its store, for the page and the CLI alike (issue 16's one
//! driver).
//!
//! The node is a [`Core`]: a state machine that does no I/O. [`Driver`] carries out what it
//! asks for and gives it what comes in, in one task that owns it:
//!
//! - a store request ([`Output::Store`]) is carried out on the driver's [`Store`] and
//!   answered; reads asked together go to the store together;
//! - what the node sends goes out on the [`Network`] ([`transmit`]; [`NetHandle`] is the real
//!   one, libp2p in the page and natively);
//! - what the network brings goes to the node, and what is not the node's (peers coming and
//!   going, reservations) back to the driver's owner;
//! - the node's timer work runs when [`Core::poll_timeout`] says.
//!
//! [`Driver::step`] waits for the next input (a network event, the node's timer, or the
//! owner's own) and handles it. The node reads no clock: the driver reads its own [`Clock`]
//! (the page's `Date.now()`, the CLI's `SystemTime`) and gives the time with every input. The
//! CLI's `run` loop steps it with stdin as its own input; the page's node task runs [`own`],
//! which steps it with operations sent through a [`NodeSender`] (see [`owner`]).

mod owner;

pub use owner::{channel, own, Commands, NodeSender};
pub use tabnode_node::machine::CoreNode;

use std::any::Any;
use std::cell::RefMut;
use std::future::{poll_fn, Future};
use std::time::Duration;

use futures::channel::mpsc::UnboundedReceiver;
use futures::future::join_all;
use futures::{FutureExt, StreamExt};
use tabnode_net::{NetEvent, NetHandle};
use tabnode_node::machine::{carry_out, operation, Answer, Core, Input, Output, Request};
use tabnode_node::{Clock, Env, NodeError, NodeEvent, Outgoing};
use tabnode_runtime::Runtime;
use tabnode_store::Store;

/// Where the node's messages go. [`NetHandle`] is the real network (libp2p, in the page and
/// natively); a test gives its own, to see what goes out or to link drivers in one process.
pub trait Network {
    /// Sends one thing the node queued (a publish, a reply, a subscription).
    fn transmit(&self, out: Outgoing) -> Result<(), String>;
}

impl Network for NetHandle {
    fn transmit(&self, out: Outgoing) -> Result<(), String> {
        let sent = match out {
            Outgoing::Subscribe { topic, key } => self.subscribe(&topic, key),
            Outgoing::Publish { topic, data } => self.publish(&topic, data),
            Outgoing::Reply { peer, topic, data } => self.send_to(&peer, &topic, data),
        };
        sent.map_err(|e| e.to_string())
    }
}

/// Carries out on the network what the node asked for, in order. A refusal (the network task
/// stopped) is logged and the rest is still tried: the node repairs lost messages itself
/// (anti-entropy), so a driver need not.
pub fn transmit(net: &impl Network, outgoing: Vec<Outgoing>) {
    for out in outgoing {
        if let Err(e) = net.transmit(out) {
            tracing::warn!("network: {e}");
        }
    }
}

/// The node's timer wakes its driver at least this often with no input, to ask
/// [`Core::poll_timeout`] again...
pub const MOST_SLEEP: Duration = Duration::from_secs(1);

/// ...and at most this often: timer work that stays due (a clock stepped back) must not spin.
pub const LEAST_SLEEP: Duration = Duration::from_millis(5);

/// How long from `now` until `due` (ns since the epoch), at most `most` (with none due,
/// `most`): a driver sleeps this long unless input comes first, and asks again after each step.
pub fn time_until(due: Option<u64>, now: u64, most: Duration) -> Duration {
    match due {
        Some(due) => Duration::from_nanos(due.saturating_sub(now)).min(most),
        None => most,
    }
}

/// What an input to the node ended with, once the driver carried out all it asked for.
struct Settled {
    events: Vec<NodeEvent>,
    /// The result of the owner's operation, if the input was one (none if it panicked).
    done: Option<Box<dyn Any>>,
    /// How opening went, for the core's first input.
    opened: Option<Result<(), NodeError>>,
}

/// A node (its [`Core`]), its store, its network and the clock it is given time from, owned by
/// one task: each step runs an input to its end, then what it queued is sent and what it told
/// is returned.
pub struct Driver<S: Store, E: Env, N: Network = NetHandle> {
    core: Core<E, Box<dyn Any>>,
    store: S,
    clock: Box<dyn Clock>,
    net: Option<N>,
    /// What the network brings; `None` offline, or once the network task stopped.
    net_events: Option<UnboundedReceiver<NetEvent>>,
    /// Until [`Driver::connect`]: what the node queued to send and told since it opened.
    held: Option<(Vec<Outgoing>, Vec<NodeEvent>)>,
    /// An output taken while gathering reads, to handle next.
    lookahead: Option<Output<Box<dyn Any>>>,
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

impl<S: Store, E: Env + 'static, N: Network> Driver<S, E, N> {
    /// Opens the node kept in `store`, its time from `clock`. Not yet on a network: set it up
    /// ([`Driver::node`], [`Driver::run`]), then [`Driver::connect`] it (also to go on offline).
    pub async fn open(
        store: S,
        env: E,
        runtime: Runtime,
        clock: impl Clock + 'static,
    ) -> Result<Self, NodeError> {
        let mut driver = Self {
            core: Core::open(env, runtime),
            store,
            clock: Box::new(clock),
            net: None,
            net_events: None,
            held: Some(Default::default()),
            lookahead: None,
        };
        let opened = driver.drain().await.opened;
        opened.unwrap_or_else(|| Err(NodeError::Stopped("the node did not open".into())))?;
        let now = driver.now();
        if let Some(mut node) = driver.core.node() {
            node.advance_to(now);
        }
        Ok(driver)
    }

    /// Puts the node on `net` (`tabnode_net::start` gives the handle and what the network
    /// brings; `None` offline): what it queued since it opened (its subscriptions and
    /// requests) goes out now, and what it told is returned.
    pub fn connect(
        &mut self,
        net: Option<N>,
        net_events: Option<UnboundedReceiver<NetEvent>>,
    ) -> Vec<NodeEvent> {
        self.net = net;
        self.net_events = net_events;
        let (outgoing, events) = self.held.take().unwrap_or_default();
        if let Some(net) = &self.net {
            transmit(net, outgoing);
        }
        events
    }

    /// The node, between inputs: to read it or set it up.
    pub fn node(&self) -> RefMut<'_, CoreNode<E>> {
        self.core
            .node()
            .expect("the driver runs every input to its end")
    }

    pub fn net(&self) -> Option<&N> {
        self.net.as_ref()
    }

    /// What the driver's clock reads now.
    pub fn now(&self) -> u64 {
        self.clock.now_nanos()
    }

    /// Runs one operation on the node (a call, a join...) at the clock's time; returns its
    /// result and the events it caused. A panic in it (where panics unwind) goes on here.
    pub async fn run<T: 'static>(
        &mut self,
        op: impl AsyncFnOnce(&mut CoreNode<E>) -> T + 'static,
    ) -> (T, Vec<NodeEvent>) {
        let op = operation(move |node| {
            async move { Box::new(op(node).await) as Box<dyn Any> }.boxed_local()
        });
        let at = self.now();
        let settled = self.settle(Input::Run { at, op }).await;
        let done = settled.done.expect("the operation on the node panicked");
        let result = *done.downcast::<T>().expect("an operation's own result");
        (result, settled.events)
    }

    /// Handles one network event: a message goes to the node (at the time it came); any other
    /// event is not the node's and is handed back for the driver's owner to show or keep.
    pub async fn on_network(&mut self, event: NetEvent) -> (Option<NetEvent>, Vec<NodeEvent>) {
        match event {
            NetEvent::Message {
                topic,
                data,
                source,
            } => {
                let at = self.now();
                let input = Input::Message {
                    at,
                    topic,
                    data,
                    source,
                };
                (None, self.settle(input).await.events)
            }
            other => (Some(other), Vec::new()),
        }
    }

    /// Runs the node's timer work due at `now` (ns since the epoch, the driver's clock).
    pub async fn on_timer(&mut self, now: u64) -> Vec<NodeEvent> {
        self.settle(Input::Timeout { at: now }).await.events
    }

    /// When the node's timer work is next due (ns since the epoch).
    pub fn poll_timeout(&self) -> Option<u64> {
        self.core.poll_timeout()
    }

    /// See [`time_until`].
    pub fn time_to_next_timer(&self, now: u64, most: Duration) -> Duration {
        time_until(self.poll_timeout(), now, most)
    }

    /// Gives the node `input` and carries out what it asks until it has ended (see
    /// [`Driver::drain`]).
    async fn settle(&mut self, input: Input<E, Box<dyn Any>>) -> Settled {
        self.core.handle_input(input);
        self.drain().await
    }

    /// Carries out what the core asks until no input is in flight: then what it queued is sent
    /// (held, before [`Driver::connect`]), and what it told is returned.
    async fn drain(&mut self) -> Settled {
        let mut outgoing = Vec::new();
        let mut settled = Settled {
            events: Vec::new(),
            done: None,
            opened: None,
        };
        while let Some(output) = self.next_output().await {
            match output {
                Output::Transmit(out) => outgoing.push(out),
                Output::Event(event) => settled.events.push(event),
                Output::Done(result) => settled.done = Some(result),
                Output::Opened(result) => settled.opened = Some(result),
                Output::Panicked => {
                    tracing::error!("an operation on the node panicked; the next one runs");
                }
                Output::Store { id, request } => self.store(id, request).await,
            }
        }
        match &mut self.held {
            Some((held_out, held_events)) => {
                held_out.append(&mut outgoing);
                held_events.append(&mut settled.events);
            }
            None => {
                if let Some(net) = &self.net {
                    transmit(net, outgoing);
                }
            }
        }
        settled
    }

    /// The core's next output; with none while an input is in flight, waits for that input's
    /// own future (an owner's operation may await something of its own). `None` once idle.
    async fn next_output(&mut self) -> Option<Output<Box<dyn Any>>> {
        loop {
            if let Some(output) = self.lookahead.take().or_else(|| self.core.poll_output()) {
                return Some(output);
            }
            if !self.core.is_busy() {
                return None;
            }
            poll_fn(|cx| self.core.poll(cx)).await;
        }
    }

    /// Carries out a store request and gives the node its answer. Reads asked together (the
    /// rows a call missed) go to the store together; a write waits for its batch to be
    /// durable, and a batch in parts gets its rest from the node once its first part began.
    async fn store(&mut self, id: u64, request: Request) {
        if matches!(request, Request::Commit(_) | Request::CommitParts { .. }) {
            let Self { core, store, .. } = self;
            let answer = carry_out(&*store, request, || {
                core.handle_input(Input::Stored {
                    id,
                    answer: Answer::Began,
                });
                core.take_rest(id)
            })
            .await;
            core.handle_input(Input::Stored { id, answer });
            return;
        }
        let mut reads = vec![(id, request)];
        while let Some(next) = self.core.poll_output() {
            match next {
                Output::Store { id, request }
                    if !matches!(request, Request::Commit(_) | Request::CommitParts { .. }) =>
                {
                    reads.push((id, request))
                }
                other => {
                    self.lookahead = Some(other);
                    break;
                }
            }
        }
        let store = &self.store;
        let answers = join_all(reads.into_iter().map(|(id, request)| async move {
            (
                id,
                carry_out(store, request, || unreachable!("a read")).await,
            )
        }))
        .await;
        for (id, answer) in answers {
            self.core.handle_input(Input::Stored { id, answer });
        }
    }

    /// Waits for whichever comes first of a network event, the node's timer (`sleep` makes the
    /// wait, between [`LEAST_SLEEP`] and [`MOST_SLEEP`], from [`Driver::time_to_next_timer`])
    /// and the owner's `input`, and handles the first two. Ask again after each step: an input
    /// may make timer work due sooner. `input` is dropped when something else comes first, so
    /// it must lose nothing then (a channel's `next()` does not).
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
    fn timers_run_when_the_node_says_and_the_node_is_given_the_drivers_time() {
        let clock = TestClock(Rc::new(Cell::new(1_000_000_000)));
        let mut driver: Driver<_, _> = block_on(Driver::open(
            MemoryStore::default(),
            clock.clone(),
            Runtime::new(Limits::default()),
            clock.clone(),
        ))
        .unwrap();
        assert!(driver.connect(None, None).is_empty());
        let most = Duration::from_secs(1);
        assert_eq!(driver.time_to_next_timer(clock.0.get(), most), most);

        let (context, _) = block_on(driver.run(async |node| {
            let app = node.install_app(&kv_store()).await?;
            node.create_context(app, serde_json::Value::Null).await
        }));
        let context = context.unwrap();
        // A context announces its heads on a timer: it runs once due, then is due again later.
        let due = driver.poll_timeout().expect("a context has timer work");
        clock.0.set(due);
        block_on(driver.on_timer(due));
        let next = driver.poll_timeout().expect("announced again later");
        assert!(next > due);
        block_on(driver.on_timer(next - 1));
        assert_eq!(driver.poll_timeout(), Some(next), "not due: nothing ran");
        assert_eq!(
            driver.time_to_next_timer(due, Duration::from_secs(3600)),
            Duration::from_nanos(next - due)
        );
        assert_eq!(
            driver.time_to_next_timer(due, most),
            most.min(Duration::from_nanos(next - due))
        );
        clock.0.set(next);

        let (result, _) = block_on(driver.run(async move |node| {
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
