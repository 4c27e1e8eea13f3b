//! The relay as a gossip hub. Gossipsub forwards only topics a node is on itself, so the relay
//! joins every topic one of its peers is on, up to `--max-topics-per-peer` a peer (each topic
//! joined costs a subscription announced to every peer, a mesh and heartbeat work). It checks
//! what peers publish: the size, and a budget per peer in messages and bytes a minute. A message
//! over either is rejected, which lowers its sender's gossipsub score (see [`topic_score`]).

use std::time::{Duration, Instant};

use libp2p::gossipsub::{
    self, AllowAllSubscriptionFilter, IdentTopic, MaxCountSubscriptionFilter, MessageAcceptance,
    TopicHash, TopicScoreParams,
};
use libp2p::PeerId;

use crate::config::Limits;
use crate::{add, metrics, remove, Relay};

/// Gossipsub's own cap on the topics one peer may be on, as a multiple of `--max-topics-per-peer`:
/// past the relay's cap it joins no more topics for the peer, past this gossipsub does not even
/// record the subscriptions (they cost memory), refusing the whole request that goes over it.
const HARD_TOPIC_FACTOR: usize = 4;

/// The gossipsub behaviour with the per-peer subscription bound.
pub type Gossipsub = gossipsub::Behaviour<
    gossipsub::IdentityTransform,
    MaxCountSubscriptionFilter<AllowAllSubscriptionFilter>,
>;

/// Gossipsub's subscription filter: at most [`HARD_TOPIC_FACTOR`] × the relay's cap per peer.
pub fn subscription_filter(
    limits: &Limits,
) -> MaxCountSubscriptionFilter<AllowAllSubscriptionFilter> {
    let hard = limits.max_topics_per_peer.saturating_mul(HARD_TOPIC_FACTOR);
    MaxCountSubscriptionFilter {
        filter: AllowAllSubscriptionFilter {},
        max_subscribed_topics: hard,
        max_subscriptions_per_request: hard,
    }
}

/// Scores per topic: n invalid or oversize messages cost −20 × n² (n decaying to a tenth in ten
/// minutes), so three put a peer under the graylist threshold (−80), where its gossip is
/// ignored (messages over a peer's budget are dropped but cost nothing). Quiet members are normal here, so delivery deficits cost nothing.
pub fn topic_score() -> TopicScoreParams {
    TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 3600.0,
        first_message_deliveries_weight: 0.1,
        first_message_deliveries_cap: 100.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -20.0,
        invalid_message_deliveries_decay: gossipsub::score_parameter_decay(Duration::from_secs(
            600,
        )),
        ..TopicScoreParams::default()
    }
}

/// A gossip message's id: the first 20 bytes of the SHA-256 of its data, as tabnode peers make
/// it (`tabnode_net::message_id`; this workspace is on another libp2p, so it cannot share the
/// function: a test on each side pins the same id for the same bytes).
pub fn message_id(data: &[u8]) -> gossipsub::MessageId {
    use sha2::Digest;
    gossipsub::MessageId::from(sha2::Sha256::digest(data)[..20].to_vec())
}

/// A token bucket holding up to a minute's allowance, refilled continuously.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
}

impl Bucket {
    fn refill(&mut self, per_minute: f64, elapsed: Duration) {
        self.level = (self.level + per_minute * elapsed.as_secs_f64() / 60.0).min(per_minute);
    }
}

/// What one peer may still publish: messages and bytes, each a token bucket of a minute's
/// allowance. Kept after the peer disconnects until full again, so reconnecting buys nothing.
#[derive(Debug, Clone)]
pub struct Budget {
    messages: Bucket,
    bytes: Bucket,
    at: Instant,
}

impl Budget {
    fn full(limits: &Limits, now: Instant) -> Budget {
        Budget {
            messages: Bucket {
                level: f64::from(limits.gossip_rate_per_peer),
            },
            bytes: Bucket {
                level: limits.gossip_bytes_per_peer as f64,
            },
            at: now,
        }
    }

    fn refill(&mut self, limits: &Limits, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at);
        self.messages
            .refill(f64::from(limits.gossip_rate_per_peer), elapsed);
        self.bytes
            .refill(limits.gossip_bytes_per_peer as f64, elapsed);
        self.at = now;
    }

    /// Takes one message of `bytes` if both budgets have room (a budget of 0 is no limit).
    fn take(&mut self, limits: &Limits, bytes: usize, now: Instant) -> bool {
        self.refill(limits, now);
        let messages_ok = limits.gossip_rate_per_peer == 0 || self.messages.level >= 1.0;
        let bytes_ok = limits.gossip_bytes_per_peer == 0 || self.bytes.level >= bytes as f64;
        if messages_ok && bytes_ok {
            self.messages.level -= 1.0;
            self.bytes.level -= bytes as f64;
        }
        messages_ok && bytes_ok
    }

    fn is_full(&self, limits: &Limits) -> bool {
        self.messages.level >= f64::from(limits.gossip_rate_per_peer)
            && self.bytes.level >= limits.gossip_bytes_per_peer as f64
    }
}

impl Relay {
    pub(crate) fn on_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Subscribed { peer_id, topic } => {
                tracing::info!(peer = %peer_id, %topic, "peer subscribed");
                self.join(peer_id, topic);
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                tracing::info!(peer = %peer_id, %topic, "peer unsubscribed");
                self.leave(&peer_id, &topic);
            }
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                self.metrics.gossip_received.inc();
                let acceptance = match self.check(&propagation_source, message.data.len()) {
                    Ok(()) => MessageAcceptance::Accept,
                    Err(reason) => {
                        self.metrics
                            .gossip_rejected
                            .get_or_create(&metrics::Reason { reason })
                            .inc();
                        tracing::warn!(
                            peer = %propagation_source,
                            topic = %message.topic,
                            bytes = message.data.len(),
                            reason,
                            "gossip message rejected"
                        );
                        // An oversize message is never honest (a tabnode node caps its own):
                        // it counts against the sender's score. One over the budget is dropped
                        // unpenalised: an honest member writing fast (an import, answering a
                        // joiner) is throttled, not graylisted for minutes.
                        match reason {
                            "rate_limit" => MessageAcceptance::Ignore,
                            _ => MessageAcceptance::Reject,
                        }
                    }
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, acceptance);
            }
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => {
                tracing::debug!(peer = %peer_id, ?failed_messages, "slow gossip peer");
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                tracing::debug!(peer = %peer_id, "peer does not speak gossipsub");
            }
        }
    }

    /// Whether a message of `bytes` from `source` may pass: within the size limit and, unless
    /// `source` is another relay (which forwards for many peers), within its budget.
    fn check(&mut self, source: &PeerId, bytes: usize) -> Result<(), &'static str> {
        if bytes > self.limits.max_message_bytes {
            return Err("oversize");
        }
        if self.relays.contains(source) {
            return Ok(());
        }
        let now = Instant::now();
        let limits = &self.limits;
        let budget = self
            .budgets
            .entry(*source)
            .or_insert_with(|| Budget::full(limits, now));
        if budget.take(limits, bytes, now) {
            Ok(())
        } else {
            Err("rate_limit")
        }
    }

    /// A peer joined a topic: the relay joins it too, unless the peer is another relay or is
    /// already on `--max-topics-per-peer` topics here.
    fn join(&mut self, peer: PeerId, topic: TopicHash) {
        if self.relays.contains(&peer) || self.topics.get(&topic).is_some_and(|p| p.contains(&peer))
        {
            return;
        }
        if self.joined.get(&peer).copied().unwrap_or(0) >= self.limits.max_topics_per_peer {
            self.metrics.refuse("topic", "max_topics_per_peer");
            tracing::warn!(
                peer = %peer,
                %topic,
                limit = self.limits.max_topics_per_peer,
                "topic not joined: the peer is on as many topics as it may be"
            );
            return;
        }
        add(&mut self.joined, peer);
        let peers = self.topics.entry(topic.clone()).or_default();
        let first = peers.is_empty();
        peers.insert(peer);
        if first {
            let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
            let ident = IdentTopic::new(topic.as_str());
            if let Err(e) = gossipsub.set_topic_params(ident.clone(), topic_score()) {
                tracing::warn!(%topic, "cannot score the topic: {e}");
            }
            if let Err(e) = gossipsub.subscribe(&ident) {
                tracing::warn!(%topic, "cannot subscribe: {e}");
            }
            self.metrics.gossip_topics.set(self.topics.len() as i64);
        }
    }

    /// A peer left a topic: when no (non-relay) peer is left on it, the relay leaves it too,
    /// so topics do not pile up over weeks of uptime.
    pub(crate) fn leave(&mut self, peer: &PeerId, topic: &TopicHash) {
        let Some(peers) = self.topics.get_mut(topic) else {
            return;
        };
        if peers.remove(peer) {
            remove(&mut self.joined, peer);
        }
        if peers.is_empty() {
            self.topics.remove(topic);
            self.swarm
                .behaviour_mut()
                .gossipsub
                .unsubscribe(&IdentTopic::new(topic.as_str()));
            self.metrics.gossip_topics.set(self.topics.len() as i64);
            tracing::info!(%topic, "no peer left on the topic: left it");
        }
    }

    pub(crate) fn leave_all(&mut self, peer: &PeerId) {
        let topics: Vec<TopicHash> = self
            .topics
            .iter()
            .filter(|(_, peers)| peers.contains(peer))
            .map(|(t, _)| t.clone())
            .collect();
        for topic in topics {
            self.leave(peer, &topic);
        }
    }

    /// Forgets the budgets that are full again: those peers are as new.
    pub(crate) fn forget_full_budgets(&mut self) {
        let now = Instant::now();
        let limits = &self.limits;
        self.budgets.retain(|_, budget| {
            budget.refill(limits, now);
            !budget.is_full(limits)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_those_tabnode_peers_make() {
        // The same bytes and id are pinned in tabnode-net (`swarm::tests`).
        let id = message_id(b"abc");
        assert_eq!(id.to_string(), "ba7816bf8f01cfea414140de5dae2223b00361a3");
    }
}
