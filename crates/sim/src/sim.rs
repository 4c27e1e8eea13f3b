//! Members on the simulated network, in virtual time.

use std::rc::Rc;

use futures::executor::block_on;
use tabnode_node::{Clock, Node, ANNOUNCE_NANOS};
use tabnode_runtime::{Limits, Runtime};

use crate::env::{SimEnv, VirtualClock};
use crate::network::{hand, Faults, Network};
use crate::rng::Rng;
use crate::store::{CommitFault, SimStore};

/// A member's node: on its own store, given the simulation's time (see [`clock_in`]).
pub type SimNode = Node<SimStore, SimEnv>;

/// Gives a node the time its edge's clock reads (a member's: the simulation's, with its skew),
/// as a driver does before each input: the simulation does before it hands a member anything,
/// and before a test gets a member's node; tests that drive nodes by hand do too.
pub fn clock_in<S: tabnode_store::Store, E: tabnode_node::Env + Clock>(node: &mut Node<S, E>) {
    let now = node.env().now_nanos();
    node.advance_to(now);
}

/// Virtual time a round takes (see [`Sim::wait`]): a node's timers are meant to be checked
/// about this often.
pub const ROUND_NANOS: u64 = 1_000_000_000;

/// One member: its node, and the store it restarts from.
pub struct Member {
    pub node: SimNode,
    store: SimStore,
    restarts: u32,
}

impl Member {
    pub fn store(&self) -> &SimStore {
        &self.store
    }

    /// How often this member crashed and restarted.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }
}

/// Several members on one [`Network`], one [`VirtualClock`] and one seed.
pub struct Sim {
    /// The workload's choices (the network draws from a stream of its own).
    pub rng: Rng,
    pub net: Network,
    clock: VirtualClock,
    members: Vec<Member>,
    seed: u64,
    /// Run on every node as it opens, restarts included (settings that are not persisted).
    setup: Rc<dyn Fn(&mut SimNode)>,
}

impl Sim {
    pub fn new(seed: u64, faults: Faults) -> Self {
        let mut rng = Rng::new(seed);
        let net = Network::new(rng.split(), faults);
        Self {
            rng,
            net,
            clock: VirtualClock::default(),
            members: Vec::new(),
            seed,
            setup: Rc::new(|_| {}),
        }
    }

    /// Runs `setup` on every node as it opens from now on (restarts included).
    pub fn on_open(&mut self, setup: impl Fn(&mut SimNode) + 'static) {
        self.setup = Rc::new(setup);
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A new member on an empty store; its index.
    pub fn add_member(&mut self) -> usize {
        let index = self.members.len();
        let store = SimStore::default();
        let node = self.open(index, 0, &store);
        self.members.push(Member {
            node,
            store,
            restarts: 0,
        });
        index
    }

    fn open(&self, index: usize, restarts: u32, store: &SimStore) -> SimNode {
        // A fresh process: a randomness stream of its own, the same clock.
        let mut seed = blake3::Hasher::new();
        seed.update(&self.seed.to_le_bytes());
        seed.update(&(index as u64).to_le_bytes());
        seed.update(&restarts.to_le_bytes());
        let env = SimEnv::new(self.clock.clone(), *seed.finalize().as_bytes());
        let runtime = Runtime::new(Limits::default());
        let mut node = block_on(Node::open(store.reopen(), env, runtime))
            .unwrap_or_else(|e| panic!("member {index} does not reopen on its store: {e}"));
        clock_in(&mut node);
        (self.setup)(&mut node);
        node
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn member(&self, index: usize) -> &Member {
        &self.members[index]
    }

    /// Member `index`'s node, given the time first (see [`clock_in`]).
    pub fn node(&mut self, index: usize) -> &mut SimNode {
        let node = &mut self.members[index].node;
        clock_in(node);
        node
    }

    /// Every member's node, in order, each given the time first.
    pub fn nodes(&mut self) -> impl Iterator<Item = &mut SimNode> {
        self.members.iter_mut().map(|m| {
            clock_in(&mut m.node);
            &mut m.node
        })
    }

    pub fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Member `index` crashes and restarts at once from what it persisted: what it had not
    /// yet sent is lost, as is everything it held only in memory.
    pub fn restart(&mut self, index: usize) {
        let restarts = self.members[index].restarts + 1;
        let store = self.members[index].store.reopen();
        let node = self.open(index, restarts, &store);
        let member = &mut self.members[index];
        member.node = node;
        member.store = store;
        member.restarts = restarts;
    }

    /// Member `index`'s process meets `fault` at its `nth` commit from now (1: the next);
    /// the simulation restarts it at the next [`Sim::recover`] after that.
    pub fn crash_at_commit(&mut self, index: usize, nth: u32, fault: CommitFault) {
        self.members[index].store.crash_at_commit(nth, fault);
    }

    /// Takes back every crash armed and not yet struck (before a test's final checks), and
    /// restarts the members it already struck.
    pub fn disarm(&mut self) {
        for member in &self.members {
            member.store.disarm();
        }
        self.recover();
    }

    /// Whether member `index`'s process died at a commit and awaits its restart.
    pub fn crashed(&self, index: usize) -> bool {
        self.members[index].store.crashed()
    }

    /// Restarts every member whose process died at a commit; how many.
    pub fn recover(&mut self) -> usize {
        let dead: Vec<usize> = (0..self.len()).filter(|&i| self.crashed(i)).collect();
        for &i in &dead {
            self.restart(i);
        }
        dead.len()
    }

    /// One round on the network: what every member wants sent goes out, and what is due
    /// arrives (a member that dies handling a message restarts before its next one).
    pub fn step(&mut self) {
        self.recover();
        let members = self.len();
        for (from, member) in self.members.iter_mut().enumerate() {
            for out in member.node.take_outgoing() {
                self.net.send(from, out, members);
            }
        }
        for envelope in self.net.take_due() {
            let node = &mut self.members[envelope.to].node;
            clock_in(node);
            hand(node, &envelope);
            if self.crashed(envelope.to) {
                self.restart(envelope.to);
            }
        }
    }

    /// Moves virtual time forward by `nanos` and runs every member's timers.
    pub fn advance(&mut self, nanos: u64) {
        self.recover();
        self.clock.advance(nanos);
        let now = self.clock.now();
        for member in &mut self.members {
            clock_in(&mut member.node);
            block_on(member.node.handle_timeout(now));
        }
    }

    /// Moves time to when something can next happen: a round on while messages are in flight
    /// or waiting to be sent, else straight to the next announcement of heads (the timer that
    /// repairs what the network lost).
    pub fn wait(&mut self) {
        let busy = self.net.in_flight() > 0;
        self.advance(if busy { ROUND_NANOS } else { ANNOUNCE_NANOS });
    }

    /// Rounds of [`Sim::wait`] and [`Sim::step`] until `done` holds (checked first); how
    /// many it took, or `None` after `max_rounds`.
    pub fn run_until(
        &mut self,
        max_rounds: usize,
        mut done: impl FnMut(&mut Sim) -> bool,
    ) -> Option<usize> {
        for rounds in 0..=max_rounds {
            if done(self) {
                return Some(rounds);
            }
            self.wait();
            self.step();
        }
        None
    }
}

/// Runs a node's timers at the latest time it was given: what a driver does when
/// [`Node::poll_timeout`] comes due, for tests that drive nodes by hand.
pub fn tick<S: tabnode_store::Store, E: tabnode_node::Env>(node: &mut Node<S, E>) {
    let now = node.now();
    block_on(node.handle_timeout(now));
}

/// Runs a node's timers until each of its contexts has announced its heads: at its
/// latest time, then one [`tabnode_node::ANNOUNCE_NANOS`] later (a context loaded since the last
/// round counts the request it made on loading as that round's announcement).
pub fn announce<S: tabnode_store::Store, E: tabnode_node::Env>(node: &mut Node<S, E>) {
    let now = node.now();
    block_on(node.handle_timeout(now));
    block_on(node.handle_timeout(now + tabnode_node::ANNOUNCE_NANOS));
}
