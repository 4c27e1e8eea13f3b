//! `relay-load`: a load test of one relay process on loopback (issue 8).
//!
//! Starts `tabnode-relay` with a per-IP connection limit and a reservation limit, opens N native
//! peers at once over WebSocket (all from 127.0.0.1, so the per-IP limit is the one that bites),
//! has each connected peer ask for a reservation and join a gossip topic shared by a small
//! group, lets half of them publish for a bounded time, then prints what got through, the
//! latency of deliveries, and the relay's peak RSS and CPU time. It exits 1 if the relay let in
//! more, or fewer, than its limits say.
//!
//! `make bench-relay` runs it with the defaults; `relay-load --help` lists the knobs.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, ping, relay, Multiaddr};
use tabnode_relay_tests::{identify, relay_client_swarm};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

const USAGE: &str = "\
usage: relay-load [--peers N] [--limit N] [--reservations N] [--seconds S] [--group N]
                  [--rate N] [--message-bytes N] [--relay PATH] [--relay-arg ARG]...
  --peers N          simulated peers, all dialling at once (default 200)
  --limit N          the relay's --max-connections-per-ip (default 150)
  --reservations N   the relay's --max-reservations (default 100)
  --seconds S        how long peers publish (default 20)
  --group N          peers per gossip topic (default 8)
  --rate N           messages per second from each publishing peer (default 2)
  --message-bytes N  size of each message (default 256, at least 16)
  --relay PATH       the relay binary (default: tabnode-relay beside this one)
  --relay-arg ARG    one more argument for the relay, repeatable (--relay-arg=--max-circuits=9)";

struct Args {
    peers: usize,
    limit: usize,
    reservations: usize,
    seconds: u64,
    group: usize,
    rate: u32,
    message_bytes: usize,
    relay: std::path::PathBuf,
    relay_args: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        peers: 200,
        limit: 150,
        reservations: 100,
        seconds: 20,
        group: 8,
        rate: 2,
        message_bytes: 256,
        relay: std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("tabnode-relay"),
        relay_args: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Err(String::new());
        }
        let (flag, value) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), v.to_owned()),
            None => {
                let value = it.next().ok_or(format!("{arg} needs a value"))?;
                (arg, value)
            }
        };
        let number = || -> Result<u64, String> {
            match value.parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{flag} {value}: not a whole number ≥ 1")),
            }
        };
        match flag.as_str() {
            "--peers" => args.peers = number()? as usize,
            "--limit" => args.limit = number()? as usize,
            "--reservations" => args.reservations = number()? as usize,
            "--seconds" => args.seconds = number()?,
            "--group" => args.group = number()? as usize,
            "--rate" => args.rate = number()? as u32,
            "--message-bytes" => args.message_bytes = (number()? as usize).max(16),
            "--relay" => args.relay = value.into(),
            "--relay-arg" => args.relay_args.push(value),
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    Ok(args)
}

/// The relay process; killed when dropped, also on a panic.
struct RelayProcess {
    child: Child,
    addr: Multiaddr,
    metrics: String,
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_relay(args: &Args) -> Result<RelayProcess, String> {
    let mut child = Command::new(&args.relay)
        .args([
            "--listen",
            "/ip4/127.0.0.1/tcp/0/ws",
            "--metrics",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--max-connections-per-ip",
            &args.limit.to_string(),
            "--max-connections",
            &(args.peers.max(args.limit) + 16).to_string(),
            "--max-pending-connections",
            &(args.peers + 16).to_string(),
            "--max-reservations",
            &args.reservations.to_string(),
            // Every peer comes from 127.0.0.1: only the count limits are under test.
            "--reservation-rate-per-ip",
            "0",
        ])
        .args(&args.relay_args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", args.relay.display()))?;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut addr = None;
    let mut metrics = None;
    while addr.is_none() || metrics.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .map_err(|_| "the relay did not print its address within 20 s".to_string())?;
        if let Some(a) = line.strip_prefix("RELAY_MULTIADDR=") {
            addr = Some(a.parse().map_err(|e| format!("{a}: {e}"))?);
        } else if let Some(m) = line.strip_prefix("RELAY_METRICS=") {
            metrics = Some(m.to_owned());
        }
    }
    Ok(RelayProcess {
        child,
        addr: addr.expect("set"),
        metrics: metrics.expect("set"),
    })
}

/// CPU time and memory of a process, from /proc.
fn process_usage(pid: u32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); the split starts at field 3.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(Usage {
        cpu_seconds: ticks as f64 / hz,
        peak_rss_kib: kib("VmHWM:")?,
        rss_kib: kib("VmRSS:")?,
    })
}

/// What /proc tells of the relay process.
#[derive(Default)]
struct Usage {
    /// User + system.
    cpu_seconds: f64,
    /// VmHWM.
    peak_rss_kib: u64,
    /// VmRSS, now.
    rss_kib: u64,
}

async fn scrape(url: &str) -> String {
    let Some((host, path)) = url.strip_prefix("http://").and_then(|r| r.split_once('/')) else {
        return String::new();
    };
    let Ok(mut stream) = tokio::net::TcpStream::connect(host).await else {
        return String::new();
    };
    let request = format!("GET /{path} HTTP/1.1\r\nhost: {host}\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

#[derive(NetworkBehaviour)]
struct Peer {
    relay: relay::client::Behaviour,
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

#[derive(Debug, Default)]
struct Outcome {
    connected: bool,
    refused: bool,
    reserved: bool,
    reservation_refused: bool,
    sent: u64,
    /// Delivery latencies, in microseconds.
    latencies: Vec<u32>,
}

/// When to publish: from, until. Sent once every peer has connected or failed.
type Window = Option<(Instant, Instant)>;

/// What one simulated peer does, and where it reports.
struct Plan {
    index: usize,
    group: usize,
    publishes: bool,
    rate: u32,
    message_bytes: usize,
    relay: Multiaddr,
    epoch: Instant,
    window: watch::Receiver<Window>,
    /// `true` once connected, `false` if refused.
    report_connect: mpsc::UnboundedSender<bool>,
}

async fn run_peer(plan: Plan) -> Result<Outcome, String> {
    let Plan {
        index,
        group,
        publishes,
        rate,
        message_bytes,
        relay: relay_addr,
        epoch,
        mut window,
        report_connect,
    } = plan;
    // As a browser peer runs gossip.
    let gossip = tabnode_net::peer_gossip_config()
        .build()
        .map_err(|e| e.to_string())?;
    let mut swarm = relay_client_swarm(Duration::from_secs(300), |key, relay| Peer {
        relay,
        gossipsub: gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, gossip)
            .expect("a valid gossipsub config"),
        identify: identify(key),
        ping: ping::Behaviour::new(ping::Config::new()),
    })
    .await;
    let topic = IdentTopic::new(format!("/tabnode/load/{}", index / group));
    swarm.dial(relay_addr.clone()).map_err(|e| e.to_string())?;
    let mut outcome = Outcome::default();
    let mut circuit_listener = None;
    let mut reported = false;
    let mut report = |ok: bool| {
        if !reported {
            reported = true;
            let _ = report_connect.send(ok);
        }
    };
    // Wait for the window, connecting and reserving meanwhile.
    let (from, until) = loop {
        tokio::select! {
            changed = window.changed() => {
                if changed.is_err() {
                    return Ok(outcome);
                }
                if let Some(w) = *window.borrow() {
                    break w;
                }
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::ConnectionEstablished { .. } if !outcome.connected => {
                    outcome.connected = true;
                    report(true);
                    circuit_listener = swarm
                        .listen_on(relay_addr.clone().with(Protocol::P2pCircuit))
                        .ok();
                    if let Err(e) = swarm.behaviour_mut().gossipsub.subscribe(&topic) {
                        return Err(format!("subscribing: {e}"));
                    }
                }
                SwarmEvent::OutgoingConnectionError { .. } if !outcome.connected => {
                    outcome.refused = true;
                    report(false);
                }
                other => note(&mut outcome, other, circuit_listener, epoch),
            }
        }
    };
    let period = Duration::from_secs(1) / rate;
    // Spread publishers over the period so the relay sees a steady stream, not bursts.
    let offset = period * (index as u32 % 16) / 16;
    let mut next = tokio::time::Instant::from_std(from + offset);
    let end = until + Duration::from_secs(2);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next), if publishes && outcome.connected => {
                next += period;
                if Instant::now() < until {
                    let mut data = vec![0u8; message_bytes];
                    data[..4].copy_from_slice(&(index as u32).to_le_bytes());
                    let sent_at = epoch.elapsed().as_nanos() as u64;
                    data[4..12].copy_from_slice(&sent_at.to_le_bytes());
                    data[12..16].copy_from_slice(&(outcome.sent as u32).to_le_bytes());
                    if swarm.behaviour_mut().gossipsub.publish(topic.clone(), data).is_ok() {
                        outcome.sent += 1;
                    }
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(end)) => break,
            event = swarm.select_next_some() => note(&mut outcome, event, circuit_listener, epoch),
        }
    }
    Ok(outcome)
}

/// Records what a peer sees outside its connection phase: reservations and deliveries.
fn note(
    outcome: &mut Outcome,
    event: SwarmEvent<PeerEvent>,
    circuit_listener: Option<libp2p::core::transport::ListenerId>,
    epoch: Instant,
) {
    match event {
        SwarmEvent::Behaviour(PeerEvent::Relay(relay::client::Event::ReservationReqAccepted {
            ..
        })) => outcome.reserved = true,
        SwarmEvent::ListenerClosed {
            listener_id,
            reason: Err(_),
            ..
        } if Some(listener_id) == circuit_listener && !outcome.reserved => {
            outcome.reservation_refused = true
        }
        SwarmEvent::Behaviour(PeerEvent::Gossipsub(gossipsub::Event::Message {
            message, ..
        })) => {
            if let Some(bytes) = message.data.get(4..12) {
                let sent = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
                let now = epoch.elapsed().as_nanos() as u64;
                outcome
                    .latencies
                    .push((now.saturating_sub(sent) / 1000).min(u64::from(u32::MAX)) as u32);
            }
        }
        _ => {}
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if e.is_empty() {
                println!("{USAGE}");
                return;
            }
            eprintln!("relay-load: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    match run(args).await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("relay-load: {e}");
            std::process::exit(1);
        }
    }
}

async fn run(args: Args) -> Result<bool, String> {
    let relay = start_relay(&args)?;
    let pid = relay.child.id();
    let idle = process_usage(pid).unwrap_or_default();
    let epoch = Instant::now();
    let (window_tx, window_rx) = watch::channel::<Window>(None);
    let (connect_tx, mut connect_rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for index in 0..args.peers {
        tasks.push(tokio::spawn(run_peer(Plan {
            index,
            group: args.group,
            publishes: index % 2 == 0,
            rate: args.rate,
            message_bytes: args.message_bytes,
            relay: relay.addr.clone(),
            epoch,
            window: window_rx.clone(),
            report_connect: connect_tx.clone(),
        })));
    }
    drop(connect_tx);
    // Every peer connects or is refused (or 30 s pass); then 3 s for meshes and reservations.
    let mut answered = 0;
    let connect_deadline = tokio::time::sleep(Duration::from_secs(30));
    tokio::pin!(connect_deadline);
    while answered < args.peers {
        tokio::select! {
            _ = &mut connect_deadline => break,
            got = connect_rx.recv() => match got {
                Some(_) => answered += 1,
                None => break,
            },
        }
    }
    let connect_time = epoch.elapsed();
    let from = Instant::now() + Duration::from_secs(3);
    let until = from + Duration::from_secs(args.seconds);
    let _ = window_tx.send(Some((from, until)));
    // While every peer is still connected and publishing.
    tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
    let busy = process_usage(pid).unwrap_or_default();
    let mut outcomes = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(o)) => outcomes.push(o),
            Ok(Err(e)) => return Err(format!("a peer failed: {e}")),
            Err(e) => return Err(format!("a peer panicked: {e}")),
        }
    }
    let end = process_usage(pid).ok_or("cannot read the relay's /proc entries")?;
    let metrics = scrape(&relay.metrics).await;
    drop(relay);

    let connected = outcomes.iter().filter(|o| o.connected).count();
    let refused = outcomes.iter().filter(|o| o.refused).count();
    let reserved = outcomes.iter().filter(|o| o.reserved).count();
    let reservation_refused = outcomes.iter().filter(|o| o.reservation_refused).count();
    let sent: u64 = outcomes.iter().map(|o| o.sent).sum();
    let mut latencies: Vec<u32> = outcomes
        .iter()
        .flat_map(|o| o.latencies.iter().copied())
        .collect();
    latencies.sort_unstable();
    // Each message should reach every other connected member of its group.
    let mut members: HashMap<usize, u64> = HashMap::new();
    for (i, o) in outcomes.iter().enumerate() {
        if o.connected {
            *members.entry(i / args.group).or_default() += 1;
        }
    }
    let expected: u64 = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let group = members.get(&(i / args.group)).copied().unwrap_or(0);
            o.sent * group.saturating_sub(1)
        })
        .sum();
    let delivered = latencies.len() as u64;
    let want_refused = args.peers.saturating_sub(args.limit);
    let want_reservation_refused = connected.saturating_sub(args.reservations);
    let relay_refused_conn = tabnode_relay_tests::metric(
        &metrics,
        "tabnode_relay_refused_total{what=\"connection\",reason=\"max_connections_per_ip\"}",
    );
    let relay_refused_res = tabnode_relay_tests::metric(
        &metrics,
        "tabnode_relay_refused_total{what=\"reservation\",reason=\"max_reservations\"}",
    );
    let ok = refused == want_refused
        && connected == args.peers - want_refused
        && reserved == connected.min(args.reservations)
        && reservation_refused == want_reservation_refused;
    let check = |good: bool| if good { "ok" } else { "WRONG" };

    println!(
        "relay-load: {} peers, per-IP connection limit {}, reservation limit {}, {} s of \
         publishing, topics of {}, {} msg/s per publisher, {} B messages",
        args.peers,
        args.limit,
        args.reservations,
        args.seconds,
        args.group,
        args.rate,
        args.message_bytes
    );
    println!();
    println!("| what | figure | check |");
    println!("|---|---|---|");
    println!(
        "| peers connected | {connected} (all answered in {:.1} s) | {} |",
        connect_time.as_secs_f64(),
        check(connected == args.peers - want_refused)
    );
    println!(
        "| connections refused by the per-IP limit | {refused} (relay counted {relay_refused_conn}) | {} (N − limit = {want_refused}) |",
        check(refused == want_refused)
    );
    println!(
        "| reservations accepted | {reserved} | {} |",
        check(reserved == connected.min(args.reservations))
    );
    println!(
        "| reservations refused by the limit | {reservation_refused} (relay counted {relay_refused_res}) | {} (connected − limit = {want_reservation_refused}) |",
        check(reservation_refused == want_reservation_refused)
    );
    println!("| messages published | {sent} |  |");
    println!(
        "| deliveries | {delivered} of {expected} ({:.2} %) |  |",
        if expected == 0 {
            0.0
        } else {
            delivered as f64 * 100.0 / expected as f64
        }
    );
    println!(
        "| delivery latency p50 / p99 / max | {:.1} / {:.1} / {:.1} ms |  |",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    println!(
        "| relay RSS: idle / with the peers / peak (VmHWM) / after they left | {:.1} / {:.1} / {:.1} / {:.1} MiB |  |",
        idle.rss_kib as f64 / 1024.0,
        busy.rss_kib as f64 / 1024.0,
        end.peak_rss_kib as f64 / 1024.0,
        end.rss_kib as f64 / 1024.0
    );
    println!(
        "| relay CPU (user + system) over the run | {:.2} s |  |",
        end.cpu_seconds - idle.cpu_seconds
    );
    println!(
        "| relay CPU per delivered message | {:.1} µs |  |",
        if delivered == 0 {
            0.0
        } else {
            (end.cpu_seconds - idle.cpu_seconds) * 1e6 / delivered as f64
        }
    );
    println!("| wall time | {:.1} s |  |", epoch.elapsed().as_secs_f64());
    if !ok {
        eprintln!("relay-load: the relay did not enforce its limits exactly (see WRONG above)");
    }
    Ok(ok)
}
