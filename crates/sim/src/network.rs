//! The wire between members: what each sends, to whom, when it arrives, if it does.

use std::collections::BTreeMap;

use futures::executor::block_on;
use tabnode_node::{Env, Node, Outgoing};
use tabnode_store::Store;

use crate::rng::Rng;

/// The network peer id of member `index`: replies ([`Outgoing::Reply`]) are addressed by it.
pub fn peer_id(index: usize) -> String {
    format!("sim-peer-{index}")
}

/// The member a peer id names, if it names one.
pub fn peer_index(peer: &str) -> Option<usize> {
    peer.strip_prefix("sim-peer-")?.parse().ok()
}

/// How badly the network behaves, each in percent of messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    /// Lost on the way to one receiver.
    pub loss: u64,
    /// Arrive twice at one receiver.
    pub duplication: u64,
    /// Held back past their round, by 1 to `max_delay_rounds` rounds.
    pub delay: u64,
    pub max_delay_rounds: u64,
    /// Whether each round's messages arrive shuffled, rather than in the order sent.
    pub reorder: bool,
}

impl Faults {
    /// Every message arrives, once, in its round, in the order sent.
    pub const NONE: Faults = Faults {
        loss: 0,
        duplication: 0,
        delay: 0,
        max_delay_rounds: 0,
        reorder: false,
    };

    /// A bad network: a quarter lost, some duplicated, a tenth late by up to five rounds, and
    /// each round's arrivals shuffled.
    pub const BAD: Faults = Faults {
        loss: 25,
        duplication: 15,
        delay: 10,
        max_delay_rounds: 5,
        reorder: true,
    };
}

/// A message on its way to one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub from: usize,
    pub to: usize,
    pub topic: String,
    pub data: Vec<u8>,
    /// The round it arrives in.
    pub due: u64,
}

/// Messages in flight between `members` members, and which of them can reach each other.
#[derive(Debug)]
pub struct Network {
    rng: Rng,
    faults: Faults,
    round: u64,
    in_flight: Vec<Envelope>,
    /// Each cut-off member's side; members on the same side (absent: side 0) reach each other.
    sides: BTreeMap<usize, u32>,
    /// Messages sent, lost, duplicated and delayed so far (for a run's summary).
    pub counts: Counts,
}

/// What the network did to the messages it carried.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub sent: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub delayed: u64,
    pub cut: u64,
}

impl Network {
    pub fn new(rng: Rng, faults: Faults) -> Self {
        Self {
            rng,
            faults,
            round: 0,
            in_flight: Vec::new(),
            sides: BTreeMap::new(),
            counts: Counts::default(),
        }
    }

    pub fn faults(&self) -> Faults {
        self.faults
    }

    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    pub fn round(&self) -> u64 {
        self.round
    }

    /// Messages sent and not yet delivered or lost.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Cuts `member` off from everyone else (until [`Network::heal`]).
    pub fn isolate(&mut self, member: usize) {
        let side = self.sides.values().max().map_or(1, |s| s + 1);
        self.sides.insert(member, side);
    }

    /// Puts `members` on one side, apart from everyone else.
    pub fn split(&mut self, members: &[usize]) {
        let side = self.sides.values().max().map_or(1, |s| s + 1);
        for m in members {
            self.sides.insert(*m, side);
        }
    }

    /// Everyone reaches everyone again.
    pub fn heal(&mut self) {
        self.sides.clear();
    }

    pub fn reachable(&self, a: usize, b: usize) -> bool {
        self.sides.get(&a).unwrap_or(&0) == self.sides.get(&b).unwrap_or(&0)
    }

    /// Takes what member `from` wants sent among `members` members: a publication goes to
    /// every other member, a reply to its addressee alone; each copy may be lost, duplicated
    /// or delayed. Subscriptions need nothing here (every member hears every topic, and a node
    /// ignores topics it does not hold).
    pub fn send(&mut self, from: usize, out: Outgoing, members: usize) {
        let (to, topic, data): (Vec<usize>, _, _) = match out {
            Outgoing::Subscribe { .. } => return,
            Outgoing::Publish { topic, data } => {
                ((0..members).filter(|&to| to != from).collect(), topic, data)
            }
            Outgoing::Reply { peer, topic, data } => {
                let to = peer_index(&peer).filter(|&to| to < members && to != from);
                (to.into_iter().collect(), topic, data)
            }
        };
        for to in to {
            self.counts.sent += 1;
            if !self.reachable(from, to) {
                self.counts.cut += 1;
                continue;
            }
            if self.rng.chance(self.faults.loss) {
                self.counts.lost += 1;
                continue;
            }
            let copies = if self.rng.chance(self.faults.duplication) {
                self.counts.duplicated += 1;
                2
            } else {
                1
            };
            for _ in 0..copies {
                let mut due = self.round;
                if self.faults.max_delay_rounds > 0 && self.rng.chance(self.faults.delay) {
                    self.counts.delayed += 1;
                    due += 1 + self.rng.below(self.faults.max_delay_rounds);
                }
                self.in_flight.push(Envelope {
                    from,
                    to,
                    topic: topic.clone(),
                    data: data.clone(),
                    due,
                });
            }
        }
    }

    /// Ends the round: what is due now, shuffled if the network reorders (a message whose ends were cut
    /// apart meanwhile is lost).
    pub fn take_due(&mut self) -> Vec<Envelope> {
        let (mut due, later): (Vec<Envelope>, Vec<Envelope>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|e| e.due <= self.round);
        self.in_flight = later;
        self.round += 1;
        if self.faults.reorder {
            self.rng.shuffle(&mut due);
        }
        let before = due.len();
        due.retain(|e| self.reachable(e.from, e.to));
        self.counts.cut += (before - due.len()) as u64;
        due
    }
}

/// Hands `envelope` to the node it is for, saying which peer sent it.
pub(crate) fn hand<S: Store, E: Env>(node: &mut Node<S, E>, envelope: &Envelope) {
    let from = peer_id(envelope.from);
    block_on(node.handle_message_from(&envelope.topic, &envelope.data, Some(&from)));
}

/// Everyone hears everyone, on a network with no faults, until nobody has anything to say:
/// publications reach every other node, replies their addressee (node `i` is
/// [`peer_id`]`(i)`). Time does not move.
pub fn settle<S: Store, E: Env>(nodes: &mut [&mut Node<S, E>]) {
    let mut network = Network::new(Rng::new(1), Faults::NONE);
    let members = nodes.len();
    loop {
        for (from, node) in nodes.iter_mut().enumerate() {
            for out in node.take_outgoing() {
                network.send(from, out, members);
            }
        }
        let due = network.take_due();
        if due.is_empty() {
            return;
        }
        for envelope in &due {
            hand(nodes[envelope.to], envelope);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(n: u8) -> Outgoing {
        Outgoing::Publish {
            topic: "t".into(),
            data: vec![n],
        }
    }

    fn arrivals(net: &mut Network) -> Vec<(usize, usize, u8)> {
        net.take_due()
            .into_iter()
            .map(|e| (e.from, e.to, e.data[0]))
            .collect()
    }

    #[test]
    fn without_faults_everything_arrives_once_in_order_and_replies_reach_their_addressee() {
        let mut net = Network::new(Rng::new(1), Faults::NONE);
        net.send(0, publish(1), 3);
        net.send(0, publish(2), 3);
        let reply = Outgoing::Reply {
            peer: peer_id(2),
            topic: "t".into(),
            data: vec![3],
        };
        net.send(1, reply, 3);
        net.send(
            1,
            Outgoing::Subscribe {
                topic: "t".into(),
                key: [0; 32],
            },
            3,
        );
        assert_eq!(
            arrivals(&mut net),
            vec![(0, 1, 1), (0, 2, 1), (0, 1, 2), (0, 2, 2), (1, 2, 3)]
        );
        assert_eq!(net.in_flight(), 0);
        assert_eq!(peer_index(&peer_id(7)), Some(7));
        assert_eq!(peer_index("12D3KooW"), None);
    }

    #[test]
    fn a_partition_cuts_both_ways_until_it_heals_and_drops_what_was_in_flight() {
        let mut net = Network::new(Rng::new(1), Faults::NONE);
        net.isolate(2);
        net.send(0, publish(1), 3);
        net.send(2, publish(2), 3);
        assert_eq!(arrivals(&mut net), vec![(0, 1, 1)]);
        net.heal();
        net.send(0, publish(3), 3);
        net.split(&[0]);
        assert_eq!(arrivals(&mut net), vec![]);
        net.heal();
        net.send(2, publish(4), 3);
        assert_eq!(arrivals(&mut net), vec![(2, 0, 4), (2, 1, 4)]);
    }

    #[test]
    fn a_bad_network_loses_duplicates_and_delays_past_the_round_by_seed() {
        let run = |seed| {
            let mut net = Network::new(Rng::new(seed), Faults::BAD);
            for n in 0..200u8 {
                net.send(0, publish(n), 2);
            }
            let mut rounds = Vec::new();
            while net.in_flight() > 0 {
                rounds.push(arrivals(&mut net).len());
            }
            (rounds, net.counts)
        };
        let (rounds, counts) = run(7);
        assert_eq!(run(7), (rounds.clone(), counts), "a seed replays exactly");
        assert!(
            counts.lost > 20 && counts.duplicated > 10 && counts.delayed > 10,
            "{counts:?}"
        );
        assert!(rounds.len() > 1, "some arrive rounds later: {rounds:?}");
        let arrived: usize = rounds.iter().sum();
        assert_eq!(arrived as u64, 200 - counts.lost + counts.duplicated);
    }
}
