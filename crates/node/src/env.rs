//! The node's only non-deterministic inputs: the clock and randomness.

/// Where time and randomness come from; the browser uses `Date.now()` and WebCrypto, tests a seed.
pub trait Env {
    /// Nanoseconds since the Unix epoch.
    fn now_nanos(&self) -> u64;
    /// 32 bytes from a cryptographically secure source.
    fn random32(&self) -> [u8; 32];
}

/// A deterministic environment for tests: time advances by one millisecond per reading and the
/// random stream is blake3 of a seed and a counter.
#[derive(Debug)]
pub struct FixedEnv {
    seed: [u8; 32],
    counter: std::cell::Cell<u64>,
    skipped: std::cell::Cell<u64>,
}

impl FixedEnv {
    pub fn new(seed: u8) -> Self {
        Self {
            seed: [seed; 32],
            counter: std::cell::Cell::new(0),
            skipped: std::cell::Cell::new(0),
        }
    }

    /// Moves the clock forward, as if `nanos` passed (it stops at the end of `u64`).
    pub fn advance(&self, nanos: u64) {
        self.skipped.set(self.skipped.get().saturating_add(nanos));
    }

    fn tick(&self) -> u64 {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        n
    }
}

impl Env for FixedEnv {
    fn now_nanos(&self) -> u64 {
        // Each seed runs its own clock offset by a few microseconds, as real machines do.
        (1_700_000_000_000_000_000 + u64::from(self.seed[0]) * 1_000 + self.tick() * 1_000_000)
            .saturating_add(self.skipped.get())
    }

    fn random32(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.seed);
        hasher.update(&self.tick().to_le_bytes());
        *hasher.finalize().as_bytes()
    }
}
