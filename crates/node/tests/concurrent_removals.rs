//! Two admins remove a member each, concurrently: each removal gives the context a new secret,
//! sealed to the members its author knew (the other removed member among them). Every member
//! must end able to read every other, whatever order it heard the removals in, and neither
//! removed member may read what is written after.

mod common;

use common::{deliver, node as open, sent, settle, TestNode};

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::Role;
use tabnode_types::ContextId;

fn entries(node: &mut TestNode, ctx: &ContextId) -> Value {
    block_on(node.execute(ctx, "entries", json!({})))
        .unwrap()
        .output
}

/// A creates the context; B joins as an admin; C, D, X and Y as members; all settled.
fn six() -> ([TestNode; 6], ContextId) {
    let mut nodes = [1, 2, 3, 4, 5, 6].map(open);
    let app = block_on(nodes[0].install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(nodes[0].create_context(app, json!({}))).unwrap();
    for i in 1..6 {
        let role = if i == 1 { Role::Admin } else { Role::Member };
        let link = nodes[0].invite_as(&ctx, role, u64::MAX / 2).unwrap();
        block_on(nodes[i].join(&link)).unwrap();
        let [a, rest @ ..] = &mut nodes;
        settle(&mut [a, &mut rest[i - 1]]);
    }
    settle(&mut nodes.iter_mut().collect::<Vec<_>>());
    (nodes, ctx)
}

/// A removes X while B removes Y, neither having heard of the other's. C hears A's removal
/// first, D hears B's first; A and B hear each other's; X and Y hear both. Then everyone left
/// writes.
///
/// It fails today: each member takes the secret of whichever removal it took last (A ends on
/// B's, B on A's). A's removal of X sealed its secret to Y too (A had not heard of Y's
/// removal), so Y reads what B, its remover, sends after; and members on different secrets
/// stop reading each other (a delta under a former secret that comes after the operation that
/// replaced it is refused: without the check on Y, A ends without B's write). The
/// fix `docs/security.md` names: after concurrent secret-giving operations that count, the
/// current secret is a derivation of all their secrets (blake3 over them in id order), which
/// every remaining member holds and neither removed key can make; taken when the log is
/// judged, with each operation's secret kept (the former-secret rules then name the set of
/// operations, not one). Not done in this change.
#[test]

fn concurrent_removals_leave_every_member_on_one_secret() {
    let ([mut a, mut b, mut c, mut d, mut x, mut y], ctx) = six();
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

    let mut written = serde_json::Map::new();
    let mut out = Vec::new();
    for (name, node) in [("a", &mut a), ("b", &mut b), ("c", &mut c), ("d", &mut d)] {
        block_on(node.execute(&ctx, "set", json!({"key": name, "value": name}))).unwrap();
        let writes = sent(node);
        for (removed, who) in [(&x, "X"), (&y, "Y")] {
            assert!(
                writes
                    .iter()
                    .all(|(_, m)| removed.open_message(&ctx, m).is_err()),
                "{who} reads what {name} sends after its removal"
            );
        }
        written.insert(name.into(), json!(name));
        out.extend(writes);
    }
    for node in [&mut a, &mut b, &mut c, &mut d] {
        deliver(&out, node);
    }
    settle(&mut [&mut a, &mut b, &mut c, &mut d]);
    for (name, node) in [("a", &mut a), ("b", &mut b), ("c", &mut c), ("d", &mut d)] {
        assert_eq!(
            entries(node, &ctx),
            Value::Object(written.clone()),
            "{name}"
        );
    }
    let heads = |n: &mut TestNode| block_on(n.checkpoint(&ctx)).unwrap().heads;
    let first = heads(&mut a);
    for node in [&mut b, &mut c, &mut d] {
        assert_eq!(heads(node), first);
    }
}
