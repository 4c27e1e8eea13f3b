//! Direct links between browser peers, beside the relay: which peer dials a WebRTC connection
//! to which, when to try again, and when to give up on a peer. Sans-IO: the swarm task feeds it
//! what happened and carries out the [`Action`]s it returns; time is an input, so its tests run
//! without a browser or a clock.
//!
//! A link is a libp2p connection over WebRTC (private-to-private; `crate::webrtc`, in the
//! page): the dialler first reaches the peer through a relay (circuit relay v2), and the WebRTC
//! offer, answer and candidates travel on that relayed connection, which Noise authenticates,
//! so the relay can neither forge nor alter them. Of two peers the one with the smaller peer id
//! dials, so two dials never cross.

use std::collections::HashMap;

/// How long a dial may take, the relayed connection and the WebRTC signalling included.
const OPEN_TIMEOUT_MS: u64 = 30_000;
/// First wait before trying a peer again; doubles per failure up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: u64 = 2_000;
const MAX_BACKOFF_MS: u64 = 120_000;
/// Malformed frames a peer may send before its link is closed (and it waits a long backoff).
const MAX_BAD_FRAMES: u32 = 8;

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Dial `peer` over WebRTC (through a relay first); report it with [`Links::opened`] or
    /// [`Links::closed`].
    Dial { peer: String },
    /// Close and forget the connection with `peer`.
    Close { peer: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// We dialled at this time; not open yet.
    Connecting {
        since: u64,
    },
    Open,
    /// Not connected; try again at `retry_at`.
    Idle {
        retry_at: u64,
    },
}

#[derive(Debug, Clone)]
struct Link {
    state: State,
    failures: u32,
    bad_frames: u32,
}

/// Every direct link of this peer.
#[derive(Debug)]
pub struct Links {
    me: String,
    links: HashMap<String, Link>,
}

impl Links {
    pub fn new(me: impl Into<String>) -> Self {
        Self {
            me: me.into(),
            links: HashMap::new(),
        }
    }

    /// Peers with an open link.
    pub fn open(&self) -> impl Iterator<Item = &str> {
        self.links
            .iter()
            .filter(|(_, l)| l.state == State::Open)
            .map(|(p, _)| p.as_str())
    }

    pub fn is_open(&self, peer: &str) -> bool {
        self.links.get(peer).is_some_and(|l| l.state == State::Open)
    }

    /// `peer` is on a topic this peer is on (heard from through the relay): dial a link if it
    /// is ours to dial and none is up, being made, or waiting out a backoff.
    pub fn heard_from(&mut self, peer: &str, now: u64) -> Vec<Action> {
        if peer == self.me || self.me.as_str() > peer {
            return Vec::new();
        }
        let link = self.links.entry(peer.to_owned()).or_insert(Link {
            state: State::Idle { retry_at: 0 },
            failures: 0,
            bad_frames: 0,
        });
        match link.state {
            State::Idle { retry_at } if now >= retry_at => {
                link.state = State::Connecting { since: now };
                vec![Action::Dial {
                    peer: peer.to_owned(),
                }]
            }
            _ => Vec::new(),
        }
    }

    /// A WebRTC connection with `peer` is up, dialled by either side: traffic for it can go
    /// direct. A peer still waiting out its ban for garbage is closed on.
    pub fn opened(&mut self, peer: &str, now: u64) -> Vec<Action> {
        let link = self.links.entry(peer.to_owned()).or_insert(Link {
            state: State::Idle { retry_at: 0 },
            failures: 0,
            bad_frames: 0,
        });
        let banned = link.bad_frames >= MAX_BAD_FRAMES
            && matches!(link.state, State::Idle { retry_at } if now < retry_at);
        if peer == self.me || banned {
            return vec![Action::Close {
                peer: peer.to_owned(),
            }];
        }
        link.state = State::Open;
        link.failures = 0;
        link.bad_frames = 0;
        Vec::new()
    }

    /// The link with `peer` closed or failed: traffic falls back to the relay, and we try
    /// again after a backoff.
    pub fn closed(&mut self, peer: &str, now: u64) -> Vec<Action> {
        self.fail(peer, now, false)
    }

    /// `peer` sent a frame that does not decode: after a few, its link is closed and it waits
    /// the longest backoff.
    pub fn bad_frame(&mut self, peer: &str, now: u64) -> Vec<Action> {
        let Some(link) = self.links.get_mut(peer) else {
            return Vec::new();
        };
        link.bad_frames += 1;
        if link.bad_frames < MAX_BAD_FRAMES {
            return Vec::new();
        }
        self.fail(peer, now, true)
    }

    /// Gives up on links that did not open in time.
    pub fn tick(&mut self, now: u64) -> Vec<Action> {
        let late: Vec<String> = self
            .links
            .iter()
            .filter(|(_, l)| {
                matches!(l.state, State::Connecting { since, .. } if now.saturating_sub(since) >= OPEN_TIMEOUT_MS)
            })
            .map(|(p, _)| p.clone())
            .collect();
        late.iter()
            .flat_map(|peer| self.fail(peer, now, false))
            .collect()
    }

    fn fail(&mut self, peer: &str, now: u64, banned: bool) -> Vec<Action> {
        let me = self.me.clone();
        let Some(link) = self.links.get_mut(peer) else {
            return Vec::new();
        };
        let was_up = !matches!(link.state, State::Idle { .. });
        if !was_up && !banned {
            return Vec::new(); // nothing was up or being made: no new failure
        }
        link.failures = link.failures.saturating_add(1);
        let wait = if banned {
            MAX_BACKOFF_MS
        } else {
            backoff(link.failures, &me, peer)
        };
        // A ban (or a longer wait) already running is not cut short.
        let retry_at = match link.state {
            State::Idle { retry_at } => retry_at.max(now + wait),
            _ => now + wait,
        };
        link.state = State::Idle { retry_at };
        let mut actions = Vec::new();
        if was_up {
            actions.push(Action::Close {
                peer: peer.to_owned(),
            });
        }
        actions
    }
}

fn backoff(failures: u32, me: &str, peer: &str) -> u64 {
    jittered_backoff(failures, me, peer, MAX_BACKOFF_MS)
}

/// The wait before the `failures`-th retry: doubling from [`FIRST_BACKOFF_MS`] up to `max`,
/// with up to a quarter more as jitter, spread by the pair of peers (so peers that lost a
/// connection at the same moment do not all retry at once) yet reproducible.
pub(crate) fn jittered_backoff(failures: u32, me: &str, peer: &str, max: u64) -> u64 {
    let base = FIRST_BACKOFF_MS
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(max);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a over the pair and the count
    for b in me.bytes().chain(peer.bytes()).chain(failures.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    base + h % (base / 4 + 1)
}

/// A frame on a direct link: the topic (u16 length, UTF-8) then the message, as on gossip.
pub fn encode_frame(topic: &str, data: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(topic.len()).ok()?;
    let mut frame = Vec::with_capacity(2 + topic.len() + data.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(topic.as_bytes());
    frame.extend_from_slice(data);
    Some(frame)
}

/// The topic and message of a frame, or `None` if it is malformed.
pub fn decode_frame(frame: &[u8]) -> Option<(String, Vec<u8>)> {
    let len = u16::from_be_bytes(frame.get(..2)?.try_into().ok()?) as usize;
    let topic = std::str::from_utf8(frame.get(2..2 + len)?).ok()?;
    Some((topic.to_owned(), frame[2 + len..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dial(peer: &str) -> Action {
        Action::Dial { peer: peer.into() }
    }

    #[test]
    fn the_smaller_peer_dials_and_either_side_sees_the_link_open() {
        let (mut a, mut b) = (Links::new("a"), Links::new("b"));
        assert_eq!(b.heard_from("a", 0), vec![], "b waits for a's dial");
        assert_eq!(a.heard_from("b", 0), vec![dial("b")]);
        assert_eq!(a.heard_from("b", 1), vec![], "one dial at a time");
        assert!(a.opened("b", 5).is_empty() && b.opened("a", 5).is_empty());
        assert!(a.is_open("b") && b.is_open("a"));
        assert_eq!(a.open().collect::<Vec<_>>(), vec!["b"]);
        assert_eq!(a.heard_from("b", 6), vec![], "open: nothing to dial");
        assert_eq!(a.opened("a", 7), vec![Action::Close { peer: "a".into() }]);
    }

    #[test]
    fn a_lost_link_is_retried_after_a_growing_jittered_backoff() {
        let mut a = Links::new("a");
        a.heard_from("b", 0);
        a.opened("b", 0);
        let closing = a.closed("b", 1_000);
        assert!(closing.contains(&Action::Close { peer: "b".into() }));
        assert!(!a.is_open("b"), "traffic falls back to the relay");
        assert!(a.heard_from("b", 2_000).is_empty(), "still backing off");
        let first = (2_000..20_000)
            .step_by(100)
            .find(|t| !a.heard_from("b", 1_000 + t).is_empty());
        let first = first.expect("retried");
        assert!(
            (2_000..=2_500).contains(&first),
            "first retry after 2-2.5 s: {first}"
        );
        // The dial times out; the next wait is about twice as long.
        let failed = a.tick(1_000 + first + OPEN_TIMEOUT_MS);
        assert!(failed.contains(&Action::Close { peer: "b".into() }));
        let t0 = 1_000 + first + OPEN_TIMEOUT_MS;
        let second = (0..60_000)
            .step_by(100)
            .find(|t| !a.heard_from("b", t0 + t).is_empty());
        let second = second.expect("retried again");
        assert!(
            (4_000..=5_000).contains(&second),
            "second retry after 4-5 s: {second}"
        );
        assert_ne!(
            backoff(3, "a", "b"),
            backoff(3, "a", "c"),
            "jitter differs per pair"
        );
        assert!(backoff(40, "a", "b") <= MAX_BACKOFF_MS + MAX_BACKOFF_MS / 4);
    }

    #[test]
    fn a_peer_sending_garbage_is_cut_off_for_the_longest_backoff() {
        let mut a = Links::new("a");
        a.heard_from("b", 0);
        a.opened("b", 0);
        for _ in 1..MAX_BAD_FRAMES {
            assert!(a.bad_frame("b", 10).is_empty());
        }
        assert!(a
            .bad_frame("b", 10)
            .contains(&Action::Close { peer: "b".into() }));
        assert!(a.heard_from("b", 10 + MAX_BACKOFF_MS - 1).is_empty());
        assert_eq!(
            a.opened("b", 20),
            vec![Action::Close { peer: "b".into() }],
            "its own dial is refused while banned"
        );
        assert_eq!(a.heard_from("b", 10 + MAX_BACKOFF_MS), vec![dial("b")]);
    }

    #[test]
    fn frames_decode_what_they_encode_and_refuse_garbage() {
        let frame = encode_frame("/t", b"data").unwrap();
        assert_eq!(decode_frame(&frame), Some(("/t".into(), b"data".to_vec())));
        assert_eq!(decode_frame(&[0, 9, b'x']), None);
        assert_eq!(decode_frame(&[0]), None);
        assert_eq!(decode_frame(&[0, 1, 0xff]), None, "not UTF-8");
    }
}
