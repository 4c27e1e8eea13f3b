//! The membership log across nodes: an admin removes a member or changes a role; every member
//! ends with the same DAG and state whatever order the messages took, what the removed member
//! signed before stays, what it signed after (or concurrently) is void everywhere, and its own
//! node refuses its writes.

mod common;

use common::{deliver, node as open, sent, settle, TestNode};

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::{
    context_topic, seal_to, Delta, DeltaBody, MemberCert, MemberOp, NodeEvent, Role, Share,
    WireMessage,
};
use tabnode_store::MemoryStore;
use tabnode_types::{ContextId, PublicKey, SecretKey};

fn kv_store() -> Vec<u8> {
    common::guest("kv_store")
}

fn set(node: &mut TestNode, ctx: &ContextId, key: &str, value: &str) {
    block_on(node.execute(ctx, "set", json!({"key": key, "value": value}))).unwrap();
}

fn entries(node: &mut TestNode, ctx: &ContextId) -> Value {
    block_on(node.execute(ctx, "entries", json!({})))
        .unwrap()
        .output
}

fn position(
    node: &mut TestNode,
    ctx: &ContextId,
) -> (Vec<tabnode_types::DeltaId>, Option<tabnode_types::Hash>) {
    let cp = block_on(node.checkpoint(ctx)).unwrap();
    (cp.heads, cp.root_hash)
}

/// A creates the context; B and C join as members and have its state.
fn three() -> (TestNode, TestNode, TestNode, ContextId) {
    let (mut a, mut b, mut c) = (open(1), open(2), open(3));
    let app = block_on(a.install_app(&kv_store())).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    block_on(c.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b, &mut c]);
    (a, b, c, ctx)
}

fn voided(events: Vec<NodeEvent>) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, NodeEvent::Voided { .. }))
        .count()
}

#[test]
fn a_removed_member_keeps_what_it_wrote_before_and_nothing_after_on_every_node() {
    let (mut a, mut b, mut c, ctx) = three();
    set(&mut b, &ctx, "k1", "before");
    settle(&mut [&mut a, &mut b, &mut c]);

    // B writes again; only C hears it. A, not having seen it, removes B.
    set(&mut b, &ctx, "k2", "concurrent");
    let from_b = sent(&mut b);
    deliver(&from_b, &mut c);
    assert_eq!(entries(&mut c, &ctx)["k2"], json!("concurrent"));
    c.take_events();
    block_on(a.remove_member(&ctx, b.public_key())).unwrap();
    let from_a = sent(&mut a);
    // C learns of the removal after applying B's write: it voids it and rebuilds.
    deliver(&from_a, &mut c);
    assert_eq!(
        voided(c.take_events()),
        0,
        "already applied: rebuilt, not refused"
    );
    assert_eq!(entries(&mut c, &ctx), json!({"k1": "before"}));
    // A hears B's write after the removal: void on arrival.
    a.take_events();
    deliver(&from_b, &mut a);
    assert_eq!(voided(a.take_events()), 1);
    // B learns it was removed.
    deliver(&from_a, &mut b);
    settle(&mut [&mut a, &mut b, &mut c]);

    for node in [&mut a, &mut b, &mut c] {
        assert_eq!(entries(node, &ctx), json!({"k1": "before"}));
        assert!(block_on(node.replay(&ctx)).unwrap().matches);
        assert!(block_on(node.verify_audit(&ctx)).unwrap().ok);
    }
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));
    assert_eq!(position(&mut a, &ctx), position(&mut c, &ctx));

    let err = block_on(b.execute(&ctx, "set", json!({"key": "k3", "value": "after"}))).unwrap_err();
    assert_eq!(err.kind(), "Unauthorized", "{err}");
    assert!(err.to_string().contains("removed"), "{err}");
    let members: Vec<_> = a
        .members(&ctx)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(!members.contains(&b.public_key()));
    assert!(members.contains(&c.public_key()));
    // C still writes and A gets it; B, still listening, opens nothing sealed after its removal.
    let b_before = position(&mut b, &ctx);
    set(&mut c, &ctx, "k4", "still");
    let from_c = sent(&mut c);
    assert!(
        b.open_message(&ctx, &from_c[0].1).is_err(),
        "sealed with the new secret"
    );
    assert!(a.open_message(&ctx, &from_c[0].1).is_ok());
    b.take_events();
    deliver(&from_c, &mut a);
    deliver(&from_c, &mut b);
    settle(&mut [&mut a, &mut b, &mut c]);
    // Removed, B expects to open nothing new: no refusal is shown for each such message.
    assert!(!b.take_events().iter().any(
        |e| matches!(e, NodeEvent::SyncRejected { reason, .. } if reason.contains("does not open"))
    ));
    assert_eq!(
        entries(&mut a, &ctx),
        json!({"k1": "before", "k4": "still"})
    );
    assert_eq!(position(&mut a, &ctx), position(&mut c, &ctx));
    assert_eq!(entries(&mut b, &ctx), json!({"k1": "before"}));
    assert_eq!(position(&mut b, &ctx), b_before, "B learnt nothing new");
}

#[test]
fn a_member_away_during_a_removal_catches_up_and_an_old_invitation_still_gets_in() {
    let (mut a, mut b, mut c, ctx) = three();
    // An invitation made before the removal, redeemed after it.
    let old_invitation = a.invite(&ctx).unwrap();
    set(&mut c, &ctx, "k1", "v1");
    settle(&mut [&mut a, &mut b, &mut c]);
    // C is away while A removes B and writes on.
    block_on(a.remove_member(&ctx, b.public_key())).unwrap();
    set(&mut a, &ctx, "k2", "after the removal");
    settle(&mut [&mut a, &mut b]);
    assert_eq!(
        entries(&mut b, &ctx),
        json!({"k1": "v1"}),
        "B got nothing new"
    );
    // C comes back: under the former secret it gets the removal (with its share of the new
    // secret), then everything else.
    common::announce(&mut c);
    settle(&mut [&mut a, &mut b, &mut c]);
    assert_eq!(
        entries(&mut c, &ctx),
        json!({"k1": "v1", "k2": "after the removal"})
    );
    assert_eq!(position(&mut a, &ctx), position(&mut c, &ctx));

    // D joins with the old invitation: a member admits it and seals the current secret to it.
    let mut d = open(4);
    block_on(d.join(&old_invitation)).unwrap();
    for _ in 0..3 {
        common::tick(&mut d);
        common::tick(&mut a);
        settle(&mut [&mut a, &mut b, &mut c, &mut d]);
    }
    assert_eq!(
        entries(&mut d, &ctx),
        json!({"k1": "v1", "k2": "after the removal"})
    );
    assert_eq!(position(&mut a, &ctx), position(&mut d, &ctx));
    assert_eq!(
        entries(&mut b, &ctx),
        json!({"k1": "v1"}),
        "B still got nothing new"
    );
}

/// A member away during a removal and an app upgrade after it asks, under the former secret,
/// to catch up. Its request was refused ("no member"), so it never caught up: membership when
/// that secret was current was judged as a write's authority, and a write there is concurrent
/// with the upgrade, so void. (The fault simulation's `a_removed_members_concurrent_writes_
/// leave_one_state`, seed 17, ended so: the admin crashed before its removal and upgrade went
/// out, and every other member was away from them.)
#[test]
fn a_member_away_during_a_removal_and_an_upgrade_catches_up() {
    let (mut a, mut b, mut c, ctx) = three();
    set(&mut c, &ctx, "k1", "v1");
    settle(&mut [&mut a, &mut b, &mut c]);
    // B and C are away while A removes B, upgrades the app and writes on.
    block_on(a.remove_member(&ctx, b.public_key())).unwrap();
    let v2 = common::guest("kv_store_v2");
    block_on(a.upgrade_app(&ctx, &v2, Some("migrate_v1_to_v2".into()))).unwrap();
    set(&mut a, &ctx, "k2", "after the upgrade");
    sent(&mut a);
    // C comes back: its request under the former secret gets the removal (with its share of
    // the new secret), then the rest.
    common::announce(&mut c);
    a.take_events();
    settle(&mut [&mut a, &mut c]);
    assert_eq!(common::rejections(&mut a), Vec::<String>::new());
    assert_eq!(
        entries(&mut c, &ctx),
        json!({"k1": "v1", "k2": "after the upgrade"})
    );
    assert_eq!(position(&mut a, &ctx), position(&mut c, &ctx));
    assert_eq!(block_on(c.context_wasm(&ctx)).unwrap(), v2);
}

/// B admits D while A, not having heard of it, removes C: A's removal carries a share of the
/// new secret for B alone, and D holds the former secret from its welcome. D asked to catch up
/// under it and was refused everywhere ("no member": it was none when that secret was
/// current), and nothing gave it the new secret: cut off for good. Now an admin answers a
/// member admitted concurrently with the change with the new secret, sealed to its key.
#[test]
fn a_member_admitted_concurrently_with_a_removal_gets_the_new_secret() {
    let (mut a, mut b, c, ctx) = three();
    let mut d = open(4);
    block_on(d.join(&a.invite(&ctx).unwrap())).unwrap();
    common::handshake(&mut b, &mut d);
    block_on(a.remove_member(&ctx, c.public_key())).unwrap();
    let (from_a, from_b) = (sent(&mut a), sent(&mut b));
    for node in [&mut b, &mut d] {
        deliver(&from_a, node);
    }
    deliver(&from_b, &mut a);
    settle(&mut [&mut a, &mut b, &mut d]);
    common::announce(&mut d);
    settle(&mut [&mut a, &mut b, &mut d]);

    set(&mut d, &ctx, "k1", "by D");
    set(&mut a, &ctx, "k2", "by A");
    let from_d = sent(&mut d);
    assert!(c.open_message(&ctx, &from_d[0].1).is_err(), "C reads D");
    deliver(&from_d, &mut a);
    deliver(&from_d, &mut b);
    settle(&mut [&mut a, &mut b, &mut d]);
    for node in [&mut a, &mut b, &mut d] {
        assert_eq!(entries(node, &ctx), json!({"k1": "by D", "k2": "by A"}));
    }
    assert_eq!(position(&mut a, &ctx), position(&mut d, &ctx));
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));
}

#[test]
fn roles_change_through_the_log_and_only_admins_change_them() {
    let (mut a, mut b, mut c, ctx) = three();
    // A member cannot change membership.
    let err = block_on(c.remove_member(&ctx, b.public_key())).unwrap_err();
    assert_eq!(err.kind(), "Unauthorized");

    block_on(a.set_role(&ctx, c.public_key(), Role::Reader)).unwrap();
    settle(&mut [&mut a, &mut b, &mut c]);
    let err = block_on(c.execute(&ctx, "set", json!({"key": "x", "value": "1"}))).unwrap_err();
    assert_eq!(err.kind(), "Unauthorized");
    assert!(err.to_string().contains("reader"), "{err}");
    assert!(a
        .members(&ctx)
        .unwrap()
        .contains(&(c.public_key(), Role::Reader)));

    // Made an admin, C writes and removes B; everyone agrees.
    block_on(a.set_role(&ctx, c.public_key(), Role::Admin)).unwrap();
    settle(&mut [&mut a, &mut b, &mut c]);
    set(&mut c, &ctx, "x", "2");
    block_on(c.remove_member(&ctx, b.public_key())).unwrap();
    settle(&mut [&mut a, &mut b, &mut c]);
    assert_eq!(entries(&mut b, &ctx), json!({"x": "2"}));
    assert!(block_on(b.execute(&ctx, "set", json!({"key": "y", "value": "3"}))).is_err());
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));
    assert_eq!(position(&mut a, &ctx), position(&mut c, &ctx));
}

#[test]
fn the_log_survives_a_restart() {
    let store = MemoryStore::default();
    let mut a = common::opened(store.clone(), 1);
    let mut b = open(2);
    let app = block_on(a.install_app(&kv_store())).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b]);
    set(&mut b, &ctx, "k", "v");
    settle(&mut [&mut a, &mut b]);
    block_on(a.remove_member(&ctx, b.public_key())).unwrap();
    drop(a);
    let mut a = common::opened(store, 1);
    assert!(!a
        .members(&ctx)
        .unwrap()
        .iter()
        .any(|(k, _)| *k == b.public_key()));
    // B, not yet told, writes; A reopened still voids it.
    set(&mut b, &ctx, "late", "x");
    let from_b = sent(&mut b);
    deliver(&from_b, &mut a);
    assert_eq!(voided(a.take_events()), 1);
    assert_eq!(entries(&mut a, &ctx), json!({"k": "v"}));
}

fn probe() -> Vec<u8> {
    common::guest("probe")
}

/// A guest's `context_add_member` / `context_remove_member` become the caller's operations in
/// the membership log, made after the call (with the embedder's consent); a member who is no
/// admin gets each refused, without its user being asked.
#[test]
fn a_guest_changes_membership_with_its_callers_authority() {
    let (mut a, mut b, mut c) = (open(1), open(2), open(3));
    let app = block_on(a.install_app(&probe())).unwrap();
    for node in [&mut b, &mut c] {
        block_on(node.install_app(&probe())).unwrap();
    }
    let ctx = block_on(a.create_context(app, json!({"title": "t"}))).unwrap();
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    block_on(c.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b, &mut c]);

    // The embedders consent (see guest_authority.rs); C's user is never asked, as C is no
    // admin.
    a.set_guest_policy(tabnode_node::GuestPolicy::Allow);
    c.set_guest_policy(tabnode_node::GuestPolicy::Ask(Box::new(|request| {
        panic!("a request the node refuses anyway went to the user: {request:?}")
    })));
    let newcomer = tabnode_types::SecretKey::from_seed([77; 32]).public();
    let key_arg = |k: tabnode_types::PublicKey| json!({"key": k.0.to_vec()});
    let added = block_on(a.execute(&ctx, "add_member", key_arg(newcomer))).unwrap();
    assert_eq!(added.context_requests.len(), 1);
    assert_eq!(added.context_requests[0].request, "addMember");
    assert!(
        added.context_requests[0].error.is_none(),
        "{:?}",
        added.context_requests
    );
    let removed = block_on(a.execute(&ctx, "remove_member", key_arg(b.public_key()))).unwrap();
    assert!(removed.context_requests[0].op.is_some());
    settle(&mut [&mut a, &mut b, &mut c]);
    for node in [&a, &c] {
        let members = node.members(&ctx).unwrap();
        assert!(members.contains(&(newcomer, Role::Member)), "{members:?}");
        assert!(!members.iter().any(|(k, _)| *k == b.public_key()));
    }

    let refused = block_on(c.execute(&ctx, "remove_member", key_arg(a.public_key()))).unwrap();
    let error = refused.context_requests[0]
        .error
        .as_deref()
        .unwrap_or_default();
    assert!(error.contains("only admins"), "{error}");
    settle(&mut [&mut a, &mut b, &mut c]);
    assert!(a
        .members(&ctx)
        .unwrap()
        .contains(&(a.public_key(), Role::Admin)));
}

/// A guest's `context_create` makes a context on this node under an alias that
/// `context_resolve_alias` then finds; `context_delete` drops one, for its admins only.
#[test]
fn a_guest_creates_resolves_and_deletes_contexts() {
    let store = MemoryStore::default();
    let mut a = common::opened(store.clone(), 1);
    let mut b = open(2);
    let probe_app = block_on(a.install_app(&probe())).unwrap();
    let kv_app = block_on(a.install_app(&kv_store())).unwrap();
    block_on(b.install_app(&probe())).unwrap();
    let ctx = block_on(a.create_context(probe_app, json!({"title": "t"}))).unwrap();
    let args = json!({"app_id": kv_app.0.to_vec(), "args": "{}", "alias": "notes"});
    let spawned = block_on(a.execute(&ctx, "spawn", args.clone())).unwrap();
    let created = spawned.context_requests[0].context_id.expect("created");
    assert!(
        spawned.context_requests[0].error.is_none(),
        "{:?}",
        spawned.context_requests
    );
    assert!(a.context_ids().contains(&created));
    let resolved = block_on(a.execute(&ctx, "resolve", json!({"alias": "notes"}))).unwrap();
    assert_eq!(resolved.output, json!(created.0.to_vec()));
    assert_eq!(
        block_on(a.execute(&ctx, "resolve", json!({"alias": "none"})))
            .unwrap()
            .output,
        json!(null)
    );
    // The alias is taken; an app this node lacks is refused.
    let again = block_on(a.execute(&ctx, "spawn", args)).unwrap();
    assert!(again.context_requests[0]
        .error
        .as_deref()
        .unwrap()
        .contains("taken"));
    let missing = json!({"app_id": vec![9u8; 32], "args": "{}", "alias": "x"});
    let missing = block_on(a.execute(&ctx, "spawn", missing)).unwrap();
    assert!(missing.context_requests[0]
        .error
        .as_deref()
        .unwrap()
        .contains("not installed"));
    // The created context works; then it is deleted (the embedder consents), alias and all.
    block_on(a.execute(&created, "set", json!({"key": "k", "value": "v"}))).unwrap();
    a.set_guest_policy(tabnode_node::GuestPolicy::Allow);
    let drop_it = json!({"context": created.0.to_vec()});
    let dropped = block_on(a.execute(&ctx, "drop_context", drop_it.clone())).unwrap();
    assert!(
        dropped.context_requests[0].error.is_none(),
        "{:?}",
        dropped.context_requests
    );
    assert!(!a.context_ids().contains(&created));
    for ns in tabnode_store::Namespace::ALL {
        let left = block_on(tabnode_store::Store::scan_prefix(
            &store,
            ns,
            created.as_bytes(),
        ))
        .unwrap();
        assert!(
            left.is_empty(),
            "{ns:?} still holds {} rows of the deleted context",
            left.len()
        );
    }
    let meta = block_on(tabnode_store::Store::scan_prefix(
        &store,
        tabnode_store::Namespace::Meta,
        b"",
    ))
    .unwrap();
    assert!(
        !meta
            .iter()
            .any(|(k, v)| v == &created.0.to_vec() || k.windows(32).any(|w| w == created.0)),
        "no alias or setting of it is left"
    );
    assert_eq!(
        block_on(a.execute(&ctx, "resolve", json!({"alias": "notes"})))
            .unwrap()
            .output,
        json!(null)
    );
    // A member who is not an admin of the target cannot delete it.
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b]);
    let own = json!({"context": ctx.0.to_vec()});
    let refused = block_on(b.execute(&ctx, "drop_context", own)).unwrap();
    assert!(refused.context_requests[0]
        .error
        .as_deref()
        .unwrap()
        .contains("only an admin"));
    assert!(b.context_ids().contains(&ctx));
}

/// A member leaves: the others apply it (its key is out from there on, and they get a new
/// secret), and its node drops the context.
#[test]
fn a_member_leaves() {
    let (mut a, mut b, mut c, ctx) = three();
    set(&mut c, &ctx, "k1", "by C");
    settle(&mut [&mut a, &mut b, &mut c]);
    block_on(c.leave(&ctx)).unwrap();
    assert!(!c.context_ids().contains(&ctx), "C dropped it");
    settle(&mut [&mut a, &mut b, &mut c]);
    for node in [&a, &b] {
        let members = node.members(&ctx).unwrap();
        assert!(
            !members.iter().any(|(k, _)| *k == c.public_key()),
            "{members:?}"
        );
    }
    set(&mut b, &ctx, "k2", "by B");
    settle(&mut [&mut a, &mut b, &mut c]);
    assert_eq!(entries(&mut a, &ctx), json!({"k1": "by C", "k2": "by B"}));
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));
}

/// The key of the test node opened with `seed` (its first random draw, see [`FixedEnv`]).
fn node_key(seed: u8) -> SecretKey {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[seed; 32]);
    hasher.update(&1u64.to_le_bytes());
    SecretKey::from_seed(*hasher.finalize().as_bytes())
}

/// The deltas in what `node` published (opened with its own secrets).
fn deltas_in(node: &TestNode, ctx: &ContextId, messages: &common::Messages) -> Vec<Delta> {
    messages
        .iter()
        .filter_map(|(_, data)| match node.open_message(ctx, data) {
            Ok(WireMessage::Deltas(deltas)) => Some(deltas),
            _ => None,
        })
        .flatten()
        .collect()
}

fn admins(node: &TestNode, ctx: &ContextId) -> Vec<PublicKey> {
    let mut admins: Vec<_> = node
        .members(ctx)
        .unwrap()
        .into_iter()
        .filter(|(_, role)| *role == Role::Admin)
        .map(|(key, _)| key)
        .collect();
    admins.sort();
    admins
}

/// The secret M chooses for the shares it crafts.
const CHOSEN: [u8; 32] = [77; 32];

/// [`three`], and M (the node of seed 4) joins as an admin.
fn three_and_an_admin_m() -> (TestNode, TestNode, TestNode, TestNode, ContextId) {
    let (mut a, mut b, mut c, ctx) = three();
    let mut m = open(4);
    assert_eq!(node_key(4).public(), m.public_key());
    let far = u64::MAX / 2;
    block_on(m.join(&a.invite_as(&ctx, Role::Admin, far).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b, &mut c, &mut m]);
    (a, b, c, m, ctx)
}

/// M writes (everyone gets it) and its certificate, as its deltas carry it.
fn m_cert(
    a: &mut TestNode,
    b: &mut TestNode,
    c: &mut TestNode,
    m: &mut TestNode,
    ctx: &ContextId,
) -> MemberCert {
    set(m, ctx, "m", "by M");
    let from_m = sent(m);
    let cert = deltas_in(m, ctx, &from_m)[0].body.author_cert.clone();
    for node in [&mut *a, &mut *b, &mut *c] {
        deliver(&from_m, node);
    }
    settle(&mut [a, b, c]);
    assert_eq!(admins(a, ctx).len(), 2);
    cert
}

/// M's `Remove(remover)` on the parents of `removal` (A's of M), stamped before it, with
/// shares of [`CHOSEN`] for `to`.
fn counter_removal(
    m_key: &SecretKey,
    m_cert: &MemberCert,
    removal: &Delta,
    remover: PublicKey,
    to: &[&TestNode],
) -> Delta {
    let shares = to
        .iter()
        .map(|node| Share {
            member: node.public_key(),
            sealed: seal_to(
                &node.public_key(),
                &removal.body.context_id,
                [5; 32],
                &CHOSEN,
            )
            .unwrap(),
        })
        .collect();
    DeltaBody {
        context_id: removal.body.context_id,
        parents: removal.body.parents.clone(),
        author: m_key.public(),
        timestamp: removal.body.timestamp - 1,
        artifact: Vec::new(),
        root_hash: removal.body.root_hash,
        events: Vec::new(),
        genesis: None,
        author_cert: m_cert.clone(),
        op: Some(MemberOp::Remove {
            member: remover,
            shares,
        }),
    }
    .sign(m_key)
}

/// M strikes back at once: its counter-removal (with shares of a secret it chose) reaches C
/// before A's removal of M, and A's removal is lost on its way to C. The counter-removal
/// stands where it arrives (M is an admin there) but counts for nothing (it removes A, on
/// whom M's authority rests). C took the secret its shares carried all the same, sealed
/// everything with it from then on, and neither C nor the others could open what the other
/// side sent: cut off for good (the fault simulation's
/// `a_counter_removal_racing_the_removal_takes_nobody_down`, seed 14, ended so, with D).
#[test]
fn a_counter_removal_racing_the_removal_plants_no_secret() {
    let (mut a, mut b, mut c, mut m, ctx) = three_and_an_admin_m();
    let (m_key, m_cert) = (node_key(4), m_cert(&mut a, &mut b, &mut c, &mut m, &ctx));
    block_on(a.remove_member(&ctx, m.public_key())).unwrap();
    let from_a = sent(&mut a);
    let removal = deltas_in(&a, &ctx, &from_a).remove(0);
    deliver(&from_a, &mut b);
    let crafted = counter_removal(&m_key, &m_cert, &removal, a.public_key(), &[&b, &c]);
    let sealed = m
        .seal_for(&ctx, &WireMessage::Deltas(vec![crafted]))
        .unwrap();
    block_on(c.handle_message(&context_topic(&ctx), &sealed));

    // C's writes still reach A and B; anti-entropy brings C the removal.
    set(&mut c, &ctx, "k1", "by C");
    let from_c = sent(&mut c);
    assert!(
        a.open_message(&ctx, &from_c[0].1).is_ok(),
        "sealed with M's secret"
    );
    deliver(&from_c, &mut a);
    deliver(&from_c, &mut b);
    common::announce(&mut c);
    settle(&mut [&mut a, &mut b, &mut c]);
    set(&mut c, &ctx, "k2", "by C, after the removal");
    set(&mut a, &ctx, "k3", "by A");
    settle(&mut [&mut a, &mut b, &mut c]);
    let all = json!({"m": "by M", "k1": "by C", "k2": "by C, after the removal", "k3": "by A"});
    let admin = a.public_key();
    for node in [&mut a, &mut b, &mut c] {
        assert_eq!(entries(node, &ctx), all);
        assert_eq!(admins(node, &ctx), vec![admin]);
    }
    assert_eq!(position(&mut a, &ctx), position(&mut c, &ctx));
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));
}

/// Admin A removes admin M, and the others build on the removal. M, holding the former
/// secret, crafts `Remove(A)` on the removal's parents stamped just after them (so before the
/// removal by timestamp), carrying shares of a secret of its choosing, then sends a `Share`
/// of that secret, and a delta on top of its removal. The counter-removal counts for nothing
/// (it removes A, on whom M's authority rests, and A, senior to M, removed M concurrently), so
/// every member takes it, void, whatever the order; the rest every member refuses: A keeps
/// admin, M stays out, nobody takes M's secret, and the honest members converge with their
/// writes flowing.
#[test]
fn a_removed_admin_cannot_undo_its_removal_with_a_crafted_timestamp_nor_plant_a_secret() {
    let (mut a, mut b, mut c, mut m, ctx) = three_and_an_admin_m();
    let (m_key, m_cert) = (node_key(4), m_cert(&mut a, &mut b, &mut c, &mut m, &ctx));

    // A removes M; B and C apply it and B writes on it. M hears nothing of it.
    block_on(a.remove_member(&ctx, m.public_key())).unwrap();
    let from_a = sent(&mut a);
    let removal = deltas_in(&a, &ctx, &from_a).remove(0);
    deliver(&from_a, &mut b);
    deliver(&from_a, &mut c);
    set(&mut b, &ctx, "k1", "after the removal");
    settle(&mut [&mut a, &mut b, &mut c]);

    // M's counter-removal, and its share of a secret it chose.
    let share = |to: PublicKey| Share {
        member: to,
        sealed: seal_to(&to, &ctx, [5; 32], &CHOSEN).unwrap(),
    };
    let crafted = counter_removal(&m_key, &m_cert, &removal, a.public_key(), &[&b, &c]);
    let crafted_id = crafted.id();
    // And, having learnt of its removal, a delta after it (under the secret it replaced).
    let after = DeltaBody {
        parents: vec![removal.id()],
        timestamp: removal.body.timestamp + 1,
        ..crafted.body.clone()
    }
    .sign(&m_key);
    let mut messages = vec![
        WireMessage::Deltas(vec![crafted]),
        WireMessage::Deltas(vec![after]),
    ];
    for to in [b.public_key(), c.public_key()] {
        let share = share(to);
        let signature = m_key.sign(&WireMessage::share_message(&ctx, &crafted_id, &share));
        messages.push(WireMessage::Share {
            context_id: ctx,
            by: crafted_id,
            share,
            from: Box::new(m_cert.clone()),
            signature,
        });
    }
    // Sealed with the secret M holds (the one its removal replaced), then with the current
    // one, as if a member had leaked it to M.
    let topic = context_topic(&ctx);
    let seal_all = |sealer: &TestNode| -> Vec<Vec<u8>> {
        messages
            .iter()
            .map(|message| sealer.seal_for(&ctx, message).unwrap())
            .collect()
    };
    for sealed in [seal_all(&m), seal_all(&a)] {
        for node in [&mut a, &mut b, &mut c] {
            for data in &sealed {
                block_on(node.handle_message(&topic, data));
            }
        }
    }
    settle(&mut [&mut a, &mut b, &mut c]);

    for node in [&a, &b, &c] {
        assert_eq!(admins(node, &ctx), vec![a.public_key()]);
        assert!(!node
            .members(&ctx)
            .unwrap()
            .iter()
            .any(|(k, _)| *k == m.public_key()));
    }
    let refused = common::rejections(&mut b);
    for why in ["former secret", "no admin"] {
        assert!(
            refused.iter().any(|r| r.contains(why)),
            "{why}: {refused:?}"
        );
    }
    // Writes flow among the honest members, each sealed with a secret M never held.
    set(&mut a, &ctx, "k2", "by A");
    set(&mut b, &ctx, "k3", "by B");
    set(&mut c, &ctx, "k4", "by C");
    let from_c = sent(&mut c);
    assert!(m.open_message(&ctx, &from_c[0].1).is_err());
    deliver(&from_c, &mut a);
    deliver(&from_c, &mut b);
    settle(&mut [&mut a, &mut b, &mut c]);
    let all =
        json!({"m": "by M", "k1": "after the removal", "k2": "by A", "k3": "by B", "k4": "by C"});
    for node in [&mut a, &mut b, &mut c] {
        assert_eq!(entries(node, &ctx), all);
    }
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));
    assert_eq!(position(&mut a, &ctx), position(&mut c, &ctx));
}
