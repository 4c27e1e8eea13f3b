//! When to dial a relay again: at once when it is first missed, then after a wait that doubles
//! from 2 s up to [`MAX_WAIT_MS`], with jitter spread by this node and the relay, so that the
//! pages a relay dropped at one moment do not all come back at the same one. Sans-IO: time is
//! an input.

use std::collections::HashMap;

use crate::direct::jittered_backoff;

/// The longest wait between two dials of a relay (plus up to a quarter as jitter).
pub const MAX_WAIT_MS: u64 = 30_000;

#[derive(Debug)]
pub struct Redial {
    me: String,
    /// Per relay not connected: dials made since it was last up, and when the next is due.
    waiting: HashMap<String, (u32, u64)>,
}

impl Redial {
    pub fn new(me: impl Into<String>) -> Self {
        Self {
            me: me.into(),
            waiting: HashMap::new(),
        }
    }

    /// `relay` is not connected at `now`: whether to dial it now (which counts as a dial).
    pub fn due(&mut self, relay: &str, now: u64) -> bool {
        let (dials, at) = self.waiting.entry(relay.to_owned()).or_insert((0, now));
        if now < *at {
            return false;
        }
        *dials += 1;
        *at = now + jittered_backoff(*dials, &self.me, relay, MAX_WAIT_MS);
        true
    }

    /// `relay` is connected: the next time it is missed, dial at once.
    pub fn connected(&mut self, relay: &str) {
        self.waiting.remove(relay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The times (ms) at which a relay missed from 0 on is dialled, ticking every 100 ms.
    fn dials(redial: &mut Redial, relay: &str, until: u64) -> Vec<u64> {
        (0..until)
            .step_by(100)
            .filter(|t| redial.due(relay, *t))
            .collect()
    }

    #[test]
    fn dials_at_once_then_backs_off_with_jitter_up_to_a_cap() {
        let mut redial = Redial::new("me");
        let times = dials(&mut redial, "relay", 300_000);
        assert_eq!(times[0], 0, "at once");
        let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        assert!((2_000..=2_600).contains(&gaps[0]), "{gaps:?}");
        assert!((4_000..=5_100).contains(&gaps[1]), "{gaps:?}");
        let growing = gaps
            .iter()
            .take_while(|g| **g < MAX_WAIT_MS)
            .collect::<Vec<_>>();
        assert!(
            growing.windows(2).all(|g| g[1] > g[0]),
            "grows to the cap: {gaps:?}"
        );
        let cap = MAX_WAIT_MS + MAX_WAIT_MS / 4 + 100;
        assert!(gaps.iter().all(|g| *g <= cap), "{gaps:?}");
        assert!(
            gaps.last().unwrap() >= &MAX_WAIT_MS,
            "reaches the cap: {gaps:?}"
        );
        let other = dials(&mut Redial::new("another page"), "relay", 300_000);
        assert_ne!(times, other, "the jitter differs per node");
    }

    #[test]
    fn a_relay_that_came_back_is_dialled_at_once_when_missed_again() {
        let mut redial = Redial::new("me");
        assert!(redial.due("relay", 0));
        assert!(!redial.due("relay", 1_000));
        redial.connected("relay");
        assert!(redial.due("relay", 1_000));
    }
}
