//! Pacing the parts this node sends: an app's binary to a joiner, a blob to a member.
//!
//! A part goes out on the context's topic, through the relay, and the relay budgets the bytes
//! each peer publishes a minute (`--gossip-bytes-per-peer`, 64 MiB by default) and drops what
//! is over, this node's own deltas included. Sent all at once, a large blob overran it: the
//! parts past the budget were dropped, the member asked again for them every
//! `SYNC_RETRY_NANOS`, and each answer was dropped again while the budget refilled (a 64 MiB
//! blob asked for after a few others came at 1.1 MiB/s, `make bench-blob`), and this node's
//! deltas were lost with them. So parts wait in a queue and leave at a rate under the relay's
//! default ([`PartPacing`]), and a part asked for again while it still waits is not queued
//! twice.

use std::collections::VecDeque;

use super::*;

/// How fast this node sends parts: a token bucket of `burst_bytes`, refilled at
/// `bytes_per_minute`. Whatever the bucket lets out over any time stays within a relay budget
/// at least as large in both (the default leaves a quarter of the relay's default
/// `--gossip-bytes-per-peer` a minute, and half its burst, for deltas and sync). A
/// `bytes_per_minute` of 0 sends every part at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPacing {
    pub burst_bytes: u64,
    pub bytes_per_minute: u64,
}

impl Default for PartPacing {
    fn default() -> Self {
        Self {
            burst_bytes: 32 << 20,
            bytes_per_minute: 48 << 20,
        }
    }
}

/// At most this many bytes of parts wait: a part asked for past it is not queued (the member
/// asks again for what it still lacks).
pub const MOST_WAITING_PART_BYTES: u64 = 256 << 20;

const MINUTE_NANOS: u128 = 60_000_000_000;

/// A part by whom it is for, what it is of, and its index.
pub(super) type PartKey = (PublicKey, [u8; 32], u32);

/// Parts waiting for the bucket, in the order they were asked for.
#[derive(Default)]
pub(super) struct PartQueue {
    waiting: VecDeque<(PartKey, Outgoing)>,
    queued: HashSet<PartKey>,
    waiting_bytes: u64,
    /// Bytes the bucket holds, as of `at` (`None`: full, never drawn on).
    level: Option<(u64, u64)>,
}

fn size_of(out: &Outgoing) -> u64 {
    match out {
        Outgoing::Publish { data, .. } | Outgoing::Reply { data, .. } => data.len() as u64,
        Outgoing::Subscribe { .. } => 0,
    }
}

impl PartQueue {
    /// Whether part `key` waits to be sent.
    pub(super) fn is_queued(&self, key: &PartKey) -> bool {
        self.queued.contains(key)
    }

    /// What the bucket holds at `now`, and when that was reached (the time of a refill that is
    /// not whole stays behind, so no fraction of a byte is lost between calls).
    fn level_at(&self, pacing: &PartPacing, now: u64) -> (u64, u64) {
        let Some((level, at)) = self.level else {
            return (pacing.burst_bytes, now);
        };
        let rate = u128::from(pacing.bytes_per_minute);
        let earned = u128::from(now.saturating_sub(at)) * rate / MINUTE_NANOS;
        let level = (u128::from(level) + earned).min(u128::from(pacing.burst_bytes)) as u64;
        if level == pacing.burst_bytes {
            return (level, now);
        }
        (level, at + (earned * MINUTE_NANOS / rate) as u64)
    }

    /// Takes the parts the bucket lets out at `now`, in order.
    fn release(&mut self, pacing: &PartPacing, now: u64) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let unpaced = pacing.bytes_per_minute == 0;
        let (mut level, at) = self.level_at(pacing, now);
        while let Some((_, part)) = self.waiting.front() {
            let size = size_of(part);
            // A part larger than the whole bucket goes once the bucket is full.
            let cost = size.min(pacing.burst_bytes);
            if !unpaced && level < cost {
                break;
            }
            level -= if unpaced { 0 } else { cost };
            let (key, part) = self.waiting.pop_front().expect("a front part");
            self.queued.remove(&key);
            self.waiting_bytes -= size;
            out.push(part);
        }
        self.level = Some((level, at));
        out
    }

    /// When the next waiting part may go (`None`: none waits).
    fn due(&self, pacing: &PartPacing, now: u64) -> Option<u64> {
        let (_, part) = self.waiting.front()?;
        let (level, at) = self.level_at(pacing, now);
        let cost = size_of(part).min(pacing.burst_bytes);
        if pacing.bytes_per_minute == 0 || level >= cost {
            return Some(now);
        }
        let rate = u128::from(pacing.bytes_per_minute);
        let wait = (u128::from(cost - level) * MINUTE_NANOS).div_ceil(rate);
        Some(at.saturating_add(wait as u64))
    }
}

impl<S: Store, E: Env> Node<S, E> {
    /// How fast this node sends the parts of apps and blobs members ask for (see
    /// [`PartPacing`]): keep it under the relays' `--gossip-bytes-per-peer`.
    pub fn set_part_pacing(&mut self, pacing: PartPacing) {
        self.pacing = pacing;
    }

    /// Queues part `index` of `id` for `to`, sealed with `secret` (to `peer` if known), unless
    /// it waits already or too much does; then sends what the bucket lets out.
    pub(super) fn send_part(
        &mut self,
        (to, id, index): PartKey,
        (context_id, secret): (ContextId, &[u8; 32]),
        message: WireMessage,
        peer: Option<&str>,
    ) {
        let key = (to, id, index);
        if self.parts_out.is_queued(&key) {
            return;
        }
        let part = self.addressed(context_id, secret, message, peer);
        let size = size_of(&part);
        let queue = &mut self.parts_out;
        if queue.waiting_bytes + size > MOST_WAITING_PART_BYTES {
            tracing::debug!(%context_id, index, "parts waiting to be sent are at their cap");
            return;
        }
        queue.queued.insert(key);
        queue.waiting_bytes += size;
        queue.waiting.push_back((key, part));
        let now = self.now;
        self.release_parts(now);
    }

    /// Sends the waiting parts the bucket lets out at `now`.
    pub(super) fn release_parts(&mut self, now: u64) {
        let parts = self.parts_out.release(&self.pacing, now);
        self.outgoing.extend(parts);
    }

    /// When the next waiting part may go, for [`Node::poll_timeout`].
    pub(super) fn parts_due(&self) -> Option<u64> {
        let now = self.parts_out.level.map_or(0, |(_, at)| at);
        self.parts_out.due(&self.pacing, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(bytes: usize) -> Outgoing {
        Outgoing::Publish {
            topic: "t".into(),
            data: vec![0; bytes],
        }
    }

    fn queue_of(sizes: &[usize]) -> PartQueue {
        let mut queue = PartQueue::default();
        for (i, size) in sizes.iter().enumerate() {
            let key = (SecretKey::from_seed([1; 32]).public(), [0; 32], i as u32);
            queue.queued.insert(key);
            queue.waiting_bytes += *size as u64;
            queue.waiting.push_back((key, part(*size)));
        }
        queue
    }

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn a_full_bucket_lets_out_its_burst_then_the_rate() {
        // 100 bytes of burst, 60 bytes a minute: one byte a second.
        let pacing = PartPacing {
            burst_bytes: 100,
            bytes_per_minute: 60,
        };
        let mut queue = queue_of(&[40, 40, 40, 40]);
        let t0 = 1_000 * SECOND;
        assert_eq!(queue.release(&pacing, t0).len(), 2, "80 of the 100 bytes");
        // 20 bytes are left: the third part (40) waits 20 s.
        assert_eq!(queue.due(&pacing, t0), Some(t0 + 20 * SECOND));
        assert!(queue.release(&pacing, t0 + 19 * SECOND).is_empty());
        assert_eq!(queue.release(&pacing, t0 + 20 * SECOND).len(), 1);
        // Calls a millisecond apart lose no fraction of a byte: 40 s later the last goes.
        let mut sent = 0;
        let mut t = t0 + 20 * SECOND;
        while t < t0 + 60 * SECOND {
            t += SECOND / 1000;
            sent += queue.release(&pacing, t).len();
        }
        assert_eq!(sent, 1);
        assert!(queue.waiting.is_empty() && queue.queued.is_empty());
        assert_eq!(queue.waiting_bytes, 0);
        assert_eq!(queue.due(&pacing, t), None);
    }

    #[test]
    fn a_part_larger_than_the_bucket_goes_once_it_is_full_and_no_rate_sends_all() {
        let pacing = PartPacing {
            burst_bytes: 10,
            bytes_per_minute: 60,
        };
        let mut queue = queue_of(&[5, 30]);
        assert_eq!(queue.release(&pacing, SECOND).len(), 1);
        assert_eq!(queue.due(&pacing, SECOND), Some(6 * SECOND));
        assert_eq!(queue.release(&pacing, 6 * SECOND).len(), 1);
        let unpaced = PartPacing {
            burst_bytes: 10,
            bytes_per_minute: 0,
        };
        assert_eq!(queue_of(&[50, 50, 50]).release(&unpaced, SECOND).len(), 3);
    }
}
