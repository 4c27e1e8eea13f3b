//! One task owns the node; everyone else sends it operations.
//!
//! The page has many callers (each `BrowserNode` method, the sign-in flows, the anchor
//! refresh) and one node. Rather than each locking the node, they send what they want done
//! through a [`NodeSender`]: a closure that gets `&mut Node` and answers through a oneshot.
//! [`own`] is the task that holds the node: it takes those operations in the order they were
//! sent, network events and the node's timer in between ([`Driver::step`]), and after each
//! sends what the node queued and shows what it told (before the operation's caller hears
//! back, so a caller that sees its answer has been told its events).
//!
//! An operation runs to its end once taken, even if its caller stops waiting (a dropped
//! future, a page that went on): the node is never left half-way through one. One that panics
//! (where panics unwind: natively; in the page a panic aborts the module, and `tabnode-web`
//! fails every call `Crashed` from then on) answers its caller
//! with [`NodeError::Stopped`] and the next runs.

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::rc::{Rc, Weak};
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt};
use tabnode_net::NetEvent;
use tabnode_node::machine::{self, CoreNode, Input};
use tabnode_node::{Env, NodeError, NodeEvent};
use tabnode_store::Store;

use crate::{Driver, Network, Step};

/// Given once the operation's events are shown: answers its caller.
type Answer = Box<dyn FnOnce()>;

/// One operation on the node, with its caller's answer inside (as `Box<dyn Any>`, the type
/// of every operation's result in the driver).
type Operation<E> = machine::Operation<E, Box<dyn Any>>;

/// How callers reach a node that [`own`] holds. Clones reach the same node; when the last is
/// dropped, the owner stops and gives the node back.
pub struct NodeSender<E: Env> {
    operations: mpsc::UnboundedSender<Operation<E>>,
    /// The replies of operations sent and not yet answered, for [`NodeSender::abandon`].
    unanswered: Rc<RefCell<Vec<Weak<ReplySlot>>>>,
    /// Why the node answers nothing more, once given up on: what every call gets from then on.
    gone: Rc<RefCell<Option<Gone>>>,
}

/// Makes the error that calls get once a node is given up on ([`NodeSender::abandon`]).
pub type Gone = Box<dyn Fn() -> NodeError>;

impl<E: Env> Clone for NodeSender<E> {
    fn clone(&self) -> Self {
        Self {
            operations: self.operations.clone(),
            unanswered: self.unanswered.clone(),
            gone: self.gone.clone(),
        }
    }
}

/// Where an operation's result goes, until it is given or given up on (its caller then gets
/// [`NodeError::Stopped`]). The result travels as `Box<dyn Any>` so that all of this is one
/// piece of code, not one per result type: each is a method of the page's `BrowserNode`.
type ReplySlot = RefCell<Option<oneshot::Sender<Box<dyn Any>>>>;

/// Gives `result` to the caller waiting on `slot`, if it still is. (This and the two below
/// are not inlined: every method of the page's `BrowserNode` is a call of [`NodeSender::run`].)
#[inline(never)]
fn give(slot: &ReplySlot, result: Box<dyn Any>) {
    if let Some(reply) = slot.borrow_mut().take() {
        let _ = reply.send(result);
    }
}

/// The owner's end of a [`NodeSender`]: the operations, in the order they were sent.
pub struct Commands<E: Env> {
    operations: mpsc::UnboundedReceiver<Operation<E>>,
}

/// A sender and the owner's end of it.
pub fn channel<E: Env>() -> (NodeSender<E>, Commands<E>) {
    let (operations, receiver) = mpsc::unbounded();
    (
        NodeSender {
            operations,
            unanswered: Rc::default(),
            gone: Rc::default(),
        },
        Commands {
            operations: receiver,
        },
    )
}

impl<E: Env + 'static> NodeSender<E> {
    /// Runs `op` on the node, after every operation sent before it, and resolves to its result
    /// once what it caused is sent and shown. [`NodeError::Stopped`] if it got no answer (it
    /// panicked, or the owner is gone).
    pub async fn run<T: 'static>(
        &self,
        op: impl AsyncFnOnce(&mut CoreNode<E>) -> Result<T, NodeError> + 'static,
    ) -> Result<T, NodeError> {
        let (reply, answer) = self.reply();
        let op = machine::operation(move |node: &mut CoreNode<E>| {
            async move {
                let result = op(node).await;
                // The caller may have stopped waiting: what it asked for is done all the same.
                let answer: Answer = Box::new(move || give(&reply, Box::new(result)));
                Box::new(answer) as Box<dyn Any>
            }
            .boxed_local()
        });
        self.send(op)?;
        let answer = answer.await.ok();
        match answer.and_then(|a| a.downcast::<Result<T, NodeError>>().ok()) {
            Some(result) => *result,
            None => Err(self.no_answer()),
        }
    }

    /// A slot for an operation's reply, kept for [`NodeSender::abandon`] (and those answered
    /// since let go of), and the caller's end of it.
    #[inline(never)]
    fn reply(&self) -> (Rc<ReplySlot>, oneshot::Receiver<Box<dyn Any>>) {
        let (reply, answer) = oneshot::channel();
        let slot = Rc::new(RefCell::new(Some(reply)));
        let mut unanswered = self.unanswered.borrow_mut();
        unanswered.retain(|r| r.strong_count() > 0);
        unanswered.push(Rc::downgrade(&slot));
        (slot, answer)
    }

    #[inline(never)]
    fn send(&self, op: Operation<E>) -> Result<(), NodeError> {
        if let Some(gone) = &*self.gone.borrow() {
            return Err(gone());
        }
        self.operations
            .unbounded_send(op)
            .map_err(|_| NodeError::Stopped("the node was closed".into()))
    }

    /// What a caller whose operation got no answer is told.
    #[inline(never)]
    fn no_answer(&self) -> NodeError {
        match &*self.gone.borrow() {
            Some(gone) => gone(),
            None => NodeError::Stopped(
                "the operation panicked (see the log), or the node's task ended".into(),
            ),
        }
    }

    /// Gives up on the node: every operation sent and not yet answered, and every one sent
    /// from now on, fails with the error `why` makes. For an owner that can answer nothing
    /// more: in a page, where a panic cannot unwind, it ends the task that owns the node where
    /// it stood, with every reply inside it (see `tabnode-web`'s `crash`).
    pub fn abandon(&self, why: Gone) {
        *self.gone.borrow_mut() = Some(why);
        let unanswered = std::mem::take(&mut *self.unanswered.borrow_mut());
        for slot in unanswered.iter().filter_map(Weak::upgrade) {
            if let Ok(mut reply) = slot.try_borrow_mut() {
                reply.take();
            }
        }
    }
}

impl<S: Store, E: Env + 'static, N: Network> Driver<S, E, N> {
    /// Runs one operation to its end; returns its answer (to give once its events are shown)
    /// and the events. A panic (where panics unwind) is caught by the core: the caller's
    /// answer is dropped with it, which tells the caller.
    async fn serve(&mut self, op: Operation<E>) -> (Answer, Vec<NodeEvent>) {
        let at = self.now();
        let settled = self.settle(Input::Run { at, op }).await;
        let answer = settled
            .done
            .and_then(|done| done.downcast::<Answer>().ok())
            .map_or_else(|| Box::new(|| ()) as Answer, |answer| *answer);
        (answer, settled.events)
    }
}

/// The task that owns the node, for as long as any [`NodeSender`] to it is held: runs the
/// operations sent, in order, and the network's events and the node's timer in between
/// ([`Driver::step`], `sleep` making its waits). `show` gets what each step caused (the node's
/// events, and a network event not the node's) before the operation's caller is answered.
/// Gives the driver back when the last sender is gone.
pub async fn own<S: Store, E: Env + 'static, N: Network, Sleep: Future<Output = ()>>(
    mut driver: Driver<S, E, N>,
    mut commands: Commands<E>,
    sleep: impl Fn(Duration) -> Sleep,
    mut show: impl FnMut(Vec<NodeEvent>, Option<NetEvent>),
) -> Driver<S, E, N> {
    loop {
        match driver.step(&sleep, commands.operations.next()).await {
            Step::Input(Some(op)) => {
                let (answer, events) = driver.serve(op).await;
                show(events, None);
                answer();
            }
            Step::Input(None) => return driver,
            Step::Ran { events, other } => show(events, other),
            Step::NetworkStopped => {
                tracing::warn!("the network task stopped: the node goes on offline");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::task::{Context, Poll};

    use futures::executor::LocalPool;
    use futures::task::{noop_waker, LocalSpawnExt};
    use serde_json::json;
    use tabnode_net::Via;
    use tabnode_runtime::{Limits, Runtime};
    use tabnode_store::MemoryStore;
    use tabnode_types::ContextId;

    use super::*;
    use crate::tests::{kv_store, TestClock};

    type Sender = NodeSender<TestClock>;

    /// What the owner showed, in order: each guest event's key, and each peer that connected.
    type Shown = Rc<RefCell<Vec<String>>>;

    /// The owner as the page runs it, on `pool`: a node with a kv-store context, a network
    /// whose events the test sends, and a timer that fires as soon as other tasks had their
    /// turn, the clock moving on by the wait (the node's own timer work runs between
    /// operations).
    struct Owned {
        sender: Sender,
        context: ContextId,
        network: mpsc::UnboundedSender<NetEvent>,
        shown: Shown,
        node_back: Rc<RefCell<Option<Driver<MemoryStore, TestClock>>>>,
    }

    fn owned(pool: &mut LocalPool) -> Owned {
        let clock = TestClock(Rc::new(Cell::new(1_000_000_000)));
        let runtime = Runtime::new(Limits::default());
        let open = Driver::open(
            MemoryStore::default(),
            clock.clone(),
            runtime,
            clock.clone(),
        );
        let mut driver: Driver<_, _> = pool.run_until(open).unwrap();
        let (network, net_events) = mpsc::unbounded();
        driver.connect(None, Some(net_events));
        let (sender, commands) = channel();
        let shown = Shown::default();
        let node_back = Rc::new(RefCell::new(None));
        let show = {
            let shown = shown.clone();
            move |events: Vec<NodeEvent>, other: Option<NetEvent>| {
                let mut shown = shown.borrow_mut();
                for event in events {
                    if let NodeEvent::Event { data, .. } = event {
                        shown.push(data["key"].as_str().unwrap_or_default().to_owned());
                    }
                }
                if let Some(NetEvent::Connected { peer, .. }) = other {
                    shown.push(peer);
                }
            }
        };
        let sleep = move |wait: Duration| {
            let clock = clock.clone();
            async move {
                yield_once().await;
                clock.0.set(clock.0.get() + wait.as_nanos() as u64);
            }
        };
        let back = node_back.clone();
        let task = async move {
            *back.borrow_mut() = Some(own(driver, commands, sleep, show).await);
        };
        pool.spawner().spawn_local(task).unwrap();
        let create = sender.run(async |node| {
            let app = node.install_app(&kv_store()).await?;
            node.create_context(app, serde_json::Value::Null).await
        });
        let context = pool.run_until(create).unwrap();
        Owned {
            sender,
            context,
            network,
            shown,
            node_back,
        }
    }

    fn set(
        sender: &Sender,
        context: ContextId,
        key: String,
    ) -> impl Future<Output = Result<(), NodeError>> {
        let sender = sender.clone();
        async move {
            let args = json!({"key": key, "value": "v"});
            sender
                .run(async move |node| node.execute(&context, "set", args).await.map(|_| ()))
                .await
        }
    }

    fn get(sender: &Sender, context: ContextId, key: &str) -> impl Future<Output = Option<String>> {
        let sender = sender.clone();
        let args = json!({"key": key});
        async move {
            let result = sender
                .run(async move |node| node.execute(&context, "get", args).await)
                .await
                .unwrap();
            result.output.as_str().map(str::to_owned)
        }
    }

    /// Returns `Pending` once (waking itself): an operation that waits for something midway.
    async fn yield_once() {
        let mut yielded = false;
        std::future::poll_fn(|cx: &mut Context| {
            if yielded {
                return Poll::Ready(());
            }
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await
    }

    #[test]
    fn operations_run_one_at_a_time_in_the_order_sent_and_each_is_answered_after_its_events() {
        let mut pool = LocalPool::new();
        let owned = owned(&mut pool);
        let (sender, context) = (owned.sender.clone(), owned.context);
        let sent = Rc::new(RefCell::new(Vec::new()));
        let answered = Rc::new(Cell::new(0));
        let busy = Rc::new(Cell::new(false));
        for i in 0..40 {
            let (sender, sent, answered, busy) =
                (sender.clone(), sent.clone(), answered.clone(), busy.clone());
            let shown = owned.shown.clone();
            let network = owned.network.clone();
            pool.spawner()
                .spawn_local(async move {
                    let key = format!("k{i:02}");
                    // Sent as soon as the caller runs: the order in `sent` is the order taken.
                    sent.borrow_mut().push(key.clone());
                    let args = json!({"key": key, "value": "v"});
                    let set = sender.run(async move |node| {
                        assert!(!busy.replace(true), "two operations at once");
                        yield_once().await;
                        let result = node.execute(&context, "set", args).await;
                        busy.set(false);
                        result
                    });
                    // Reads, and a peer coming, between the writes.
                    let read = sender.run(async move |node| node.members(&context));
                    let peer = format!("peer{i:02}");
                    let via = Via::Websocket;
                    network
                        .unbounded_send(NetEvent::Connected { peer, via })
                        .unwrap();
                    let (set, read) = futures::join!(set, read);
                    set.unwrap();
                    assert_eq!(read.unwrap().len(), 1);
                    assert!(
                        shown.borrow().contains(&key),
                        "answered before its event was shown"
                    );
                    answered.set(answered.get() + 1);
                })
                .unwrap();
        }
        pool.run_until(async {
            while answered.get() < 40 {
                yield_once().await;
            }
        });
        let shown = owned.shown.borrow();
        let keys: Vec<&String> = shown.iter().filter(|s| s.starts_with('k')).collect();
        assert_eq!(keys, sent.borrow().iter().collect::<Vec<_>>());
        assert_eq!(shown.iter().filter(|s| s.starts_with("peer")).count(), 40);
    }

    #[test]
    fn a_caller_that_stops_waiting_does_not_cancel_its_operation_and_the_next_runs() {
        let mut pool = LocalPool::new();
        let owned = owned(&mut pool);
        let context = owned.context;
        let (open, gate) = oneshot::channel::<()>();
        let started = Rc::new(Cell::new(false));
        let args = json!({"key": "left", "value": "v"});
        let mut caller = {
            let started = started.clone();
            owned.sender.run(async move |node| {
                started.set(true);
                gate.await.unwrap();
                node.execute(&context, "set", args).await
            })
        }
        .boxed_local();
        // The caller sends its operation and waits; the owner starts it; the caller goes.
        let waker = noop_waker();
        assert!(caller
            .poll_unpin(&mut Context::from_waker(&waker))
            .is_pending());
        pool.run_until_stalled();
        assert!(started.get());
        drop(caller);
        open.send(()).unwrap();

        // What it asked for is done, its event shown; the node takes the next operation.
        let value = pool.run_until(get(&owned.sender, context, "left"));
        assert_eq!(value.as_deref(), Some("v"));
        assert_eq!(owned.shown.borrow().as_slice(), ["left"]);
    }

    #[test]
    fn an_operation_that_panics_answers_stopped_and_the_node_goes_on() {
        let mut pool = LocalPool::new();
        let owned = owned(&mut pool);
        let context = owned.context;
        let panics = owned.sender.run(async |_node| -> Result<(), NodeError> {
            panic!("an operation's bug");
        });
        let err = pool.run_until(panics).unwrap_err();
        assert_eq!(err.kind(), "Stopped");
        pool.run_until(set(&owned.sender, context, "after".into()))
            .unwrap();
        let value = pool.run_until(get(&owned.sender, context, "after"));
        assert_eq!(value.as_deref(), Some("v"));
    }

    /// What the page does when a panic ends the task that owns the node where it stood (wasm32
    /// cannot unwind): the operation in it and those queued behind it would wait forever.
    #[test]
    fn abandon_fails_every_operation_in_flight_queued_and_later_with_its_error() {
        let mut pool = LocalPool::new();
        let owned = owned(&mut pool);
        let context = owned.context;
        // Stands for the dead task: an operation that never ends, holding the node.
        let stuck = owned.sender.run(async |_node| -> Result<(), NodeError> {
            futures::future::pending::<()>().await;
            Ok(())
        });
        let queued = set(&owned.sender, context, "queued".into());
        let both = futures::future::join(stuck, queued);
        let mut both = std::pin::pin!(both);
        // Both wait: the first holds the node, the second is behind it. (Not
        // `run_until_stalled`: an idle owner's timer, on this test clock, never stalls.)
        pool.run_until(async {
            for _ in 0..50 {
                assert!(futures::poll!(both.as_mut()).is_pending());
                yield_once().await;
            }
        });
        owned
            .sender
            .abandon(Box::new(|| NodeError::Crashed("the task is gone".into())));
        let (stuck, queued) = pool.run_until(both);
        assert_eq!(stuck.unwrap_err().kind(), "Crashed");
        assert_eq!(queued.unwrap_err().kind(), "Crashed");
        // And every operation after, at once (the owner is not asked: it holds the node still).
        let later = owned.sender.run(async |_node| Ok(()));
        assert_eq!(pool.run_until(later).unwrap_err().kind(), "Crashed");
    }

    #[test]
    fn the_owner_gives_the_driver_back_when_the_last_sender_is_gone() {
        let mut pool = LocalPool::new();
        let Owned {
            sender,
            context,
            node_back,
            ..
        } = owned(&mut pool);
        let second = sender.clone();
        drop(sender);
        pool.run_until(set(&second, context, "k".into())).unwrap();
        assert!(node_back.borrow().is_none());
        drop(second);
        pool.run_until(async {
            while node_back.borrow().is_none() {
                yield_once().await;
            }
        });
        let driver = node_back.borrow_mut().take().unwrap();
        assert_eq!(driver.node().context_ids(), vec![context]);
    }
}
