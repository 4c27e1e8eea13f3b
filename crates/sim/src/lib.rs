//! A simulated network for tabnode nodes: seeded, in virtual time, and reusable by any test.
//!
//! A [`Sim`] owns several members, each a real [`tabnode_node::Node`] on its own memory store,
//! and carries what they send through a [`Network`] that loses, duplicates, reorders and delays
//! messages (past a round, too), cuts members apart and heals them, and delivers an
//! [`tabnode_node::Outgoing::Reply`] to the member it is addressed to alone. Members crash and
//! restart from what they persisted; a [`SimStore`] can also fail a chosen commit (the batch is
//! lost) or crash right after one (the batch is kept, what the node meant to send is not).
//!
//! Time is the simulation's: one [`VirtualClock`], which the simulation reads (through each
//! member's [`SimEnv`], with its skew) and hands the member's node before every input
//! ([`clock_in`]); nodes read no clock. Time moves only when the simulation advances it
//! ([`Sim::advance`], [`Sim::wait`]), and each advance runs every member's timers
//! ([`tabnode_node::Node::handle_timeout`], time given). Every choice the network
//! and the workload make comes from one seed ([`Rng`]), so a failing seed replays exactly.
//!
//! [`settle`] is the fault-free special case, for tests that drive nodes by hand: everyone hears
//! everyone until nobody has anything to say.

mod env;
mod network;
mod rng;
mod sim;
mod store;

pub use env::{SimEnv, VirtualClock, EPOCH_NANOS};
pub use network::{peer_id, peer_index, settle, Envelope, Faults, Network};
pub use rng::Rng;
pub use sim::{announce, clock_in, tick, Member, Sim, SimNode, ROUND_NANOS};
pub use store::{fork, CommitFault, SimStore};

/// A guest app from `tests/apps/dist` (built by `bash tests/apps/build.sh`), for the tests of
/// every crate that runs nodes.
pub fn guest(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/apps/dist/{name}.wasm",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!("{path}: {e}; build the guest apps with `bash tests/apps/build.sh`")
    })
}
