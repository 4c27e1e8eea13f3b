//! App upgrades: an admin moves a context to a new version of its app, whose
//! `#[app::migrate]` turns the state into the new shape on every member alike; writes
//! concurrent with the upgrade are void everywhere; a member who joins later replays the
//! whole history through both versions; nobody but an admin upgrades, and a failing
//! migration changes nothing.

mod common;

use common::{deliver, guest, node as open, sent, settle, TestNode};

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::NodeEvent;
use tabnode_types::{AppId, ContextId};

const MIGRATE: &str = "migrate_v1_to_v2";

fn call(node: &mut TestNode, ctx: &ContextId, method: &str, args: Value) -> Value {
    block_on(node.execute(ctx, method, args))
        .unwrap_or_else(|e| panic!("{method}: {e}"))
        .output
}

fn set(node: &mut TestNode, ctx: &ContextId, key: &str, value: &str) {
    call(node, ctx, "set", json!({"key": key, "value": value}));
}

fn position(node: &mut TestNode, ctx: &ContextId) -> (Vec<tabnode_types::DeltaId>, Value) {
    let cp = block_on(node.checkpoint(ctx)).unwrap();
    (cp.heads, json!(cp.root_hash.map(|h| h.to_string())))
}

/// A creates a kv-store (version 1) context with one item; B joins and has it.
fn two() -> (TestNode, TestNode, ContextId) {
    let (mut a, mut b) = (open(1), open(2));
    let app = AppId::of_wasm(&guest("kv_store"));
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    set(&mut a, &ctx, "before", "v1");
    settle(&mut [&mut a, &mut b]);
    (a, b, ctx)
}

#[test]
fn an_upgrade_migrates_the_state_on_every_member_and_later_writes_use_the_new_app() {
    let (mut a, mut b, ctx) = two();
    assert_eq!(call(&mut a, &ctx, "schema", json!({})), json!("1"));
    let v2 = guest("kv_store_v2");
    block_on(a.upgrade_app(&ctx, &v2, Some(MIGRATE.into()))).unwrap();
    assert_eq!(call(&mut a, &ctx, "schema", json!({})), json!("2"));
    b.take_events();
    settle(&mut [&mut a, &mut b]);
    // B got the binary with the operation, ran the same migration, and told its app's event.
    assert!(b
        .take_events()
        .iter()
        .any(|e| matches!(e, NodeEvent::Event { kind, local: false, .. } if kind == "Migrated")));
    for node in [&mut a, &mut b] {
        assert_eq!(call(node, &ctx, "schema", json!({})), json!("2"));
        assert_eq!(
            call(node, &ctx, "entries", json!({})),
            json!({"before": "v1"})
        );
        assert_eq!(block_on(node.context_wasm(&ctx)).unwrap(), v2);
    }
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));

    // Writes after the upgrade run on version 2 on both sides and converge.
    set(&mut b, &ctx, "after", "v2");
    set(&mut a, &ctx, "before", "changed");
    settle(&mut [&mut a, &mut b]);
    let both = json!({"after": "v2", "before": "changed"});
    for node in [&mut a, &mut b] {
        assert_eq!(call(node, &ctx, "entries", json!({})), both);
        let replay = block_on(node.replay(&ctx)).unwrap();
        assert!(replay.matches, "replay through both versions: {replay:?}");
        assert!(block_on(node.verify_audit(&ctx)).unwrap().ok);
    }
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));

    // A member who joins now (with version 1 installed only) replays the whole history.
    let mut c = open(3);
    block_on(c.join(&a.invite(&ctx).unwrap())).unwrap();
    settle(&mut [&mut a, &mut b, &mut c]);
    assert_eq!(call(&mut c, &ctx, "entries", json!({})), both);
    assert_eq!(call(&mut c, &ctx, "schema", json!({})), json!("2"));
    assert_eq!(position(&mut a, &ctx).1, position(&mut c, &ctx).1);
}

#[test]
fn a_write_concurrent_with_an_upgrade_is_void_on_every_member() {
    let (mut a, mut b, ctx) = two();
    // B writes with version 1 while A upgrades; neither has heard the other.
    set(&mut b, &ctx, "concurrent", "from B");
    let from_b = sent(&mut b);
    block_on(a.upgrade_app(&ctx, &guest("kv_store_v2"), Some(MIGRATE.into()))).unwrap();
    let from_a = sent(&mut a);
    deliver(&from_b, &mut a);
    assert!(a
        .take_events()
        .iter()
        .any(|e| matches!(e, NodeEvent::Voided { .. })));
    // B applied its own write first; the upgrade voids it there too, and B rebuilds.
    deliver(&from_a, &mut b);
    settle(&mut [&mut a, &mut b]);
    for node in [&mut a, &mut b] {
        assert_eq!(
            call(node, &ctx, "entries", json!({})),
            json!({"before": "v1"})
        );
        assert_eq!(call(node, &ctx, "schema", json!({})), json!("2"));
        assert!(block_on(node.replay(&ctx)).unwrap().matches);
    }
    assert_eq!(position(&mut a, &ctx), position(&mut b, &ctx));
    // B makes the write again, now on version 2; it stands.
    set(&mut b, &ctx, "concurrent", "again");
    settle(&mut [&mut a, &mut b]);
    assert_eq!(
        call(&mut a, &ctx, "entries", json!({})),
        json!({"before": "v1", "concurrent": "again"})
    );
}

#[test]
fn only_admins_upgrade_and_a_bad_upgrade_changes_nothing() {
    let (mut a, mut b, ctx) = two();
    let v2 = guest("kv_store_v2");
    let before = position(&mut a, &ctx);
    let err = block_on(b.upgrade_app(&ctx, &v2, Some(MIGRATE.into()))).unwrap_err();
    assert_eq!(err.kind(), "Unauthorized", "{err}");
    let err = block_on(a.upgrade_app(&ctx, &v2, Some("no_such_export".into()))).unwrap_err();
    assert_eq!(err.kind(), "MethodNotFound", "{err}");
    let err = block_on(a.upgrade_app(&ctx, &guest("kv_store"), None)).unwrap_err();
    assert_eq!(err.kind(), "BadArgs", "{err}");
    let err = block_on(a.upgrade_app(&ctx, b"not wasm", None)).unwrap_err();
    assert_eq!(err.kind(), "InvalidApp", "{err}");
    // A migration that fails (probe's `explode` panics) is refused before anyone sees it.
    let err = block_on(a.upgrade_app(&ctx, &guest("probe"), Some("explode".into())));
    assert!(err.is_err(), "{err:?}");
    assert_eq!(position(&mut a, &ctx), before, "nothing changed");
    assert!(sent(&mut a).is_empty(), "nothing sent");
    assert_eq!(call(&mut a, &ctx, "schema", json!({})), json!("1"));
}
