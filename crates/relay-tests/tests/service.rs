//! The relay as a service: settings from a file and flags, refusals with exit code 2, the
//! metrics endpoint, the per-IP limit, gossip validation and scoring, graceful shutdown, and two
//! relays serving one network. Each test starts the real binary on 127.0.0.1, port 0.

use std::process::Command;
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, Multiaddr, PeerId};
use tabnode_relay_tests::harness::*;
use tabnode_relay_tests::{identify, relay_client_swarm};

#[test]
fn settings_come_from_the_file_and_flags_override_them() {
    let file = temp_path("relay.toml");
    std::fs::write(
        &file,
        r#"
listen = ["/ip4/127.0.0.1/tcp/0/ws"]
metrics = "127.0.0.1:0"
log-format = "json"
max-connections-per-ip = 5
max-reservations = 17
max-message-bytes = 4096
max-circuit-duration = 30
"#,
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = start_relay(&[
        "--config",
        file.to_str().unwrap(),
        "--max-connections-per-ip",
        "3",
        "--max-circuit-duration=45",
    ]);
    rt.block_on(async {
        let limit = |name: &str| format!("tabnode_relay_limit{{limit=\"{name}\"}}");
        assert_eq!(relay.sample(&limit("max_connections_per_ip")).await, 3.0);
        assert_eq!(
            relay.sample(&limit("max_circuit_duration_seconds")).await,
            45.0
        );
        assert_eq!(relay.sample(&limit("max_reservations")).await, 17.0);
        assert_eq!(relay.sample(&limit("max_message_bytes")).await, 4096.0);
        // A default that neither set.
        assert_eq!(relay.sample(&limit("max_circuits")).await, 256.0);
    });
    assert!(
        relay.addr.starts_with("/ip4/127.0.0.1/tcp/"),
        "{}",
        relay.addr
    );
    let log = relay.log();
    let first = log.lines().next().expect("a log line");
    assert!(
        first.starts_with('{') && first.contains("\"level\""),
        "{log}"
    );
    let _ = std::fs::remove_file(file);
}

/// Runs the relay with `args`, expecting it to refuse them: exit code 2, the message, the usage.
fn refused(args: &[&str], message: &str) {
    let out = Command::new(tabnode_relay_tests::relay_binary())
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.contains(message),
        "{args:?}: expected {message:?} in {err}"
    );
    assert!(err.contains("usage: tabnode-relay"), "{err}");
}

#[test]
fn bad_settings_stop_the_relay_with_code_2_and_the_usage() {
    let file = temp_path("bad.toml");
    let path = file.to_str().unwrap().to_owned();
    std::fs::write(&file, "max-conections = 3\n").unwrap();
    refused(&["--config", &path], "unknown field `max-conections`");
    std::fs::write(&file, "max-circuits = 0\n").unwrap();
    refused(&["--config", &path], "--max-circuits 0: must be at least 1");
    std::fs::write(&file, "max-circuits = 1.5\n").unwrap();
    refused(&["--config", &path], "expected a whole number");
    std::fs::write(&file, "listen = \"/ip4/127.0.0.1/tcp/0/ws\"\n").unwrap();
    refused(&["--config", &path], "listen");
    std::fs::write(&file, "max-circuits = [\n").unwrap();
    refused(&["--config", &path], &path);
    // The flag is checked too, after the file.
    std::fs::write(&file, "max-circuits = 3\n").unwrap();
    refused(
        &["--config", &path, "--max-connections-per-ip", "-1"],
        "--max-connections-per-ip -1: not a whole number",
    );
    let _ = std::fs::remove_file(&file);
    refused(&["--config", &path], "No such file");
    refused(&["--metrics", "localhost"], "--metrics localhost");
    refused(&["--log-format", "xml"], "must be text or json");
    refused(
        &["--listen", "/ip4/127.0.0.1/udp/0/quic-v1"],
        "webrtc-direct only",
    );
    refused(&["--max-message-bytes", "100"], "must be at least 1024");
    let help = Command::new(tabnode_relay_tests::relay_binary())
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--max-connections-per-ip N"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_in_prometheus_format_and_count_a_native_peer() {
    let relay = start_relay(&[
        "--listen",
        "/ip4/127.0.0.1/tcp/0/ws",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let (head, body) = relay.scrape().await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    assert!(body.contains("# TYPE tabnode_relay_peers gauge"), "{body}");
    assert!(
        body.contains("# TYPE tabnode_relay_refused counter"),
        "{body}"
    );
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    assert_eq!(
        tabnode_relay_tests::metric(&body, "tabnode_relay_peers"),
        0.0
    );

    let mut client = peer(&relay.addr, NORMAL).await;
    client.connected().await;
    relay.wait_for("tabnode_relay_peers", |v| v == 1.0).await;
    assert_eq!(relay.sample("tabnode_relay_connections").await, 1.0);
    // libp2p's own: bytes per transport stack and direction.
    relay
        .wait_for(
            "libp2p_bandwidth_bytes_total{protocols=\"/ip4/tcp/ws\",direction=\"Inbound\"}",
            |v| v > 0.0,
        )
        .await;
    drop(client);
    relay.wait_for("tabnode_relay_peers", |v| v == 0.0).await;

    let url = relay
        .metrics
        .as_ref()
        .unwrap()
        .replace("/metrics", "/other");
    let (head, _) = get(&url).await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_ip_limit_refuses_the_extra_connection_and_counts_it() {
    let relay = start_relay(&[
        "--listen",
        "/ip4/127.0.0.1/tcp/0/ws",
        "--metrics",
        "127.0.0.1:0",
        "--max-connections-per-ip",
        "2",
    ]);
    let mut first = peer(&relay.addr, NORMAL).await;
    first.connected().await;
    let mut second = peer(&relay.addr, NORMAL).await;
    second.connected().await;
    let mut third = peer(&relay.addr, NORMAL).await;
    let error = third
        .expect("refusal", |s| match s {
            Seen::DialFailed(e) => Some(e),
            Seen::Connected => panic!("a third connection from 127.0.0.1 was let in"),
            _ => None,
        })
        .await;
    assert!(!error.is_empty());
    let refused =
        "tabnode_relay_refused_total{what=\"connection\",reason=\"max_connections_per_ip\"}";
    relay.wait_for(refused, |v| v == 1.0).await;
    relay.wait_for("tabnode_relay_peers", |v| v == 2.0).await;
    // A place frees when one leaves.
    drop(first);
    relay.wait_for("tabnode_relay_peers", |v| v == 1.0).await;
    let mut fourth = peer(&relay.addr, NORMAL).await;
    fourth.connected().await;
    assert_eq!(relay.sample(refused).await, 1.0);
    assert!(relay.log().contains("connection refused"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_and_signed_gossip_is_dropped_and_its_sender_scored_down() {
    let relay = start_relay(&[
        "--listen",
        "/ip4/127.0.0.1/tcp/0/ws",
        "--metrics",
        "127.0.0.1:0",
        "--max-message-bytes",
        "1024",
    ]);
    let topic = "/tabnode/context/limits";
    let mut honest = peer(&relay.addr, NORMAL).await;
    honest.connected().await;
    honest.subscribed(topic).await;
    let mut big = peer(&relay.addr, NORMAL).await;
    big.connected().await;
    big.subscribed(topic).await;
    relay
        .wait_for("tabnode_relay_gossip_topics", |v| v == 1.0)
        .await;

    // Within the limit: forwarded.
    big.todo
        .send(Do::Publish(topic.into(), vec![1; 1024]))
        .unwrap();
    honest
        .expect("the small message", |s| match s {
            Seen::Message(d) => Some(d),
            _ => None,
        })
        .await;
    // Over the limit, within the frame: rejected by the relay, and the sender scored down.
    big.todo
        .send(Do::Publish(topic.into(), vec![2; 4096]))
        .unwrap();
    let rejected = "tabnode_relay_gossip_messages_rejected_total{reason=\"oversize\"}";
    relay.wait_for(rejected, |v| v == 1.0).await;
    relay
        .wait_for("tabnode_relay_gossip_penalised_peers", |v| v == 1.0)
        .await;
    // Beyond the frame limit: cut off by the codec, the relay carries on.
    big.todo
        .send(Do::Publish(topic.into(), vec![3; 1 << 20]))
        .unwrap();
    // Signed, naming its author: dropped by gossipsub's checks (tabnode's gossip is anonymous,
    // its sender sealed inside for members), and that sender scored down too.
    let mut signing = peer(&relay.addr, SIGNING).await;
    signing.connected().await;
    signing.subscribed(topic).await;
    signing
        .todo
        .send(Do::Publish(topic.into(), b"signed".to_vec()))
        .unwrap();
    relay
        .wait_for("tabnode_relay_gossip_penalised_peers", |v| v == 2.0)
        .await;
    // None of the three reached the honest peer; the relay still serves, and still forwards.
    // (A newcomer publishes: `big` lost its place in the relay's mesh with its score, and its
    // stream to the relay was cut with the oversize frame.)
    let mut late = peer(&relay.addr, NORMAL).await;
    late.connected().await;
    late.subscribed(topic).await;
    late.todo
        .send(Do::Publish(topic.into(), vec![4; 10]))
        .unwrap();
    let next = honest
        .expect("a message", |s| match s {
            Seen::Message(d) => Some(d),
            _ => None,
        })
        .await;
    assert_ne!(next.first(), Some(&2), "the oversize message was forwarded");
    assert_ne!(
        next.first(),
        Some(&3),
        "the frame over the limit was forwarded"
    );
    assert_ne!(next, b"signed", "the signed message was forwarded");
    assert_eq!(next, vec![4; 10]);
    assert_eq!(relay.sample("tabnode_relay_peers").await, 4.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_connections_and_exits_0() {
    let mut relay = start_relay(&[
        "--listen",
        "/ip4/127.0.0.1/tcp/0/ws",
        "--shutdown-grace",
        "3",
    ]);
    let mut client = peer(&relay.addr, NORMAL).await;
    client.connected().await;
    let pid = relay.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    client
        .expect("the relay closing the connection", |s| {
            matches!(s, Seen::Disconnected).then_some(())
        })
        .await;
    let mut status = None;
    for _ in 0..50 {
        status = relay.child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = status.unwrap_or_else(|| panic!("still running 5 s after SIGTERM"));
    assert_eq!(status.code(), Some(0), "{}", relay.log());
    let log = relay.log();
    assert!(log.contains("stopping") && log.contains("stopped"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_serve_one_network() {
    let first = start_relay(&["--listen", "/ip4/127.0.0.1/tcp/0/ws"]);
    let second = start_relay(&["--listen", "/ip4/127.0.0.1/tcp/0/ws", "--peer", &first.addr]);
    let topic = "/tabnode/context/two-relays";
    let mut b = peer(&second.addr, NORMAL).await;
    b.connected().await;
    b.subscribed(topic).await;
    let mut a = peer(&first.addr, NORMAL).await;
    a.connected().await;
    a.subscribed(topic).await;
    // Until the relays have grafted each other a message may only arrive by gossip: publish
    // until one does.
    let got = tokio::time::timeout(Duration::from_secs(30), async {
        for i in 0u32.. {
            a.todo
                .send(Do::Publish(topic.into(), i.to_le_bytes().to_vec()))
                .unwrap();
            let deadline = tokio::time::sleep(Duration::from_millis(300));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => break,
                    seen = b.seen.recv() => if let Some(Seen::Message(d)) = seen { return d },
                }
            }
        }
        unreachable!()
    })
    .await
    .unwrap_or_else(|_| panic!("nothing crossed: {}\n{}", first.log(), second.log()));
    assert_eq!(got.len(), 4);
}

#[derive(NetworkBehaviour)]
struct Reserving {
    relay: libp2p::relay::client::Behaviour,
    identify: identify::Behaviour,
}

/// A native peer with the relay client; it asks `relay` for a reservation at once if `reserve`.
async fn reserving(
    relay: &str,
    reserve: bool,
) -> (
    libp2p::Swarm<Reserving>,
    Option<libp2p::core::transport::ListenerId>,
) {
    let mut swarm = relay_client_swarm(Duration::from_secs(60), |key, relay| Reserving {
        relay,
        identify: identify(key),
    })
    .await;
    let addr: Multiaddr = relay.parse().unwrap();
    let circuit = reserve.then(|| {
        swarm
            .listen_on(addr.with(libp2p::multiaddr::Protocol::P2pCircuit))
            .unwrap()
    });
    (swarm, circuit)
}

fn accepted(event: &SwarmEvent<ReservingEvent>) -> bool {
    matches!(
        event,
        SwarmEvent::Behaviour(ReservingEvent::Relay(
            libp2p::relay::client::Event::ReservationReqAccepted { .. }
        ))
    )
}

/// Asks for a reservation: `true` if accepted, `false` if refused. It ends with the call.
async fn reserve(relay: &str) -> bool {
    let (mut swarm, circuit) = reserving(relay, true).await;
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match swarm.select_next_some().await {
                event if accepted(&event) => return true,
                SwarmEvent::ListenerClosed {
                    listener_id,
                    reason: Err(_),
                    ..
                } if Some(listener_id) == circuit => return false,
                _ => {}
            }
        }
    })
    .await
    .expect("the relay answers the reservation within 20 s")
}

/// A reservation kept by a task until the returned sender is dropped; and the peer's id.
async fn holding_reservation(relay: &str) -> (tokio::sync::oneshot::Sender<()>, PeerId) {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let (mut swarm, _) = reserving(relay, true).await;
    let id = *swarm.local_peer_id();
    tokio::spawn(async move {
        let mut ready_tx = Some(ready_tx);
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                event = swarm.select_next_some() => {
                    if accepted(&event) {
                        if let Some(tx) = ready_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(20), ready)
        .await
        .expect("a reservation within 20 s")
        .expect("the task runs");
    (stop, id)
}

/// Dials `dst` through the relay; on success a task keeps the circuit open until the returned
/// sender is dropped.
async fn dial_through(
    relay: &str,
    dst: PeerId,
) -> Result<tokio::sync::oneshot::Sender<()>, String> {
    let (mut swarm, _) = reserving(relay, false).await;
    let addr: Multiaddr = format!("{relay}/p2p-circuit/p2p/{dst}").parse().unwrap();
    swarm.dial(addr).unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == dst => {
                    return Ok(())
                }
                SwarmEvent::OutgoingConnectionError {
                    peer_id: Some(p),
                    error,
                    ..
                } if p == dst => return Err(error.to_string()),
                _ => {}
            }
        }
    })
    .await
    .expect("the dial through the relay ends within 20 s")?;
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                _ = swarm.select_next_some() => {}
            }
        }
    });
    Ok(stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuits_are_counted_and_the_circuit_limits_refuse_by_reason() {
    let relay = start_relay(&[
        "--listen",
        "/ip4/127.0.0.1/tcp/0/ws",
        "--metrics",
        "127.0.0.1:0",
        "--max-circuits",
        "1",
        "--circuit-rate-per-ip",
        "0",
    ]);
    let (_dst, dst) = holding_reservation(&relay.addr).await;
    let first = dial_through(&relay.addr, dst).await.expect("a circuit");
    relay.wait_for("tabnode_relay_circuits", |v| v == 1.0).await;
    assert_eq!(
        relay.sample("tabnode_relay_circuits_opened_total").await,
        1.0
    );
    assert!(
        dial_through(&relay.addr, dst).await.is_err(),
        "a second circuit was let through"
    );
    relay
        .wait_for(
            "tabnode_relay_refused_total{what=\"circuit\",reason=\"max_circuits\"}",
            |v| v == 1.0,
        )
        .await;
    // A circuit ends with its connection, and frees its place.
    drop(first);
    relay.wait_for("tabnode_relay_circuits", |v| v == 0.0).await;
    // No reservation, no circuit (the count limits are checked first, hence now).
    assert!(dial_through(&relay.addr, PeerId::random()).await.is_err());
    relay
        .wait_for(
            "tabnode_relay_refused_total{what=\"circuit\",reason=\"no_reservation\"}",
            |v| v == 1.0,
        )
        .await;
    assert!(dial_through(&relay.addr, dst).await.is_ok());
    relay
        .wait_for("tabnode_relay_circuits_opened_total", |v| v == 2.0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_over_the_limits_are_refused_and_counted_by_reason() {
    let relay = start_relay(&[
        "--listen",
        "/ip4/127.0.0.1/tcp/0/ws",
        "--metrics",
        "127.0.0.1:0",
        "--max-reservations",
        "2",
        "--reservation-rate-per-ip",
        "0",
    ]);
    let (first, _) = holding_reservation(&relay.addr).await;
    let (second, _) = holding_reservation(&relay.addr).await;
    relay
        .wait_for("tabnode_relay_reservations", |v| v == 2.0)
        .await;
    assert!(
        !reserve(&relay.addr).await,
        "a third reservation was accepted"
    );
    relay
        .wait_for(
            "tabnode_relay_refused_total{what=\"reservation\",reason=\"max_reservations\"}",
            |v| v == 1.0,
        )
        .await;
    // A reservation ends with its connection, and frees its place.
    drop(first);
    relay
        .wait_for("tabnode_relay_reservations", |v| v == 1.0)
        .await;
    assert!(reserve(&relay.addr).await);
    drop(second);
    relay
        .wait_for("tabnode_relay_reservations_accepted_total", |v| v == 3.0)
        .await;

    // The per-IP rate: one a minute, so the second from 127.0.0.1 is refused.
    let rated = start_relay(&[
        "--listen",
        "/ip4/127.0.0.1/tcp/0/ws",
        "--metrics",
        "127.0.0.1:0",
        "--reservation-rate-per-ip",
        "1",
    ]);
    assert!(reserve(&rated.addr).await);
    assert!(!reserve(&rated.addr).await);
    rated
        .wait_for(
            "tabnode_relay_refused_total{what=\"reservation\",reason=\"rate_limit\"}",
            |v| v == 1.0,
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_on_a_members_topic_learns_no_members_peer_id() {
    let relay = start_relay(&["--listen", "/ip4/127.0.0.1/tcp/0/ws"]);
    let topic = "/tabnode/context/private";
    let key = [5u8; 32];
    // The stranger saw the topic in the relay's list and subscribed to it.
    let mut stranger = peer(&relay.addr, NORMAL).await;
    stranger.connected().await;
    stranger.subscribed(topic).await;
    let (member, _events) = tabnode_net::start(tabnode_net::NetConfig {
        relays: vec![relay.addr.clone()],
        identity_ed25519_secret: [7; 32],
        direct: false,
        ice_servers: Vec::new(),
    })
    .unwrap();
    member.subscribe(topic, key).unwrap();
    member
        .publish(topic, b"sealed for members".to_vec())
        .unwrap();
    let data = stranger
        .expect("the member's message", |s| match s {
            Seen::Message(d) => Some(d),
            _ => None,
        })
        .await;
    // It arrived, so it carried no source (the stranger's gossipsub takes anonymous messages
    // only), and the member's peer id is nowhere in it; the topic's key opens it.
    let member_id: PeerId = member.peer_id().parse().unwrap();
    let id = member_id.to_bytes();
    assert!(
        !data.windows(id.len()).any(|w| w == id),
        "the peer id is in the clear"
    );
    assert!(tabnode_net::envelope::unwrap(&[6; 32], &data).is_none());
    let opened = tabnode_net::envelope::unwrap(&key, &data).map(|(p, d)| (p, d.to_vec()));
    assert_eq!(opened, Some((member_id, b"sealed for members".to_vec())));
}
