//! The node's one non-deterministic input it draws itself: randomness. Time is given to it
//! with each input ([`crate::Node::advance_to`]); the [`Clock`] it comes from is the driver's.

/// Where randomness comes from; the browser uses WebCrypto, tests a seed.
pub trait Env {
    /// 32 bytes from a cryptographically secure source.
    fn random32(&self) -> [u8; 32];
}

/// A wall clock, read at the drivers' edge (the page's `Date.now()`, the CLI's `SystemTime`,
/// the simulation's virtual clock) and handed to the node with each input; the node itself
/// never reads one.
pub trait Clock {
    /// Nanoseconds since the Unix epoch.
    fn now_nanos(&self) -> u64;
}

/// A deterministic edge for tests: a clock that moves only when told ([`FixedEnv::advance`];
/// reading it does not move it), and a random stream that is blake3 of a seed and a counter.
#[derive(Debug)]
pub struct FixedEnv {
    seed: [u8; 32],
    draws: std::cell::Cell<u64>,
    skipped: std::cell::Cell<u64>,
}

impl FixedEnv {
    pub fn new(seed: u8) -> Self {
        Self {
            seed: [seed; 32],
            draws: std::cell::Cell::new(0),
            skipped: std::cell::Cell::new(0),
        }
    }

    /// Moves the clock forward, as if `nanos` passed (it stops at the end of `u64`).
    pub fn advance(&self, nanos: u64) {
        self.skipped.set(self.skipped.get().saturating_add(nanos));
    }
}

impl Clock for FixedEnv {
    fn now_nanos(&self) -> u64 {
        // Each seed runs its own clock offset by a few microseconds, as real machines do.
        (1_700_000_000_000_000_000 + u64::from(self.seed[0]) * 1_000)
            .saturating_add(self.skipped.get())
    }
}

impl Env for FixedEnv {
    fn random32(&self) -> [u8; 32] {
        let n = self.draws.get() + 1;
        self.draws.set(n);
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.seed);
        hasher.update(&n.to_le_bytes());
        *hasher.finalize().as_bytes()
    }
}
