//! What the relay counts, and the small HTTP server that serves it as Prometheus text
//! (OpenMetrics) at `GET /metrics`. libp2p's own metrics (connections, relay events, gossip,
//! bytes per transport) sit beside the relay's in one registry.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::config::Limits;

/// Refusals by what was refused (`connection`, `reservation`, `circuit`, `topic`) and why.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Refused {
    pub what: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitName {
    pub limit: &'static str,
}

/// The relay's own metrics, under `tabnode_relay_`.
pub struct Metrics {
    pub libp2p: libp2p::metrics::Metrics,
    pub peers: Gauge,
    pub connections: Gauge,
    pub reservations: Gauge,
    pub reservations_accepted: Counter,
    pub circuits: Gauge,
    pub circuits_opened: Counter,
    pub refused: Family<Refused, Counter>,
    pub gossip_received: Counter,
    pub gossip_rejected: Family<Reason, Counter>,
    pub gossip_topics: Gauge,
    pub gossip_penalised_peers: Gauge,
}

impl Metrics {
    pub fn new(registry: &mut Registry, limits: &Limits) -> Metrics {
        let libp2p = libp2p::metrics::Metrics::new(registry);
        let r = registry.sub_registry_with_prefix("tabnode_relay");
        let m = Metrics {
            libp2p,
            peers: Gauge::default(),
            connections: Gauge::default(),
            reservations: Gauge::default(),
            reservations_accepted: Counter::default(),
            circuits: Gauge::default(),
            circuits_opened: Counter::default(),
            refused: Family::default(),
            gossip_received: Counter::default(),
            gossip_rejected: Family::default(),
            gossip_topics: Gauge::default(),
            gossip_penalised_peers: Gauge::default(),
        };
        r.register("peers", "Peers connected now", m.peers.clone());
        r.register("connections", "Connections open now", m.connections.clone());
        r.register(
            "reservations",
            "Circuit relay reservations held now",
            m.reservations.clone(),
        );
        r.register(
            "reservations_accepted",
            "Reservations accepted (renewals not counted)",
            m.reservations_accepted.clone(),
        );
        r.register("circuits", "Relayed circuits open now", m.circuits.clone());
        r.register(
            "circuits_opened",
            "Relayed circuits opened",
            m.circuits_opened.clone(),
        );
        r.register(
            "refused",
            "Connections, reservations, circuits and topics refused, by reason",
            m.refused.clone(),
        );
        r.register(
            "gossip_messages_received",
            "Gossip messages that passed gossipsub's checks and reached the relay's validation",
            m.gossip_received.clone(),
        );
        r.register(
            "gossip_messages_rejected",
            "Gossip messages the relay rejected (not forwarded; the sender's score lowered)",
            m.gossip_rejected.clone(),
        );
        r.register(
            "gossip_topics",
            "Topics the relay is subscribed to (those its peers are on)",
            m.gossip_topics.clone(),
        );
        r.register(
            "gossip_penalised_peers",
            "Connected peers whose gossip score is below zero (invalid or oversize messages)",
            m.gossip_penalised_peers.clone(),
        );
        // prometheus-client 0.25 leaves a family out of the exposition until it has a series:
        // refusals by limit, and oversize gossip, start at zero so they are there from the start.
        for (what, reason) in [
            ("connection", "max_connections"),
            ("connection", "max_connections_per_ip"),
            ("connection", "max_connections_per_peer"),
            ("connection", "max_pending_connections"),
            ("reservation", "max_reservations"),
            ("reservation", "max_reservations_per_peer"),
            ("reservation", "rate_limit"),
            ("circuit", "max_circuits"),
            ("circuit", "max_circuits_per_peer"),
            ("circuit", "rate_limit"),
            ("topic", "max_topics_per_peer"),
        ] {
            let _ = m.refused.get_or_create(&Refused { what, reason });
        }
        for reason in ["oversize", "rate_limit"] {
            let _ = m.gossip_rejected.get_or_create(&Reason { reason });
        }
        let limit: Family<LimitName, Gauge> = Family::default();
        for (name, value) in [
            ("max_connections", u64::from(limits.max_connections)),
            (
                "max_connections_per_ip",
                u64::from(limits.max_connections_per_ip),
            ),
            (
                "max_connections_per_peer",
                u64::from(limits.max_connections_per_peer),
            ),
            (
                "max_pending_connections",
                u64::from(limits.max_pending_connections),
            ),
            ("max_reservations", limits.max_reservations as u64),
            (
                "max_reservations_per_peer",
                limits.max_reservations_per_peer as u64,
            ),
            (
                "reservation_duration_seconds",
                limits.reservation_duration.as_secs(),
            ),
            (
                "reservation_rate_per_ip",
                u64::from(limits.reservation_rate_per_ip),
            ),
            ("max_circuits", limits.max_circuits as u64),
            ("max_circuits_per_peer", limits.max_circuits_per_peer as u64),
            ("max_circuit_bytes", limits.max_circuit_bytes),
            (
                "max_circuit_duration_seconds",
                limits.max_circuit_duration.as_secs(),
            ),
            ("circuit_rate_per_ip", u64::from(limits.circuit_rate_per_ip)),
            ("max_message_bytes", limits.max_message_bytes as u64),
            ("gossip_queue", limits.gossip_queue as u64),
            ("max_topics_per_peer", limits.max_topics_per_peer as u64),
            (
                "gossip_rate_per_peer",
                u64::from(limits.gossip_rate_per_peer),
            ),
            ("gossip_bytes_per_peer", limits.gossip_bytes_per_peer),
        ] {
            limit
                .get_or_create(&LimitName { limit: name })
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
        r.register("limit", "The limits this relay runs with", limit);
        m
    }

    pub fn refuse(&self, what: &'static str, reason: &'static str) {
        self.refused.get_or_create(&Refused { what, reason }).inc();
    }
}

/// Scrapes answered at once; more connections are closed unanswered, so a flood of them cannot
/// take the relay's file descriptors.
const MAX_SCRAPES: usize = 16;

/// Serves `GET /metrics` until the task is dropped. One request per connection; a client that
/// takes over 5 s, or sends more than 8 KiB of head, is dropped.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPES));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors and the like: wait rather than spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), answer(stream, &registry)).await;
            drop(permit);
        });
    }
}

async fn answer(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > 8 * 1024 {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                "",
            )
            .await;
        }
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => {
            let mut body = String::new();
            if prometheus_client::encoding::text::encode(&mut body, registry).is_err() {
                return respond(&mut stream, "500 Internal Server Error", "text/plain", "").await;
            }
            respond(
                &mut stream,
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                &body,
            )
            .await
        }
        (_, "/metrics") => respond(&mut stream, "405 Method Not Allowed", "text/plain", "").await,
        _ => respond(&mut stream, "404 Not Found", "text/plain", "see /metrics\n").await,
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
