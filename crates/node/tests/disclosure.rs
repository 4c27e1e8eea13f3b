//! Selective disclosure: an event kind configured to leave the node as a hash (or redacted)
//! reaches members without its payload; a current member who asks gets it sealed to its key and
//! checked against the hash; a removed member asks in vain; the event's payload never travels in
//! a delta.

mod common;

use common::{node as open, TestNode};

use futures::executor::block_on;
use serde_json::{json, Value};
use tabnode_node::{context_topic, Disclosure, NodeEvent, Outgoing, WireMessage, REDACTED};
use tabnode_types::{ContextId, Hash};

/// Delivers everything `from` queued to each of `to`; returns the raw messages.
fn relay(from: &mut TestNode, to: &mut [&mut TestNode]) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    for out in from.take_outgoing() {
        if let Outgoing::Publish { topic, data } = out {
            for node in to.iter_mut() {
                block_on(node.handle_message(&topic, &data));
            }
            sent.push(data);
        }
    }
    sent
}

fn remote_events(node: &mut TestNode) -> Vec<(String, Value, Option<Hash>)> {
    node.take_events()
        .into_iter()
        .filter_map(|e| match e {
            NodeEvent::Event {
                kind,
                data,
                withheld,
                local: false,
                ..
            } => Some((kind, data, withheld)),
            _ => None,
        })
        .collect()
}

fn payloads(node: &mut TestNode) -> Vec<(Hash, Value)> {
    node.take_events()
        .into_iter()
        .filter_map(|e| match e {
            NodeEvent::Payload { hash, data, .. } => Some((hash, data)),
            _ => None,
        })
        .collect()
}

fn three() -> (TestNode, TestNode, TestNode, ContextId) {
    let (mut a, mut b, mut c) = (open(1), open(2), open(3));
    let app = block_on(a.install_app(&common::guest("kv_store"))).unwrap();
    let ctx = block_on(a.create_context(app, json!({}))).unwrap();
    block_on(b.join(&a.invite(&ctx).unwrap())).unwrap();
    block_on(c.join(&a.invite(&ctx).unwrap())).unwrap();
    for _ in 0..3 {
        relay(&mut a, &mut [&mut b, &mut c]);
        relay(&mut b, &mut [&mut a, &mut c]);
        relay(&mut c, &mut [&mut a, &mut b]);
    }
    (a, b, c, ctx)
}

#[test]
fn withheld_payloads_reach_only_members_who_ask() {
    let (mut a, mut b, mut c, ctx) = three();
    block_on(a.set_disclosure(&ctx, "Inserted", Disclosure::Hash)).unwrap();
    let redact = Disclosure::Redact {
        fields: vec!["value".into()],
    };
    block_on(a.set_disclosure(&ctx, "Updated", redact)).unwrap();
    b.take_events();

    let local = block_on(a.execute(
        &ctx,
        "set",
        json!({"key": "salary", "value": "secret-1000"}),
    ))
    .unwrap();
    assert_eq!(
        local.events[0]["data"]["value"],
        json!("secret-1000"),
        "the author sees all"
    );
    let sent = relay(&mut a, &mut [&mut b]);
    assert!(
        !sent.iter().any(|m| {
            let Ok(WireMessage::Deltas(deltas)) = b.open_message(&ctx, m) else {
                return false;
            };
            deltas.iter().flat_map(|d| &d.body.events).any(|e| {
                e.data.windows(11).any(|w| w == b"secret-1000")
            })
        }),
        "the event's payload is not in the delta (kv-store keeps the value in shared state, which does travel)"
    );
    let events = remote_events(&mut b);
    assert_eq!(events.len(), 1);
    let (kind, data, withheld) = &events[0];
    assert_eq!(kind, "Inserted");
    assert_eq!(data, &json!([]), "only the hash travels");
    let hash = withheld.expect("a withheld payload");

    // B asks; A answers sealed to B; B checks it against the hash.
    b.request_payload(&ctx, hash).unwrap();
    relay(&mut b, &mut [&mut a]);
    let answer = relay(&mut a, &mut [&mut b, &mut c]);
    assert_eq!(answer.len(), 1);
    let got = payloads(&mut b);
    assert_eq!(
        got,
        vec![(hash, json!({"key": "salary", "value": "secret-1000"}))]
    );
    assert!(payloads(&mut c).is_empty(), "sealed to B alone");

    // A redacted kind: the rest of the event shows.
    block_on(a.execute(
        &ctx,
        "set",
        json!({"key": "salary", "value": "secret-2000"}),
    ))
    .unwrap();
    relay(&mut a, &mut [&mut b]);
    let events = remote_events(&mut b);
    assert_eq!(events[0].1, json!({"key": "salary", "value": REDACTED}));
    assert!(events[0].2.is_some());

    // A removed member asks in vain.
    block_on(a.remove_member(&ctx, c.public_key())).unwrap();
    relay(&mut a, &mut [&mut b, &mut c]);
    a.take_events();
    c.request_payload(&ctx, hash).unwrap();
    let asked = relay(&mut c, &mut []);
    for data in &asked {
        block_on(a.handle_message(&context_topic(&ctx), data));
    }
    let answers = relay(&mut a, &mut [&mut c]);
    assert!(
        !answers
            .iter()
            .any(|m| matches!(a.open_message(&ctx, m), Ok(WireMessage::Payload { .. }))),
        "no payload for a removed member"
    );
    assert!(payloads(&mut c).is_empty());
}
