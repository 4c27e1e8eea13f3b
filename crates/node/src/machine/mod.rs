//! The node as a state machine with no I/O and no executor: [`Core`].
//!
//! In the style of `quinn-proto`'s `Connection` and `str0m`'s `Rtc`: a driver gives the core its
//! inputs with [`Core::handle_input`] (an operation of its owner, a message from a peer, a
//! timeout, the store's answer to a request), takes what the core wants done with
//! [`Core::poll_output`] (a store request, bytes to transmit, an event, an operation's result),
//! and sleeps until [`Core::poll_timeout`]. Time comes in with every input; the core reads no
//! clock, touches no store and no network, and needs no async runtime: a test drives it with
//! plain calls (see `tests` below).
//!
//! The node's logic is written as `async` methods over the [`tabnode_store::Store`] trait. Inside
//! the core its store is [`Io`], which turns each store operation into a [`Request`] output and
//! waits for the matching [`Answer`] input; the core polls the operation in flight whenever an
//! answer comes in. So the resume points of every flow are the compiler's state machine, not a
//! hand-written enum per flow (see docs/design.md, "The core's store is requests and answers").
//!
//! One input runs at a time, in the order given: an input that comes while another waits for
//! the store waits its turn. What an input queued to send, and what it told, come out when it
//! ends, before its result (so an owner that shows events first has shown them when its caller
//! hears back); nothing it sends goes out before the writes it follows are durable, since the
//! node queues a message only after its commit was answered.

mod io;

pub use io::{carry_out, Answer, Io, Request};

use std::cell::{RefCell, RefMut};
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures::future::LocalBoxFuture;
use futures::FutureExt;
use tabnode_runtime::Runtime;
use tabnode_store::{Batch, StoreError};

use crate::{Env, Node, NodeError, NodeEvent, Outgoing};

/// The node inside a core: its store is requests and answers.
pub type CoreNode<E> = Node<Io, E>;

/// An operation of the core's owner: anything it does with the node (a call, a join, a read),
/// giving back `A`.
pub type Operation<E, A> = Box<dyn for<'n> FnOnce(&'n mut CoreNode<E>) -> LocalBoxFuture<'n, A>>;

/// Boxes an operation (a function, so that its closure gets the higher-ranked signature).
pub fn operation<E: Env, A, F>(run: F) -> Operation<E, A>
where
    F: for<'n> FnOnce(&'n mut CoreNode<E>) -> LocalBoxFuture<'n, A> + 'static,
{
    Box::new(run)
}

/// What a driver gives the core. `at` is the driver's clock when the input came (ns since the
/// epoch); the node's time never goes back.
pub enum Input<E: Env, A> {
    /// An operation of the owner.
    Run { at: u64, op: Operation<E, A> },
    /// A message from the network: on `topic`, from `source` (a peer id) when known.
    Message {
        at: u64,
        topic: String,
        data: Vec<u8>,
        source: Option<String>,
    },
    /// The time, when [`Core::poll_timeout`] said it would be due (early is harmless).
    Timeout { at: u64 },
    /// The store's answer to the request `id` ([`Output::Store`]).
    Stored { id: u64, answer: Answer },
}

/// What the core wants done, in order.
pub enum Output<A> {
    /// Carry out `request` on the store, and give back its answer as [`Input::Stored`].
    Store { id: u64, request: Request },
    /// Send on the network (a topic or a peer).
    Transmit(Outgoing),
    /// Tell the node's subscribers.
    Event(NodeEvent),
    /// An operation's result.
    Done(A),
    /// The node opened (or failed to: the core then does nothing more).
    Opened(Result<(), NodeError>),
    /// An operation panicked (where panics unwind): its result will not come, and the node may
    /// be half-way through it.
    Panicked,
}

/// How an input in flight ends.
enum Ended<A> {
    Done(A),
    Nothing,
    Opened(Result<(), NodeError>),
}

/// The node, driven by inputs and outputs: see the module's doc.
pub struct Core<E: Env, A> {
    /// `None` until opened.
    node: Rc<RefCell<Option<CoreNode<E>>>>,
    io: Io,
    running: Option<LocalBoxFuture<'static, Ended<A>>>,
    waiting: VecDeque<Input<E, A>>,
    outputs: VecDeque<Output<A>>,
    failed: bool,
}

impl<E: Env + 'static, A: 'static> Core<E, A> {
    /// A core that opens its node first (reading the store through its outputs): the other
    /// inputs given meanwhile wait until it is open; [`Output::Opened`] says how it went.
    pub fn open(env: E, runtime: Runtime) -> Self {
        let io = Io::default();
        let node = Rc::new(RefCell::new(None));
        let opening = {
            let (io, node) = (io.clone(), node.clone());
            async move {
                match Node::open(io, env, runtime).await {
                    Ok(opened) => {
                        *node.borrow_mut() = Some(opened);
                        Ended::Opened(Ok(()))
                    }
                    Err(e) => Ended::Opened(Err(e)),
                }
            }
            .boxed_local()
        };
        let mut core = Self {
            node,
            io,
            running: Some(opening),
            waiting: VecDeque::new(),
            outputs: VecDeque::new(),
            failed: false,
        };
        core.poll_with(Waker::noop());
        core
    }

    /// Takes an input: runs it at once if nothing is in flight, else after what is.
    pub fn handle_input(&mut self, input: Input<E, A>) {
        match input {
            Input::Stored { id, answer } => {
                let answered = self.io.exchange.borrow_mut().answer(id, answer);
                match answered {
                    Ok(waiting) => waiting.into_iter().for_each(Waker::wake),
                    Err(()) => {
                        tracing::warn!("the store answered request {id}, which is not open");
                        return;
                    }
                }
            }
            other => self.waiting.push_back(other),
        }
        self.poll_with(Waker::noop());
    }

    /// The next thing to do, if any. With none, the core waits for an input: the store's
    /// answer if [`Core::is_busy`], else the owner's, the network's or [`Core::poll_timeout`].
    pub fn poll_output(&mut self) -> Option<Output<A>> {
        self.outputs.pop_front()
    }

    /// Whether an input is in flight (waiting for the store, or for something of its own:
    /// see [`Core::poll`]).
    pub fn is_busy(&self) -> bool {
        self.running.is_some() || !self.waiting.is_empty()
    }

    /// When the node's timer work is next due (ns since the epoch): give [`Input::Timeout`]
    /// then. `None` while busy (ask again after) or with nothing to do.
    pub fn poll_timeout(&self) -> Option<u64> {
        let node = self.node.try_borrow().ok()?;
        node.as_ref()?.poll_timeout()
    }

    /// The node, between inputs (to read it, or set it up). `None` while busy or not open.
    pub fn node(&self) -> Option<RefMut<'_, CoreNode<E>>> {
        if self.is_busy() {
            return None;
        }
        RefMut::filter_map(self.node.try_borrow_mut().ok()?, Option::as_mut).ok()
    }

    /// The rest of a batch whose first part began ([`Request::CommitParts`]), once the core was
    /// told [`Answer::Began`]: a driver's store writes it in the same transaction.
    pub fn take_rest(&mut self, id: u64) -> Result<Batch, StoreError> {
        let rest = self.io.exchange.borrow_mut().take_rest(id);
        rest.unwrap_or_else(|| Err(StoreError::Backend(format!("no rest for request {id}"))))
    }

    /// Polls the input in flight with a driver's own `cx`, for the rare operation of an owner
    /// that waits on something other than the store (its own future): `Ready` once no input is
    /// in flight.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_with(cx.waker());
        if self.is_busy() && self.outputs.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }

    /// Runs inputs until one waits (for the store or its own future) or none is left.
    fn poll_with(&mut self, waker: &Waker) {
        let mut cx = Context::from_waker(waker);
        loop {
            if self.running.is_none() {
                match self.waiting.pop_front() {
                    Some(input) if !self.failed => self.start(input),
                    Some(_) => continue,
                    None => return,
                }
            }
            let running = self.running.as_mut().expect("an input in flight");
            match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(running).poll(&mut cx))) {
                Ok(Poll::Pending) => {
                    let mut exchange = self.io.exchange.borrow_mut();
                    while let Some((id, request)) = exchange.asked.pop_front() {
                        exchange.open.push(id);
                        self.outputs.push_back(Output::Store { id, request });
                    }
                    return;
                }
                Ok(Poll::Ready(ended)) => {
                    self.running = None;
                    self.end(ended);
                }
                Err(_) => {
                    tracing::error!("an input to the node panicked; the next one runs");
                    self.running = None;
                    self.io.exchange.borrow_mut().clear();
                    self.outputs.push_back(Output::Panicked);
                }
            }
        }
    }

    fn start(&mut self, input: Input<E, A>) {
        let node = self.node.clone();
        // The node stays borrowed across the input's awaits: one input runs at a time, and
        // `Core::node` lends it only when none is in flight.
        #[allow(clippy::await_holding_refcell_ref)]
        let run = async move {
            let mut guard = node.borrow_mut();
            let node = guard.as_mut().expect("inputs wait until the node is open");
            match input {
                Input::Run { at, op } => {
                    node.advance_to(at);
                    Ended::Done(op(node).await)
                }
                Input::Message {
                    at,
                    topic,
                    data,
                    source,
                } => {
                    node.advance_to(at);
                    node.handle_message_from(&topic, &data, source.as_deref())
                        .await;
                    Ended::Nothing
                }
                Input::Timeout { at } => {
                    if node.poll_timeout().is_some_and(|due| due <= at) {
                        node.handle_timeout(at).await;
                    } else {
                        node.advance_to(at);
                    }
                    Ended::Nothing
                }
                Input::Stored { .. } => unreachable!("answers do not wait"),
            }
        };
        self.running = Some(run.boxed_local());
    }

    /// What follows an input: what it queued to send, what it told, then its result.
    fn end(&mut self, ended: Ended<A>) {
        if let Ended::Opened(Err(_)) = &ended {
            self.failed = true;
        }
        if let Some(node) = self.node.borrow_mut().as_mut() {
            let outgoing = node.take_outgoing().into_iter().map(Output::Transmit);
            self.outputs.extend(outgoing);
            let events = node.take_events().into_iter().map(Output::Event);
            self.outputs.extend(events);
        }
        match ended {
            Ended::Done(result) => self.outputs.push_back(Output::Done(result)),
            Ended::Opened(result) => self.outputs.push_back(Output::Opened(result)),
            Ended::Nothing => {}
        }
    }
}

#[cfg(test)]
mod tests;
