//! Two admins remove a member each, concurrently: each removal gives the context a new secret,
//! sealed to the members its author knew (the other removed member among them). Every member
//! must end able to read every other, whatever order it heard the removals in, and neither
//! removed member may read what is written after. The context's secret is made by the judged
//! log: that of the latest secret-giving operations that count, combined when there are
//! several (see `docs/security.md`).

mod common;

use std::collections::HashSet;

use common::{announce, deliver, node_on, rejections, sent, settle, TestNode};

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::{Delta, Role, WireMessage, ANNOUNCE_NANOS};
use tabnode_sim::fork;
use tabnode_store::MemoryStore;
use tabnode_types::{ContextId, DeltaId};

fn entries(node: &mut TestNode, ctx: &ContextId) -> Value {
    block_on(node.execute(ctx, "entries", json!({})))
        .unwrap()
        .output
}

/// The first node creates the context; the nodes at `admins` join as admins (invited by the
/// first, so of one rank), the others as members; all settled. Each node's store is kept, to
/// fork.
fn six(admins: &[usize]) -> ([TestNode; 6], [MemoryStore; 6], ContextId) {
    let stores: [MemoryStore; 6] = Default::default();
    let mut nodes = [0, 1, 2, 3, 4, 5].map(|i| node_on(stores[i].clone(), i as u8 + 1));
    let app = block_on(nodes[0].install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(nodes[0].create_context(app, json!({}))).unwrap();
    for i in 1..6 {
        let role = match admins.contains(&i) {
            true => Role::Admin,
            false => Role::Member,
        };
        let link = nodes[0].invite_as(&ctx, role, u64::MAX / 2).unwrap();
        block_on(nodes[i].join(&link)).unwrap();
        let [a, rest @ ..] = &mut nodes;
        settle(&mut [a, &mut rest[i - 1]]);
    }
    // Each announces its heads, so each hears of every join.
    for node in nodes.iter_mut() {
        announce(node);
    }
    settle(&mut nodes.iter_mut().collect::<Vec<_>>());
    for node in &nodes {
        assert_eq!(
            node.members(&ctx).unwrap().len(),
            6,
            "every node knows every member"
        );
    }
    (nodes, stores, ctx)
}

/// Every remaining member writes, and every write reaches every other: none of them opens for
/// a removed key, and all end on one state and one secret, which no removed key holds.
fn write_and_settle(
    ctx: &ContextId,
    remaining: &mut [(&str, &mut TestNode)],
    removed: &[(&str, &TestNode)],
) {
    let mut written = match entries(remaining[0].1, ctx) {
        Value::Object(before) => before,
        other => panic!("entries: {other}"),
    };
    let mut out = Vec::new();
    for (_, node) in remaining.iter_mut() {
        rejections(node);
    }
    for (name, node) in remaining.iter_mut() {
        block_on(node.execute(ctx, "set", json!({"key": name, "value": name}))).unwrap();
        let writes = sent(node);
        for (who, key) in removed {
            assert!(
                writes
                    .iter()
                    .all(|(_, m)| key.open_message(ctx, m).is_err()),
                "{who} reads what {name} sends after its removal"
            );
        }
        written.insert((*name).into(), json!(name));
        out.extend(writes);
    }
    for (name, node) in remaining.iter_mut() {
        deliver(&out, node);
        let refused = rejections(node);
        assert!(
            refused.is_empty(),
            "{name} refused the others' writes: {refused:?}"
        );
    }
    settle(
        &mut remaining
            .iter_mut()
            .map(|(_, n)| &mut **n)
            .collect::<Vec<_>>(),
    );
    let first = remaining[0].1.secret_digest(ctx).unwrap();
    let heads = |n: &mut TestNode| block_on(n.checkpoint(ctx)).unwrap().heads;
    let first_heads = heads(remaining[0].1);
    for (name, node) in remaining.iter_mut() {
        assert_eq!(entries(node, ctx), Value::Object(written.clone()), "{name}");
        assert_eq!(
            node.secret_digest(ctx).unwrap(),
            first,
            "{name} seals with another secret"
        );
        assert_eq!(heads(node), first_heads, "{name}");
    }
    for (who, key) in removed {
        assert_ne!(
            key.secret_digest(ctx).unwrap(),
            first,
            "{who} holds the current secret"
        );
    }
}

/// A removes X while B removes Y, neither having heard of the other's. C hears A's removal
/// first, D hears B's first; A and B hear each other's; X and Y hear both. Then everyone left
/// writes.
///
/// It failed before the context's secret was made by the judged log: each member took the
/// secret of whichever removal it took last (A ended on B's, B on A's). A's removal of X
/// sealed its secret to Y too (A had not heard of Y's removal), so Y read what B, its remover,
/// sent after; and A, on the secret of B's removal, refused B's next write (a delta under a
/// former secret that comes after the operation that replaced it). Now every remaining member
/// seals with the combination of both removals' secrets, which neither X nor Y holds (each
/// lacks the secret of its own removal).
#[test]
fn concurrent_removals_leave_every_member_on_one_secret() {
    let ([mut a, mut b, mut c, mut d, mut x, mut y], _, ctx) = six(&[1]);
    block_on(a.remove_member(&ctx, x.public_key())).unwrap();
    block_on(b.remove_member(&ctx, y.public_key())).unwrap();
    let (from_a, from_b) = (sent(&mut a), sent(&mut b));
    deliver(&from_b, &mut a);
    deliver(&from_a, &mut b);
    deliver(&from_a, &mut c);
    deliver(&from_b, &mut c);
    deliver(&from_b, &mut d);
    deliver(&from_a, &mut d);
    // Each removed member hears both removals: the other's carries a share for it.
    for removed in [&mut x, &mut y] {
        deliver(&from_a, removed);
        deliver(&from_b, removed);
    }
    settle(&mut [&mut a, &mut b, &mut c, &mut d]);

    // B's next write: Y does not open it, and A takes it.
    block_on(b.execute(&ctx, "set", json!({"key": "b0", "value": "b0"}))).unwrap();
    let from_b = sent(&mut b);
    assert!(
        from_b.iter().all(|(_, m)| y.open_message(&ctx, m).is_err()),
        "Y reads what B, its remover, sends after removing it"
    );
    rejections(&mut a);
    deliver(&from_b, &mut a);
    assert_eq!(
        rejections(&mut a),
        Vec::<String>::new(),
        "A refuses B's write"
    );
    assert_eq!(
        entries(&mut a, &ctx)["b0"],
        json!("b0"),
        "A lacks B's write"
    );
    for node in [&mut c, &mut d] {
        deliver(&from_b, node);
    }

    write_and_settle(
        &ctx,
        &mut [("a", &mut a), ("b", &mut b), ("c", &mut c), ("d", &mut d)],
        &[("X", &x), ("Y", &y)],
    );
}

/// Q and P, two admins of one rank, remove each other at once: removals racing each other
/// both count (both are removed) until a third member builds on one alone. N hears P's
/// removal of Q first (it seals with its secret), then Q's of P (both count: it seals with
/// both secrets combined), then W's write on Q's removal alone: W vouched for it, not for
/// P's, so P's removal of Q stops counting and Q stays. The secret of P's removal (which P
/// made, and holds) must then seal nothing: N moves to the secret of Q's removal alone, which
/// every remaining member holds and P does not.
///
/// It failed before the context's secret was made by the judged log: N took the secret of
/// P's removal when it arrived (it stood and counted then), did not take Q's (Q stood removed
/// on its arrival), and kept P's once it stopped counting, so P, removed, read what N sent.
/// The same deltas, in every order to a member that heard none of them, leave it on that one
/// secret.
#[test]
fn the_secret_of_a_removal_that_stops_counting_seals_nothing() {
    let ([mut a, mut p, mut q, mut w, mut z, mut n], stores, ctx) = six(&[1, 2]);
    block_on(q.remove_member(&ctx, p.public_key())).unwrap();
    block_on(p.remove_member(&ctx, q.public_key())).unwrap();
    let (from_q, from_p) = (sent(&mut q), sent(&mut p));
    deliver(&from_q, &mut w);
    block_on(w.execute(&ctx, "set", json!({"key": "w0", "value": "w0"}))).unwrap();
    let from_w = sent(&mut w);
    for node in [&mut n, &mut z] {
        deliver(&from_p, node);
        deliver(&from_q, node);
        deliver(&from_w, node);
    }
    sent(&mut n);
    block_on(n.execute(&ctx, "set", json!({"key": "n0", "value": "n0"}))).unwrap();
    let from_n = sent(&mut n);
    assert!(
        from_n.iter().all(|(_, m)| p.open_message(&ctx, m).is_err()),
        "P reads what N sends, sealed with the secret of P's removal of Q, which stopped counting"
    );
    assert!(
        from_n.iter().all(|(_, m)| z.open_message(&ctx, m).is_ok()),
        "Z cannot read N"
    );
    assert_eq!(rejections(&mut n), Vec::<String>::new());
    assert_eq!(
        entries(&mut n, &ctx)["w0"],
        json!("w0"),
        "N lacks W's write"
    );
    let digest = n.secret_digest(&ctx).unwrap();

    // The same deltas, in every order, to A (which heard none of them).
    let made: Vec<Delta> = [&stores[1], &stores[2], &stores[3]]
        .into_iter()
        .flat_map(|store| common::stored_deltas(store, &ctx))
        .collect();
    let held: HashSet<DeltaId> = common::stored_deltas(&stores[0], &ctx)
        .iter()
        .map(Delta::id)
        .collect();
    let mut graph: Vec<Delta> = Vec::new();
    for delta in made {
        if !held.contains(&delta.id()) && !graph.iter().any(|d| d.id() == delta.id()) {
            graph.push(delta);
        }
    }
    assert_eq!(graph.len(), 3, "two removals and a write");
    let topic = tabnode_node::context_topic(&ctx);
    for order in [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ] {
        let mut observer = node_on(fork(&stores[0]), 1);
        for _pass in 0..3 {
            for delta in order.map(|i| graph[i].clone()) {
                let message = WireMessage::Deltas(vec![delta]);
                let sealed = observer.seal_for(&ctx, &message).unwrap();
                block_on(observer.handle_message(&topic, &sealed));
            }
        }
        assert_eq!(observer.pending(&ctx).unwrap(), 0, "order {order:?}");
        assert_eq!(
            observer.secret_digest(&ctx).unwrap(),
            digest,
            "order {order:?} ends on another secret"
        );
    }

    // A heard none of it: it asks on its timer, under the secret it has.
    for node in [&mut a, &mut q, &mut w, &mut z, &mut n] {
        node.env().advance(ANNOUNCE_NANOS);
        announce(node);
    }
    settle(&mut [&mut a, &mut q, &mut w, &mut z, &mut n]);
    write_and_settle(
        &ctx,
        &mut [
            ("a", &mut a),
            ("q", &mut q),
            ("w", &mut w),
            ("z", &mut z),
            ("n", &mut n),
        ],
        &[("P", &p)],
    );
}

/// J joins on A's invitation: A admits it (its welcome is lost) while admin B removes X, not
/// having heard of J. C takes both, and welcomes J again, with its secret: that of B's removal.
/// Then A, not having heard of B's removal, removes Y, sealing its secret to J among others.
/// Once J hears A's removal (from C, a member that is no admin: no one gives J a share) the two
/// removals are the latest, and every member seals with both secrets combined: J must too.
///
/// It failed before a welcome carried the parts its secret is made of: J held the secret of B's
/// removal without knowing it was that (B sealed it no share), so it could not combine it with
/// the share of A's removal and kept sealing with a secret the others had left, until an admin
/// heard it ask and gave it the part.
#[test]
fn a_joiner_welcomed_with_a_removals_secret_combines_a_concurrent_one_without_an_admin() {
    let ([mut a, mut b, mut c, mut d, mut x, mut y], _, ctx) = six(&[1]);
    let mut j = node_on(MemoryStore::default(), 7);
    rejections(&mut c);
    let link = a.invite_as(&ctx, Role::Member, u64::MAX / 2).unwrap();
    block_on(j.join(&link)).unwrap();
    let ask = sent(&mut j);
    deliver(&ask, &mut a);
    let admitted = sent(&mut a); // the admission, and a welcome J never gets
    block_on(b.remove_member(&ctx, x.public_key())).unwrap();
    let removed_x = sent(&mut b);
    deliver(&removed_x, &mut c);
    deliver(&admitted, &mut c);
    assert!(c
        .members(&ctx)
        .unwrap()
        .iter()
        .any(|(k, _)| *k == j.public_key()));
    assert_eq!(rejections(&mut c), Vec::<String>::new());
    // J asks again: C welcomes it with the secret of B's removal.
    deliver(&ask, &mut c);
    deliver(&sent(&mut c), &mut j);
    assert_eq!(
        j.secret_digest(&ctx).unwrap(),
        c.secret_digest(&ctx).unwrap()
    );
    // J catches up from C: it holds the removal now, and the welcome's secret.
    for _ in 0..3 {
        deliver(&sent(&mut j), &mut c);
        deliver(&sent(&mut c), &mut j);
    }
    assert!(!j
        .members(&ctx)
        .unwrap()
        .iter()
        .any(|(k, _)| *k == x.public_key()));

    // A removes Y, not having heard of X's removal; C takes it and moves on.
    block_on(a.remove_member(&ctx, y.public_key())).unwrap();
    let removed_y = sent(&mut a);
    let on_one = c.secret_digest(&ctx).unwrap();
    deliver(&removed_y, &mut c);
    assert_ne!(c.secret_digest(&ctx).unwrap(), on_one, "C combines both");
    // J asks under the secret C left; C, no admin, answers with A's removal alone.
    j.env().advance(ANNOUNCE_NANOS);
    announce(&mut j);
    for _ in 0..3 {
        deliver(&sent(&mut j), &mut c);
        let answered = sent(&mut c);
        let shares = answered
            .iter()
            .filter(|(_, m)| matches!(c.open_message(&ctx, m), Ok(WireMessage::Share { .. })))
            .count();
        assert_eq!(shares, 0, "C, no admin, gives no share");
        deliver(&answered, &mut j);
    }
    assert_eq!(
        j.secret_digest(&ctx).unwrap(),
        c.secret_digest(&ctx).unwrap(),
        "J is not on the secret both removals make"
    );

    // Everyone hears everything; those left write and read each other, X and Y read nothing.
    deliver(&removed_x, &mut a);
    for node in [&mut b, &mut d] {
        deliver(&admitted, node);
        deliver(&removed_y, node);
        deliver(&removed_x, node);
    }
    for node in [&mut a, &mut b, &mut c, &mut d, &mut j] {
        node.env().advance(ANNOUNCE_NANOS);
        announce(node);
    }
    settle(&mut [&mut a, &mut b, &mut c, &mut d, &mut j]);
    for removed in [&mut x, &mut y] {
        sent(removed);
    }
    write_and_settle(
        &ctx,
        &mut [
            ("a", &mut a),
            ("b", &mut b),
            ("c", &mut c),
            ("d", &mut d),
            ("j", &mut j),
        ],
        &[("X", &x), ("Y", &y)],
    );
}
