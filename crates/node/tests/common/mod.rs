//! Shared by the node's integration tests: guest apps, nodes on memory stores, and a wire that
//! carries what nodes publish to each other (by hand, or `settle` from `tabnode-sim`).
#![allow(dead_code)]

pub mod store;

use futures::executor::block_on;
use tabnode_identity::grant::{
    hex_nonce, Capability, Grant, Revocation, Scope, SignedGrant, SignedRevocation,
};
use tabnode_node::{
    context_topic, Delta, FixedEnv, Invitation, MemberCert, Node, NodeEvent, Outgoing, WireMessage,
};
use tabnode_runtime::{Limits, Runtime};
use tabnode_store::{MemoryStore, Namespace, Store};
use tabnode_types::{ContextId, PublicKey, SecretKey};

pub type TestNode = Node<MemoryStore, FixedEnv>;
/// Published messages: (topic, sealed bytes).
pub type Messages = Vec<(String, Vec<u8>)>;

pub use tabnode_sim::guest;

/// A node on a fresh memory store (its key from `seed`), with kv-store installed.
pub fn node(seed: u8) -> TestNode {
    node_on(MemoryStore::default(), seed)
}

/// A node on `store` (a clone shares its data: a test restarts a node on it), kv-store installed,
/// given the time its env's clock reads (the test drives it: it moves the node's time with
/// `advance_to`).
pub fn node_on(store: MemoryStore, seed: u8) -> TestNode {
    let mut node = opened(store, seed);
    block_on(node.install_app(&guest("kv_store"))).unwrap();
    node
}

/// A creates a context of guest `app` on `store_a` and B (on a fresh store) joins it; both
/// settled.
pub fn two_members_of(app: &str, store_a: MemoryStore) -> (TestNode, TestNode, ContextId) {
    let mut a = node_on(store_a, 1);
    let id = block_on(a.install_app(&guest(app))).unwrap();
    let ctx = block_on(a.create_context(id, serde_json::json!({}))).unwrap();
    let mut b = node_on(MemoryStore::default(), 2);
    block_on(b.install_app(&guest(app))).unwrap();
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    tabnode_sim::settle(&mut [&mut a, &mut b]);
    (a, b, ctx)
}

/// A node opened on `store` (its key from `seed`, default limits), given the time its env's
/// clock reads; nothing installed.
pub fn opened<S: Store>(store: S, seed: u8) -> Node<S, FixedEnv> {
    clocked(
        block_on(Node::open(
            store,
            FixedEnv::new(seed),
            Runtime::new(Limits::default()),
        ))
        .unwrap(),
    )
}

/// `node`, given the time its env's clock reads (for tests that open nodes themselves).
pub fn clocked<S: Store, E: tabnode_node::Env + tabnode_node::Clock>(
    mut node: Node<S, E>,
) -> Node<S, E> {
    clock_in(&mut node);
    node
}

/// What `node` has published since it was last asked.
pub fn sent<S: Store>(node: &mut Node<S, FixedEnv>) -> Messages {
    node.take_outgoing()
        .into_iter()
        .filter_map(|out| match out {
            // Nodes here are given no peer ids, so they make no replies; one would go to all.
            Outgoing::Publish { topic, data } | Outgoing::Reply { topic, data, .. } => {
                Some((topic, data))
            }
            Outgoing::Subscribe { .. } => None,
        })
        .collect()
}

pub fn deliver<S: Store>(messages: &Messages, to: &mut Node<S, FixedEnv>) {
    for (topic, data) in messages {
        block_on(to.handle_message(topic, data));
    }
}

/// The reasons of the remote messages `node` refused since it was last asked (its other events
/// are taken too).
pub fn rejections<S: Store>(node: &mut Node<S, FixedEnv>) -> Vec<String> {
    refusals(node)
        .into_iter()
        .map(|(_, reason)| reason)
        .collect()
}

/// The kinds and reasons of the remote messages `node` refused since it was last asked (its
/// other events are taken too).
pub fn refusals<S: Store>(node: &mut Node<S, FixedEnv>) -> Vec<(String, String)> {
    node.take_events()
        .into_iter()
        .filter_map(|e| match e {
            NodeEvent::SyncRejected { kind, reason, .. } => Some((kind, reason)),
            _ => None,
        })
        .collect()
}

/// Delivers what `from` published to `to`.
pub fn relay<S: Store, T: Store>(from: &mut Node<S, FixedEnv>, to: &mut Node<T, FixedEnv>) {
    deliver(&sent(from), to);
}

/// The join handshake between `member` and `joiner` (which just called `join`): the
/// joiner's request, then the member's admission and welcome. The joiner's request for the
/// state is queued after it, not delivered.
pub fn handshake<S: Store, T: Store>(
    member: &mut Node<S, FixedEnv>,
    joiner: &mut Node<T, FixedEnv>,
) {
    relay(joiner, member);
    relay(member, joiner);
}

/// Everyone hears everyone until nobody has anything to say: publications reach every other
/// node, replies (to a sender's request) the sender alone. The simulated network's fault-free
/// case; `faults.rs` runs the faulty one.
#[allow(unused_imports)]
pub use tabnode_sim::{announce, clock_in, settle, tick};

/// A local root's grant of `client_key` (every context, admin). Long expired: the membership
/// log judges signatures, not clocks.
pub fn local_grant(client_key: PublicKey, root: &SecretKey) -> SignedGrant {
    SignedGrant::sign_local(admin_grant(client_key), root)
}

/// A grant of every capability to `client_key`, long expired (the log judges signatures, not
/// clocks), for a root to sign.
pub fn admin_grant(client_key: PublicKey) -> Grant {
    Grant {
        client_key,
        scope: Scope::All,
        capabilities: vec![Capability::Admin],
        not_before: 0,
        expires_at: 1,
        nonce: hex_nonce(client_key.0),
    }
}

/// A local root's revocation of `client_key`.
pub fn local_revocation(client_key: PublicKey, root: &SecretKey) -> SignedRevocation {
    let revocation = Revocation {
        client_key,
        nonce: hex_nonce([4; 32]),
    };
    SignedRevocation::sign_local(revocation, root)
}

/// Has `member` admit `key` with `invitation` (a link), as it would a joiner's node: the test
/// then holds an admitted member's key and the certificate it signs with. `member` records the
/// admission in the log (a delta of its own).
pub fn admit(member: &mut TestNode, invitation: &str, key: &SecretKey) -> MemberCert {
    let invitation = Invitation::decode(invitation).unwrap();
    let cert = invitation.redeem(key.public(), member.now()).unwrap();
    let request = WireMessage::JoinRequest {
        context_id: cert.context_id,
        cert: Box::new(cert.clone()),
    };
    let sealed = member.seal_handshake(&cert.context_id, &request);
    block_on(member.handle_message(&context_topic(&cert.context_id), &sealed));
    let refused = rejections(member);
    assert!(refused.is_empty(), "{refused:?}");
    cert
}

/// Seeds for a simulation: `TABNODE_SIM_SEED=S` replays one, `TABNODE_SIM_SEEDS=N` runs 1..=N
/// (else 1..=`default`).
pub fn sim_seeds(default: u64) -> Vec<u64> {
    match std::env::var("TABNODE_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("TABNODE_SIM_SEED is a number")],
        Err(_) => {
            let n = std::env::var("TABNODE_SIM_SEEDS").map_or(default, |n| {
                n.parse().expect("TABNODE_SIM_SEEDS is a number")
            });
            (1..=n).collect()
        }
    }
}

/// The deltas of `ctx` a node persisted, in the order it stored them (the node keeps them
/// under the context id and a sequence number).
pub fn stored_deltas<S: Store>(store: &S, ctx: &ContextId) -> Vec<Delta> {
    block_on(store.scan_prefix(Namespace::Deltas, ctx.as_bytes()))
        .unwrap()
        .into_iter()
        .map(|(_, bytes)| borsh::from_slice(&bytes).expect("a stored delta decodes"))
        .collect()
}

/// The node key a node persisted (tests that play a member's part sign with it).
pub fn stored_node_key<S: Store>(store: &S) -> SecretKey {
    let seed = block_on(store.get(Namespace::Keys, b"node"))
        .unwrap()
        .expect("the node keeps its key");
    SecretKey::from_seed(seed.try_into().expect("32 bytes"))
}

/// What a caught panic said (simulations report every failing seed, not only the first).
pub fn panic_text(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}
