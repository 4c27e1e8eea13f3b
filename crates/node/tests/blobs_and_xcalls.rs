//! Blobs a call writes persist with the node; xcalls run after the call in the target context
//! (one the caller created: see `guest_authority.rs` for what a guest may not reach).

mod common;

use futures::executor::block_on;
use serde_json::json;
use tabnode_node::{FixedEnv, Node};
use tabnode_store::MemoryStore;
use tabnode_types::ContextId;

fn app(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/apps/dist/{name}.wasm",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}; run `bash tests/apps/build.sh`"))
}

fn open(store: MemoryStore) -> Node<MemoryStore, FixedEnv> {
    common::opened(store, 9)
}

#[test]
fn blobs_are_written_in_chunks_read_back_and_survive_a_restart() {
    let store = MemoryStore::default();
    let mut node = open(store.clone());
    let probe = block_on(node.install_app(&app("probe"))).unwrap();
    let ctx = block_on(node.create_context(probe, json!({"title": "t"}))).unwrap();
    let text = "0123456789".repeat(500);
    let stored = block_on(node.execute(&ctx, "store_blob", json!({"data": text}))).unwrap();
    assert_eq!(stored.blobs.len(), 1);
    let id = stored.output.clone();
    assert_eq!(id.as_array().unwrap().len(), 32);
    let read = block_on(node.execute(&ctx, "read_blob", json!({"id": id}))).unwrap();
    assert_eq!(read.output, json!(text));
    drop(node);

    let mut node = open(store);
    let read = block_on(node.execute(&ctx, "read_blob", json!({"id": id}))).unwrap();
    assert_eq!(read.output, json!(text), "the blob was persisted");
    let missing = block_on(node.execute(&ctx, "read_blob", json!({"id": vec![0u8; 32]}))).unwrap();
    assert_eq!(missing.output, json!(null));
}

#[test]
fn xcalls_run_in_the_target_context_after_the_call() {
    let mut node = open(MemoryStore::default());
    let probe = block_on(node.install_app(&app("probe"))).unwrap();
    let kv = block_on(node.install_app(&app("kv_store"))).unwrap();
    let caller = block_on(node.create_context(probe, json!({"title": "t"}))).unwrap();
    let spawn = json!({"app_id": kv.0.to_vec(), "args": "{}", "alias": "target"});
    let spawned = block_on(node.execute(&caller, "spawn", spawn)).unwrap();
    let target = spawned.context_requests[0].context_id.expect("created");
    let result = block_on(node.execute(
        &caller,
        "call_other",
        json!({"context": target.as_bytes().to_vec(), "key": "from", "value": "probe"}),
    ))
    .unwrap();
    assert_eq!(result.xcalls.len(), 1);
    assert_eq!(result.xcalls[0].context_id, target);
    assert_eq!(result.xcalls[0].error, None);
    let entries = block_on(node.execute(&target, "entries", json!({}))).unwrap();
    assert_eq!(entries.output, json!({"from": "probe"}));

    let nowhere = ContextId([3; 32]);
    let result = block_on(node.execute(
        &caller,
        "call_other",
        json!({"context": nowhere.as_bytes().to_vec(), "key": "k", "value": "v"}),
    ))
    .unwrap();
    let error = result.xcalls[0].error.as_deref().unwrap();
    assert!(error.contains("not known"), "{error}");
}

#[test]
fn the_app_sees_the_members_this_node_has_verified() {
    use tabnode_node::{Outgoing, Role};
    let mut a = open(MemoryStore::default());
    let mut b = common::opened(MemoryStore::default(), 10);
    let probe = block_on(a.install_app(&app("probe"))).unwrap();
    block_on(b.install_app(&app("probe"))).unwrap();
    let ctx = block_on(a.create_context(probe, json!({"title": "t"}))).unwrap();
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    // Deliver everything until quiet: B gets the state, A learns B from B's first write.
    for _ in 0..6 {
        for from_a in [true, false] {
            let (src, dst) = if from_a {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            for out in src.take_outgoing() {
                if let Outgoing::Publish { topic, data } = out {
                    block_on(dst.handle_message(&topic, &data));
                }
            }
        }
        // (Until a member admits B, B has no position to show.)
        if block_on(b.checkpoint(&ctx)).is_ok_and(|cp| !cp.heads.is_empty()) {
            block_on(b.execute(&ctx, "visit", json!({}))).ok();
        }
    }
    let members = a.members(&ctx).unwrap();
    let mut want = vec![
        (a.public_key(), Role::Admin),
        (b.public_key(), Role::Member),
    ];
    want.sort_by_key(|(k, _)| *k);
    assert_eq!(members, want);
    let seen = block_on(a.execute(&ctx, "members", json!({})))
        .unwrap()
        .output;
    assert_eq!(seen.as_array().unwrap().len(), 2);
    let yes =
        block_on(a.execute(&ctx, "is_member", json!({"key": b.public_key().0.to_vec()}))).unwrap();
    assert_eq!(yes.output, json!(true));
    let no = block_on(a.execute(&ctx, "is_member", json!({"key": vec![9u8; 32]}))).unwrap();
    assert_eq!(no.output, json!(false));
}
