//! What one peer may cost the relay as a gossip hub (issue 19, finding 9): the topics joined
//! for it, and what it may publish. Each test starts the real binary on 127.0.0.1, port 0, and
//! drives it with native libp2p peers.

use std::time::Duration;
use tabnode_relay_tests::harness::{peer, start_relay, Do, Seen, NORMAL};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_joins_no_more_topics_for_a_peer_than_its_cap() {
    let relay = start_relay(&[
        "--listen",
        "/ip4/127.0.0.1/tcp/0/ws",
        "--metrics",
        "127.0.0.1:0",
        "--max-topics-per-peer",
        "2",
    ]);
    let topic = |n: u32| format!("/tabnode/context/cap-{n}");
    let mut greedy = peer(&relay.addr, NORMAL).await;
    greedy.connected().await;
    greedy.subscribed(&topic(1)).await;
    greedy.subscribed(&topic(2)).await;
    greedy.todo.send(Do::Subscribe(topic(3))).unwrap();
    let refused = "tabnode_relay_refused_total{what=\"topic\",reason=\"max_topics_per_peer\"}";
    relay.wait_for(refused, |v| v == 1.0).await;
    assert_eq!(relay.sample("tabnode_relay_gossip_topics").await, 2.0);
    // The cap is the peer's: another peer on the third topic gets it joined.
    let mut other = peer(&relay.addr, NORMAL).await;
    other.connected().await;
    other.subscribed(&topic(3)).await;
    relay
        .wait_for("tabnode_relay_gossip_topics", |v| v == 3.0)
        .await;
    // A topic left frees a place: the relay leaves it (no one else is on it) and joins the next.
    greedy.todo.send(Do::Unsubscribe(topic(1))).unwrap();
    relay
        .wait_for("tabnode_relay_gossip_topics", |v| v == 2.0)
        .await;
    greedy.subscribed(&topic(4)).await;
    relay
        .wait_for("tabnode_relay_gossip_topics", |v| v == 3.0)
        .await;
    assert_eq!(relay.sample(refused).await, 1.0);
}

/// A peer over its budget is throttled, not graylisted: what goes over is dropped, and once the
/// budget has refilled its gossip passes again. (Over-budget messages used to count against the
/// sender's score as invalid ones, so an honest member writing fast, 10,000 deltas in a page
/// benchmark, was graylisted for minutes and a joiner it admitted never heard its welcome.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_publishing_past_its_budget_is_dropped_not_graylisted() {
    let relay = start_relay(&[
        "--listen",
        "/ip4/127.0.0.1/tcp/0/ws",
        "--metrics",
        "127.0.0.1:0",
        "--max-message-bytes",
        "1024",
        "--gossip-rate-per-peer",
        "60",
        "--gossip-bytes-per-peer",
        "4096",
    ]);
    let topic = "/tabnode/context/budget";
    let mut honest = peer(&relay.addr, NORMAL).await;
    honest.connected().await;
    honest.subscribed(topic).await;
    // Many small messages: sixty a minute pass.
    let mut chatty = peer(&relay.addr, NORMAL).await;
    chatty.connected().await;
    chatty.subscribed(topic).await;
    // Few large ones: 4096 bytes a minute, four of 1024, pass.
    let mut bulky = peer(&relay.addr, NORMAL).await;
    bulky.connected().await;
    bulky.subscribed(topic).await;
    for i in 0..70u8 {
        chatty
            .todo
            .send(Do::Publish(topic.into(), vec![i; 8]))
            .unwrap();
    }
    for i in 0..10u8 {
        bulky
            .todo
            .send(Do::Publish(topic.into(), vec![i; 1024]))
            .unwrap();
    }
    let dropped = "tabnode_relay_gossip_messages_rejected_total{reason=\"rate_limit\"}";
    relay.wait_for(dropped, |v| v >= 16.0).await;
    assert_eq!(
        relay.sample("tabnode_relay_gossip_penalised_peers").await,
        0.0
    );
    // The budget refills at one message a second: time is the condition here.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    chatty
        .todo
        .send(Do::Publish(topic.into(), b"again".to_vec()))
        .unwrap();
    let (mut small, mut large) = (Vec::new(), Vec::new());
    loop {
        let data = honest
            .expect("a message", |s| match s {
                Seen::Message(d) => Some(d),
                _ => None,
            })
            .await;
        match data.len() {
            8 => small.push(data[0]),
            1024 => large.push(data[0]),
            _ => {
                assert_eq!(data, b"again", "the throttled peer is heard again");
                break;
            }
        }
    }
    assert_eq!(
        small,
        (0..60).collect::<Vec<u8>>(),
        "the first sixty small messages only"
    );
    assert_eq!(large, [0, 1, 2, 3], "the first four large messages only");
    assert_eq!(
        relay.sample("tabnode_relay_gossip_penalised_peers").await,
        0.0
    );
}
