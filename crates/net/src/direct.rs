//! Direct links between browser peers, beside the relay: which peer offers a WebRTC
//! connection to which, when to try again, and when to give up on a peer. Sans-IO: the swarm
//! task feeds it what happened and carries out the [`Action`]s it returns; time is an input, so
//! its tests run without a browser or a clock.
//!
//! Signalling (the SDP offer and answer, ICE candidates inside them) travels as gossip on the
//! receiver's own topic ([`signal_topic`]) through the relay. Gossip messages are signed by the
//! sender's libp2p key and checked by every receiver, so the relay can neither forge nor alter
//! a description (and with it the DTLS fingerprint the link is secured with). Of two peers the
//! one with the smaller peer id offers, so two offers never cross.

use std::collections::HashMap;

/// A signalling message, as JSON on the receiver's signal topic.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Signal {
    /// A session description with every ICE candidate gathered (no trickle).
    Offer {
        sdp: String,
    },
    Answer {
        sdp: String,
    },
    /// The sender closed its side; try again later.
    Bye,
}

impl Signal {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a signal encodes")
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > MAX_SIGNAL_BYTES {
            return None;
        }
        serde_json::from_slice(bytes).ok()
    }
}

/// The gossip topic a peer receives its signalling on.
pub fn signal_topic(peer: &str) -> String {
    format!("/tabnode/signal/{peer}")
}

/// Largest signal accepted: a description with its candidates is a few KB.
pub const MAX_SIGNAL_BYTES: usize = 64 * 1024;
/// How long an offer may wait for its answer and the link to open.
const OPEN_TIMEOUT_MS: u64 = 15_000;
/// First wait before trying a peer again; doubles per failure up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: u64 = 2_000;
const MAX_BACKOFF_MS: u64 = 120_000;
/// A second offer from a peer this soon after the one being answered is ignored, so a flood of
/// offers costs one connection attempt at a time.
const MIN_OFFER_GAP_MS: u64 = 2_000;
/// Malformed frames a peer may send before its link is closed (and it waits a long backoff).
const MAX_BAD_FRAMES: u32 = 8;

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Make a connection to `peer` and an offer; report it with [`Links::described`].
    Offer { peer: String },
    /// Take `peer`'s offer and make an answer; report it with [`Links::described`].
    Answer { peer: String, sdp: String },
    /// Complete the connection we offered with `peer`'s answer.
    Complete { peer: String, sdp: String },
    /// Send a signal to `peer` (on its signal topic).
    Signal { peer: String, signal: Signal },
    /// Close and forget the connection with `peer`.
    Close { peer: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// We offered (or answered) at this time; not open yet.
    Connecting {
        since: u64,
        offered: bool,
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

    /// `peer` is on a topic this peer is on (heard from through the relay): offer a link if it
    /// is ours to offer and none is up, being made, or waiting out a backoff.
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
                link.state = State::Connecting {
                    since: now,
                    offered: true,
                };
                vec![Action::Offer {
                    peer: peer.to_owned(),
                }]
            }
            _ => Vec::new(),
        }
    }

    /// A signal from `peer` (the gossip source, checked by gossipsub).
    pub fn on_signal(&mut self, peer: &str, signal: Signal, now: u64) -> Vec<Action> {
        if peer == self.me {
            return Vec::new();
        }
        match signal {
            Signal::Offer { sdp } => {
                if self.me.as_str() < peer {
                    return Vec::new(); // ours to offer: a peer breaking the rule is ignored
                }
                let banned = |l: &Link| {
                    l.bad_frames >= MAX_BAD_FRAMES
                        && matches!(l.state, State::Idle { retry_at } if now < retry_at)
                };
                if self.links.get(peer).is_some_and(banned) {
                    return Vec::new(); // sent us garbage: it waits out its backoff
                }
                let mut actions = Vec::new();
                let link = self.links.entry(peer.to_owned()).or_insert(Link {
                    state: State::Idle { retry_at: 0 },
                    failures: 0,
                    bad_frames: 0,
                });
                if matches!(link.state, State::Connecting { since, .. } if now.saturating_sub(since) < MIN_OFFER_GAP_MS)
                {
                    return Vec::new();
                }
                if !matches!(link.state, State::Idle { .. }) {
                    // A new offer replaces what we had (the other side started again).
                    actions.push(Action::Close {
                        peer: peer.to_owned(),
                    });
                }
                link.state = State::Connecting {
                    since: now,
                    offered: false,
                };
                actions.push(Action::Answer {
                    peer: peer.to_owned(),
                    sdp,
                });
                actions
            }
            Signal::Answer { sdp } => match self.links.get(peer) {
                Some(Link {
                    state: State::Connecting { offered: true, .. },
                    ..
                }) => vec![Action::Complete {
                    peer: peer.to_owned(),
                    sdp,
                }],
                _ => Vec::new(),
            },
            Signal::Bye => match self.links.get(peer).map(|l| &l.state) {
                Some(State::Open | State::Connecting { .. }) => self.fail(peer, now, false),
                _ => Vec::new(),
            },
        }
    }

    /// The caller made our side's description for `peer`: send it.
    pub fn described(&mut self, peer: &str, sdp: String) -> Vec<Action> {
        let Some(Link {
            state: State::Connecting { offered, .. },
            ..
        }) = self.links.get(peer)
        else {
            return vec![Action::Close {
                peer: peer.to_owned(),
            }]; // given up meanwhile
        };
        let signal = if *offered {
            Signal::Offer { sdp }
        } else {
            Signal::Answer { sdp }
        };
        vec![Action::Signal {
            peer: peer.to_owned(),
            signal,
        }]
    }

    /// The link with `peer` is open: traffic for it can go direct.
    pub fn opened(&mut self, peer: &str) -> Vec<Action> {
        match self.links.get_mut(peer) {
            Some(link) if matches!(link.state, State::Connecting { .. }) => {
                link.state = State::Open;
                link.failures = 0;
                Vec::new()
            }
            _ => vec![Action::Close {
                peer: peer.to_owned(),
            }],
        }
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
        link.failures = link.failures.saturating_add(1);
        let wait = if banned {
            MAX_BACKOFF_MS
        } else {
            backoff(link.failures, &me, peer)
        };
        link.state = State::Idle {
            retry_at: now + wait,
        };
        let mut actions = Vec::new();
        if was_up {
            actions.push(Action::Close {
                peer: peer.to_owned(),
            });
            actions.push(Action::Signal {
                peer: peer.to_owned(),
                signal: Signal::Bye,
            });
        }
        actions
    }
}

/// The wait before the `failures`-th retry: doubling from [`FIRST_BACKOFF_MS`] up to
/// [`MAX_BACKOFF_MS`], with up to a quarter more as jitter, spread by the pair of peers (so
/// peers that lost a link at the same moment do not all retry at once) yet reproducible.
fn backoff(failures: u32, me: &str, peer: &str) -> u64 {
    let base = FIRST_BACKOFF_MS
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF_MS);
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

    fn offer(peer: &str) -> Action {
        Action::Offer { peer: peer.into() }
    }

    #[test]
    fn the_smaller_peer_offers_and_the_other_answers() {
        let (mut a, mut b) = (Links::new("a"), Links::new("b"));
        assert_eq!(b.heard_from("a", 0), vec![], "b waits for a's offer");
        assert_eq!(a.heard_from("b", 0), vec![offer("b")]);
        assert_eq!(a.heard_from("b", 1), vec![], "one offer at a time");
        let sent = a.described("b", "offer-sdp".into());
        let [Action::Signal { signal, .. }] = &sent[..] else {
            panic!("{sent:?}")
        };
        let answer = b.on_signal("a", signal.clone(), 5);
        assert_eq!(
            answer,
            vec![Action::Answer {
                peer: "a".into(),
                sdp: "offer-sdp".into()
            }]
        );
        let reply = b.described("a", "answer-sdp".into());
        let [Action::Signal { signal, .. }] = &reply[..] else {
            panic!("{reply:?}")
        };
        assert_eq!(
            a.on_signal("b", signal.clone(), 6),
            vec![Action::Complete {
                peer: "b".into(),
                sdp: "answer-sdp".into()
            }]
        );
        assert!(a.opened("b").is_empty() && b.opened("a").is_empty());
        assert!(a.is_open("b") && b.is_open("a"));
        assert_eq!(a.open().collect::<Vec<_>>(), vec!["b"]);
    }

    #[test]
    fn a_flood_of_offers_costs_one_attempt_at_a_time() {
        let mut b = Links::new("b");
        let offer = |sdp: &str| Signal::Offer { sdp: sdp.into() };
        assert_eq!(b.on_signal("a", offer("1"), 0).len(), 1);
        for t in (100..MIN_OFFER_GAP_MS).step_by(100) {
            assert!(b.on_signal("a", offer("again"), t).is_empty(), "at {t} ms");
        }
        let replaced = b.on_signal("a", offer("2"), MIN_OFFER_GAP_MS);
        assert_eq!(
            replaced[0],
            Action::Close { peer: "a".into() },
            "the other side restarted"
        );
    }

    #[test]
    fn an_offer_from_the_wrong_side_or_an_unasked_answer_is_ignored() {
        let mut a = Links::new("a");
        assert!(a
            .on_signal("b", Signal::Offer { sdp: "x".into() }, 0)
            .is_empty());
        assert!(a
            .on_signal("b", Signal::Answer { sdp: "x".into() }, 0)
            .is_empty());
        assert!(a.on_signal("a", Signal::Bye, 0).is_empty());
    }

    #[test]
    fn a_lost_link_is_retried_after_a_growing_jittered_backoff() {
        let mut a = Links::new("a");
        a.heard_from("b", 0);
        a.opened("b");
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
        // The offer times out; the next wait is about twice as long.
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
        a.opened("b");
        for _ in 1..MAX_BAD_FRAMES {
            assert!(a.bad_frame("b", 10).is_empty());
        }
        assert!(a
            .bad_frame("b", 10)
            .contains(&Action::Close { peer: "b".into() }));
        assert!(a.heard_from("b", 10 + MAX_BACKOFF_MS - 1).is_empty());
        assert_eq!(a.heard_from("b", 10 + MAX_BACKOFF_MS), vec![offer("b")]);
    }

    #[test]
    fn frames_and_signals_decode_what_they_encode_and_refuse_garbage() {
        let frame = encode_frame("/t", b"data").unwrap();
        assert_eq!(decode_frame(&frame), Some(("/t".into(), b"data".to_vec())));
        assert_eq!(decode_frame(&[0, 9, b'x']), None);
        assert_eq!(decode_frame(&[0]), None);
        assert_eq!(decode_frame(&[0, 1, 0xff]), None, "not UTF-8");
        let bye = Signal::Bye.encode();
        assert_eq!(Signal::decode(&bye), Some(Signal::Bye));
        assert_eq!(Signal::decode(b"{\"type\":\"nope\"}"), None);
        assert_eq!(Signal::decode(&vec![b' '; MAX_SIGNAL_BYTES + 1]), None);
    }
}
