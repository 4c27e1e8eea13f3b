//! Joining from a link alone: a node that lacks the app an invitation names fetches it from the
//! members, part by part, checks each part against the app id, installs it and joins. Parts
//! that do not hash to the app id, or come from no member, are refused and the right ones then
//! taken; a lost part is asked for again; a key with no good invitation gets nothing.

mod common;

use common::{guest, node_on, refusals, sent, settle, Messages, TestNode};

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::{
    seal_to, Content, FixedEnv, Node, NodeEvent, SealedPart, WireMessage, ANNOUNCE_NANOS,
    APP_PART_BYTES,
};
use tabnode_runtime::{Limits, Runtime};
use tabnode_sim::{Faults, Sim};
use tabnode_store::MemoryStore;
use tabnode_types::{AppId, ContextId, SecretKey};

/// A node with no app installed.
fn bare_node(seed: u8) -> TestNode {
    let env = FixedEnv::new(seed);
    common::clocked(
        block_on(Node::open(
            MemoryStore::default(),
            env,
            Runtime::new(Limits::default()),
        ))
        .unwrap(),
    )
}

/// A member (on `store`, so a test can sign as it) with kv-store, a context, and a value set.
fn member_with_context(store: MemoryStore) -> (TestNode, ContextId) {
    let mut member = node_on(store, 1);
    let app = AppId::of_wasm(&guest("kv_store"));
    let ctx = block_on(member.create_context(app, json!({}))).unwrap();
    let set = json!({"key": "greeting", "value": "hello"});
    block_on(member.execute(&ctx, "set", set)).unwrap();
    (member, ctx)
}

fn entries(node: &mut TestNode, ctx: &ContextId) -> Value {
    block_on(node.execute(ctx, "entries", json!({})))
        .unwrap()
        .output
}

/// The app parts among `messages` (handshake messages of `ctx`), with their position.
fn app_parts(node: &TestNode, ctx: &ContextId, messages: &Messages) -> Vec<(usize, WireMessage)> {
    messages
        .iter()
        .enumerate()
        .filter_map(|(i, (_, data))| match node.open_handshake(ctx, data)? {
            part @ WireMessage::AppPart { .. } => Some((i, part)),
            _ => None,
        })
        .collect()
}

fn progress(node: &mut TestNode) -> Vec<(u64, u64)> {
    node.take_events()
        .into_iter()
        .filter_map(|e| match e {
            NodeEvent::AppProgress {
                received, total, ..
            } => Some((received, total)),
            _ => None,
        })
        .collect()
}

fn deliver(messages: &Messages, to: &mut TestNode) {
    for (topic, data) in messages {
        block_on(to.handle_message(topic, data));
    }
}

#[test]
fn a_node_without_the_app_joins_from_a_link_and_converges() {
    let (mut member, ctx) = member_with_context(MemoryStore::default());
    let wasm = guest("kv_store");
    assert!(
        wasm.len() > APP_PART_BYTES,
        "kv-store comes in more than one part"
    );
    let mut joiner = bare_node(2);
    let invitation = member.invite(&ctx).unwrap();
    assert_eq!(block_on(joiner.join(&invitation)).unwrap(), ctx);
    assert!(joiner.is_joining(&ctx));

    settle(&mut [&mut member, &mut joiner]);
    let events = joiner.take_events();
    let steps: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            NodeEvent::AppProgress {
                received, total, ..
            } => Some((*received, *total)),
            _ => None,
        })
        .collect();
    let total = wasm.len() as u64;
    assert_eq!(
        steps,
        vec![(APP_PART_BYTES as u64, total), (total, total)],
        "progress part by part: {events:?}"
    );
    assert!(events.iter().any(|e| matches!(e, NodeEvent::Joined { .. })));
    assert_eq!(entries(&mut joiner, &ctx), json!({"greeting": "hello"}));

    // A member now: it writes, and the member it fetched from sees it.
    let set = json!({"key": "from", "value": "joiner"});
    block_on(joiner.execute(&ctx, "set", set)).unwrap();
    settle(&mut [&mut member, &mut joiner]);
    assert_eq!(entries(&mut member, &ctx), entries(&mut joiner, &ctx));
    assert_eq!(entries(&mut member, &ctx)["from"], "joiner");
}

#[test]
fn a_part_that_does_not_hash_to_the_app_id_is_refused_and_the_right_one_then_taken() {
    let store = MemoryStore::default();
    let (mut member, ctx) = member_with_context(store.clone());
    let member_key = common::stored_node_key(&store);
    let mut joiner = bare_node(2);
    let invitation = member.invite(&ctx).unwrap();
    block_on(joiner.join(&invitation)).unwrap();
    deliver(&sent(&mut joiner), &mut member);
    let answer = sent(&mut member);
    let parts = app_parts(&member, &ctx, &answer);
    assert_eq!(parts.len(), 2, "the whole app, in two parts");

    // The member's own first part, its bytes changed, sealed to the joiner and signed by the
    // member as a real part is: only the app id tells it from the right one.
    let WireMessage::AppPart { app_id, part, .. } = parts[0].1.clone() else {
        unreachable!()
    };
    let mut wrong = guest("kv_store")[..APP_PART_BYTES].to_vec();
    wrong[1000] ^= 1;
    let sealed = seal_to(&part.to, &ctx, [7; 32], &wrong).unwrap();
    let signed = SealedPart::signed_message(
        Content::App,
        (&ctx, &app_id.0),
        (part.size, part.index, &part.to, &sealed),
    );
    let provider = part.provider.clone();
    let forged = |sealed: Vec<u8>, key: &SecretKey, provider| WireMessage::AppPart {
        context_id: ctx,
        app_id,
        part: SealedPart {
            signature: key.sign(&signed),
            sealed,
            provider,
            ..part.clone()
        },
    };
    let tampered = member.seal_handshake(&ctx, &forged(sealed.clone(), &member_key, provider));
    let topic = answer[0].0.clone();
    block_on(joiner.handle_message(&topic, &tampered));
    let refused = refusals(&mut joiner);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "AppHashMismatch", "{refused:?}");

    // The same part signed by a key that is no member (a certificate of another context).
    let stranger_key = SecretKey::from_seed([9; 32]);
    let mut other = bare_node(3);
    block_on(other.install_app(&guest("kv_store"))).unwrap();
    let other_ctx = block_on(other.create_context(app_id, json!({}))).unwrap();
    let other_invite = other.invite(&other_ctx).unwrap();
    let cert = common::admit(&mut other, &other_invite, &stranger_key);
    let from_stranger = member.seal_handshake(&ctx, &forged(sealed, &stranger_key, Box::new(cert)));
    block_on(joiner.handle_message(&topic, &from_stranger));
    let refused = refusals(&mut joiner);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "AppPartNotFromMember", "{refused:?}");
    assert!(joiner.is_joining(&ctx), "nothing was kept");

    // The member's real parts are taken, and the join goes on.
    deliver(&answer, &mut joiner);
    let total = guest("kv_store").len() as u64;
    assert_eq!(progress(&mut joiner).last(), Some(&(total, total)));
    settle(&mut [&mut member, &mut joiner]);
    assert_eq!(entries(&mut joiner, &ctx), json!({"greeting": "hello"}));
}

#[test]
fn a_lost_part_is_asked_for_again_alone() {
    let (mut member, ctx) = member_with_context(MemoryStore::default());
    let mut joiner = bare_node(2);
    let invitation = member.invite(&ctx).unwrap();
    block_on(joiner.join(&invitation)).unwrap();
    deliver(&sent(&mut joiner), &mut member);
    let answer = sent(&mut member);
    let parts = app_parts(&member, &ctx, &answer);
    // The first part is lost on the way.
    let kept: Messages = answer
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != parts[0].0)
        .map(|(_, m)| m.clone())
        .collect();
    deliver(&kept, &mut joiner);
    assert_eq!(progress(&mut joiner).len(), 1, "the second part came");

    // Nothing more comes: the joiner asks again, for the lost part alone.
    joiner.advance_to(joiner.now() + ANNOUNCE_NANOS);
    common::tick(&mut joiner);
    deliver(&sent(&mut joiner), &mut member);
    let again = sent(&mut member);
    let parts = app_parts(&member, &ctx, &again);
    assert_eq!(parts.len(), 1, "only the part that was lost");
    assert!(matches!(&parts[0].1, WireMessage::AppPart { part, .. } if part.index == 0));
    deliver(&again, &mut joiner);
    let total = guest("kv_store").len() as u64;
    assert_eq!(progress(&mut joiner), vec![(total, total)]);
    settle(&mut [&mut member, &mut joiner]);
    assert_eq!(entries(&mut joiner, &ctx), json!({"greeting": "hello"}));
}

#[test]
fn a_key_whose_invitation_is_used_up_gets_no_part_of_the_app() {
    let (mut member, ctx) = member_with_context(MemoryStore::default());
    let mut joiner = bare_node(2);
    let invitation = member.invite(&ctx).unwrap();
    block_on(joiner.join(&invitation)).unwrap();
    settle(&mut [&mut member, &mut joiner]);
    assert!(!joiner.is_joining(&ctx), "admitted");

    // The link leaked: another node redeems it after its one use.
    let mut late = bare_node(3);
    block_on(late.join(&invitation)).unwrap();
    deliver(&sent(&mut late), &mut member);
    let refused = refusals(&mut member);
    assert!(
        refused.iter().any(|(_, r)| r.contains("already used")),
        "{refused:?}"
    );
    let answer = sent(&mut member);
    assert!(app_parts(&member, &ctx, &answer).is_empty());
}

/// Joining from a link through a network that loses a third of the messages (the simulator's):
/// the joiner asks again for what is lost until it holds the app and the state.
#[test]
fn a_node_without_the_app_joins_through_a_lossy_network() {
    for seed in common::sim_seeds(4) {
        let faults = Faults {
            loss: 33,
            ..Faults::NONE
        };
        let mut sim = Sim::new(seed, faults);
        let member = sim.add_member();
        let joiner = sim.add_member();
        let app = block_on(sim.node(member).install_app(&guest("kv_store"))).unwrap();
        let ctx = block_on(sim.node(member).create_context(app, json!({}))).unwrap();
        let set = json!({"key": "greeting", "value": "hello"});
        block_on(sim.node(member).execute(&ctx, "set", set)).unwrap();
        let invitation = sim.node(member).invite(&ctx).unwrap();
        block_on(sim.node(joiner).join(&invitation)).unwrap();
        let rounds = sim.run_until(400, |sim| {
            block_on(sim.node(joiner).execute(&ctx, "entries", json!({})))
                .is_ok_and(|r| r.output == json!({"greeting": "hello"}))
        });
        assert!(rounds.is_some(), "seed {seed}: the joiner never caught up");
    }
}
