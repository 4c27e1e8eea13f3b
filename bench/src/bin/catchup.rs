//! Catch-up benchmark (issue 7), natively: a member writes N deltas, then a late joiner catches
//! up from it over the in-process wire, once by deltas alone and once taking the member's state
//! snapshot. Prints the times and the bytes on the wire, against the time the deltas took to
//! make and the artifacts' own size, measured in the same run.
//!
//! `tabnode-catchup [KV_STORE_WASM] [DELTAS]` (default 10,000 deltas over 100 keys: the map stays
//! small, so the figures are about sync, not calimero-storage's index growth).

use std::time::Instant;

use futures::executor::block_on;
use serde_json::json;
use tabnode_node::{FixedEnv, Node, Outgoing, WireMessage};
use tabnode_runtime::{Limits, Runtime};
use tabnode_store::MemoryStore;
use tabnode_types::ContextId;

type TestNode = Node<MemoryStore, FixedEnv>;

fn open(seed: u8, wasm: &[u8]) -> TestNode {
    let mut node = block_on(Node::open(
        MemoryStore::default(),
        FixedEnv::new(seed),
        Runtime::new(Limits::default()),
    ))
    .expect("a node on memory opens");
    block_on(node.install_app(wasm)).expect("kv-store installs");
    node
}

/// Delivers what `from` queued to `to`; returns the bytes delivered.
fn deliver(from: &mut TestNode, to: &mut TestNode) -> usize {
    let mut bytes = 0;
    for out in from.take_outgoing() {
        if let Outgoing::Publish { topic, data } = out {
            bytes += data.len();
            block_on(to.handle_message(&topic, &data));
        }
    }
    bytes
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "tests/apps/dist/kv_store.wasm".into());
    let deltas: usize = args
        .next()
        .map_or(10_000, |n| n.parse().expect("DELTAS is a number"));
    let wasm = std::fs::read(&path).unwrap_or_else(|e| {
        eprintln!("{path}: {e} (build the apps with `bash tests/apps/build.sh`)");
        std::process::exit(1)
    });

    let mut a = open(1, &wasm);
    let app = block_on(a.install_app(&wasm)).expect("installs");
    let ctx = block_on(a.create_context(app, json!({}))).expect("creates");
    let started = Instant::now();
    let mut artifact_bytes = 0usize;
    let mut published_bytes = 0usize;
    for i in 0..deltas {
        let key = format!("key-{:03}", i % 100);
        let value = format!("value {i:08}");
        block_on(a.execute(&ctx, "set", json!({"key": key, "value": value}))).expect("set");
        for out in a.take_outgoing() {
            if let Outgoing::Publish { data, .. } = out {
                published_bytes += data.len();
                if let Ok(WireMessage::Deltas(ds)) = a.open_message(&ctx, &data) {
                    artifact_bytes += ds.iter().map(|d| d.body.artifact.len()).sum::<usize>();
                }
            }
        }
    }
    let make_secs = started.elapsed().as_secs_f64();

    a.set_snapshot_threshold(None);
    let by_deltas = catch_up(&mut a, open(2, &wasm), &ctx);
    a.set_snapshot_threshold(Some(tabnode_node::DEFAULT_SNAPSHOT_THRESHOLD));
    let by_snapshot = catch_up(&mut a, open(3, &wasm), &ctx);
    assert!(by_snapshot.snapshot && !by_deltas.snapshot);

    let per = |bytes: usize| bytes as f64 / deltas as f64;
    println!("late joiner catching up on {deltas} deltas (kv-store set over 100 keys), natively\n");
    println!("| what | by deltas | by snapshot |");
    println!("|---|---|---|");
    println!(
        "| making the deltas (A's calls, each durable and published) | {make_secs:.1} s, {:.0} deltas/s | |",
        deltas as f64 / make_secs
    );
    println!(
        "| catching up (the joiner verifies every delta; by deltas it also merges each in the guest) | {:.1} s, {:.0} deltas/s | {:.1} s, {:.0} deltas/s |",
        by_deltas.secs,
        deltas as f64 / by_deltas.secs,
        by_snapshot.secs,
        deltas as f64 / by_snapshot.secs
    );
    println!(
        "| catch-up / making | {:.2} | {:.3} |",
        by_deltas.secs / make_secs,
        by_snapshot.secs / make_secs
    );
    println!(
        "| bytes on the wire to the joiner | {:.1} MB ({:.0} B per delta) | {:.1} MB ({:.0} B per delta) |",
        by_deltas.to_joiner as f64 / 1e6,
        per(by_deltas.to_joiner),
        by_snapshot.to_joiner as f64 / 1e6,
        per(by_snapshot.to_joiner)
    );
    println!(
        "| bytes from the joiner | {} B | {} B |",
        by_deltas.from_joiner, by_snapshot.from_joiner
    );
    println!("| rounds | {} | {} |", by_deltas.rounds, by_snapshot.rounds);
    println!(
        "\nartifact bytes per delta (the guest's own): {:.0} B; published bytes per delta when made (sealed, signed, with certificate): {:.0} B; wire bytes / artifact bytes by deltas: {:.2}",
        per(artifact_bytes),
        per(published_bytes),
        by_deltas.to_joiner as f64 / artifact_bytes.max(1) as f64
    );
    println!(
        "catch-up by snapshot / by deltas: {:.3}",
        by_snapshot.secs / by_deltas.secs
    );
}

/// How one late joiner caught up.
struct CatchUp {
    secs: f64,
    to_joiner: usize,
    from_joiner: usize,
    rounds: usize,
    /// Whether it took a snapshot (its audit says so).
    snapshot: bool,
}

/// `joiner` joins on A's invitation and hears A until it has A's heads and root.
fn catch_up(a: &mut TestNode, mut joiner: TestNode, ctx: &ContextId) -> CatchUp {
    block_on(joiner.join(&a.invite(ctx).expect("invites"))).expect("joins");
    let started = Instant::now();
    let (mut to_joiner, mut from_joiner, mut rounds) = (0usize, 0usize, 0);
    loop {
        from_joiner += deliver(&mut joiner, a);
        to_joiner += deliver(a, &mut joiner);
        rounds += 1;
        let (ha, hb) = (
            a.position(ctx).expect("a").heads,
            joiner.position(ctx).expect("joiner").heads,
        );
        if ha == hb || rounds > 1000 {
            break;
        }
        for node in [&mut joiner, &mut *a] {
            // A millisecond a round, as the test clock once moved by itself per reading.
            let now = node.now() + 1_000_000;
            block_on(node.handle_timeout(now));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let (ra, rb) = (
        a.position(ctx).expect("a").root_hash,
        joiner.position(ctx).expect("joiner").root_hash,
    );
    assert_eq!(ra, rb, "the joiner reached the same root");
    let snapshot = block_on(joiner.audit(ctx))
        .expect("audit")
        .iter()
        .any(|r| r.entry.method == "sync.snapshot");
    CatchUp {
        secs,
        to_joiner,
        from_joiner,
        rounds,
        snapshot,
    }
}
