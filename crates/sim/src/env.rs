//! Virtual time: one clock the simulation owns, read by every member.

use std::cell::Cell;
use std::rc::Rc;

use tabnode_node::{Clock, Env};

/// Where virtual time starts (ns since the Unix epoch): November 2023, so timestamps look real.
pub const EPOCH_NANOS: u64 = 1_700_000_000_000_000_000;

/// The simulation's clock. Clones share it; reading it never moves it.
#[derive(Debug, Clone)]
pub struct VirtualClock(Rc<Cell<u64>>);

impl Default for VirtualClock {
    fn default() -> Self {
        Self(Rc::new(Cell::new(EPOCH_NANOS)))
    }
}

impl VirtualClock {
    pub fn now(&self) -> u64 {
        self.0.get()
    }

    /// Moves time forward (it stops at the end of `u64`).
    pub fn advance(&self, nanos: u64) {
        self.0.set(self.0.get().saturating_add(nanos));
    }
}

/// A member's edge: its [`Clock`] (the shared clock, offset by this member's skew), which the
/// simulation reads and hands its node ([`tabnode_node::Node::advance_to`]), and its [`Env`]:
/// a random stream of its own (blake3 of a seed and a counter), so a run is fixed by its seed.
#[derive(Debug)]
pub struct SimEnv {
    clock: VirtualClock,
    skew: Cell<u64>,
    seed: [u8; 32],
    draws: Cell<u64>,
}

impl SimEnv {
    /// An environment on `clock` whose randomness is fixed by `seed` (a member's, per run and
    /// per process: a restarted member draws anew).
    pub fn new(clock: VirtualClock, seed: [u8; 32]) -> Self {
        Self {
            clock,
            skew: Cell::new(0),
            seed,
            draws: Cell::new(0),
        }
    }

    /// Sets how far this member's clock runs ahead of the simulation's, as real machines'
    /// clocks differ.
    pub fn set_skew(&self, nanos: u64) {
        self.skew.set(nanos);
    }

    pub fn clock(&self) -> &VirtualClock {
        &self.clock
    }
}

impl Clock for SimEnv {
    fn now_nanos(&self) -> u64 {
        self.clock.now().saturating_add(self.skew.get())
    }
}

impl Env for SimEnv {
    fn random32(&self) -> [u8; 32] {
        let n = self.draws.get() + 1;
        self.draws.set(n);
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.seed);
        hasher.update(&n.to_le_bytes());
        *hasher.finalize().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tabnode_node::Clock;

    #[test]
    fn reading_the_clock_does_not_move_it_and_members_share_it() {
        let clock = VirtualClock::default();
        let (a, b) = (
            SimEnv::new(clock.clone(), [1; 32]),
            SimEnv::new(clock.clone(), [2; 32]),
        );
        assert_eq!(a.now_nanos(), a.now_nanos());
        clock.advance(5);
        assert_eq!(a.now_nanos(), EPOCH_NANOS + 5);
        b.set_skew(3);
        assert_eq!(b.now_nanos(), EPOCH_NANOS + 8);
        assert_ne!(a.random32(), a.random32(), "a stream, not one value");
        assert_ne!(a.random32(), b.random32());
    }
}
