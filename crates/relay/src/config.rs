//! The relay's settings: flags, a TOML file (`--config`), and the defaults, merged in that order
//! of precedence and checked once, so that a bad value stops the relay before it listens.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use serde::Deserialize;

/// Every option, as `--help` shows it; the file takes the same names without the dashes.
pub const USAGE: &str = "\
usage: tabnode-relay [OPTIONS]

Every option can also be set in a TOML file (--config), under the same name without the leading
dashes (max-circuits = 64; repeatable ones as lists: listen = [\"/ip4/0.0.0.0/tcp/9090/ws\"]).
A flag overrides the file; a repeated flag replaces the file's whole list.

  --config PATH                   TOML file with any of the options below
  --listen MULTIADDR              address to listen on, repeatable (default
                                  /ip4/127.0.0.1/tcp/9090/ws); /tcp/PORT/ws for browsers, plain
                                  /tcp/PORT for native peers, /udp/PORT/webrtc-direct for
                                  browsers over WebRTC (printed with its /certhash/); port 0
                                  picks a free one
  --external MULTIADDR            address to advertise in reservations, repeatable (default: the
                                  listen addresses)
  --peer MULTIADDR                another relay of the same network (with /p2p/ID), repeatable:
                                  dialled and redialled, so gossip crosses between relays
  --key-file PATH                 ed25519 key of the relay (created if missing), so its peer id
                                  survives restarts
  --webrtc-cert PATH              WebRTC-direct certificate, PEM (created if missing), so the
                                  /certhash/ of webrtc-direct addresses survives restarts
  --metrics ADDR                  serve Prometheus metrics at http://ADDR/metrics (off by default)
  --log-format text|json          log lines on stderr (default text); RUST_LOG overrides the level
  --log-level FILTER              log filter when RUST_LOG is unset (default info)
  --max-connections N             established connections in all (default 4096)
  --max-connections-per-ip N      established and pending connections from one IP (default 64)
  --max-connections-per-peer N    established connections of one peer id (default 4)
  --max-pending-connections N     incoming connections still in their handshake (default 256)
  --max-reservations N            circuit relay reservations in all (default 1024)
  --max-reservations-per-peer N   reservations of one peer id (default 4)
  --reservation-duration SECS     how long a reservation lasts before it must be renewed
                                  (default 3600)
  --reservation-rate-per-ip N     reservations one IP may make per minute, 0 for no limit
                                  (default 60)
  --max-circuits N                relayed circuits open at once (default 256)
  --max-circuits-per-peer N       circuits open at once per source peer (default 8)
  --max-circuit-bytes BYTES       bytes one circuit may carry before it is closed (default
                                  1048576)
  --max-circuit-duration SECS     how long one circuit may stay open (default 120)
  --circuit-rate-per-ip N         circuits one IP may open per minute, 0 for no limit (default 60)
  --max-message-bytes BYTES       largest gossip message payload; larger ones are dropped and the
                                  sender's score lowered (default 1048576, at least 1024)
  --max-topics-per-peer N         topics the relay joins for one peer (default 256); past four
                                  times this a peer's subscriptions are not even recorded
  --gossip-rate-per-peer N        gossip messages one peer may publish per minute (a token bucket
                                  of N); over it they are dropped and the sender's score lowered;
                                  0 for no limit (default 3000)
  --gossip-bytes-per-peer BYTES   gossip payload bytes one peer may publish per minute, likewise
                                  (default 67108864, at least --max-message-bytes; 0 for no
                                  limit)
  --gossip-queue N                gossip messages queued per peer; when a slow peer's queue is
                                  full, forwards to it are dropped (default 5000, libp2p's). Half
                                  is allocated up front: about 115 B per peer for each unit of N
                                  (0.55 MiB a peer at 5000, 0.06 MiB at 500)
  --shutdown-grace SECS           on SIGINT/SIGTERM, how long open connections get to close
                                  (default 2)
  -h, --help                      this text";

/// Why the settings were refused: the relay prints it with the usage and exits with code 2.
#[derive(Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `-h` / `--help`: not an error, but the same way out.
    Help,
    UnknownFlag(String),
    MissingValue(&'static str),
    /// A value that does not parse or is out of range: the option, the value, and why.
    BadValue {
        option: &'static str,
        value: String,
        reason: String,
    },
    /// The file cannot be read or is not valid TOML of the expected shape.
    File {
        path: PathBuf,
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Help => write!(f, "help"),
            ConfigError::UnknownFlag(flag) => write!(f, "unknown argument {flag:?}"),
            ConfigError::MissingValue(option) => write!(f, "--{option} needs a value"),
            ConfigError::BadValue {
                option,
                value,
                reason,
            } => write!(f, "--{option} {value}: {reason}"),
            ConfigError::File { path, reason } => write!(f, "{}: {reason}", path.display()),
        }
    }
}

impl std::error::Error for ConfigError {}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The limits the relay enforces; each maps onto a libp2p setting (see `main.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: u32,
    pub max_connections_per_ip: u32,
    pub max_connections_per_peer: u32,
    pub max_pending_connections: u32,
    pub max_reservations: usize,
    pub max_reservations_per_peer: usize,
    pub reservation_duration: Duration,
    /// Per minute; 0 turns the limiter off.
    pub reservation_rate_per_ip: u32,
    pub max_circuits: usize,
    pub max_circuits_per_peer: usize,
    pub max_circuit_bytes: u64,
    pub max_circuit_duration: Duration,
    /// Per minute; 0 turns the limiter off.
    pub circuit_rate_per_ip: u32,
    pub max_message_bytes: usize,
    pub gossip_queue: usize,
    pub max_topics_per_peer: usize,
    /// Per minute; 0 turns the limit off.
    pub gossip_rate_per_peer: u32,
    /// Per minute; 0 turns the limit off.
    pub gossip_bytes_per_peer: u64,
}

/// The checked settings the relay runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: Vec<Multiaddr>,
    pub external: Vec<Multiaddr>,
    pub peers: Vec<Multiaddr>,
    pub key_file: Option<PathBuf>,
    pub webrtc_cert: Option<PathBuf>,
    pub metrics: Option<SocketAddr>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub limits: Limits,
    pub shutdown_grace: Duration,
}

/// What a file or the flags set: everything optional, merged flags-over-file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Raw {
    listen: Option<Vec<String>>,
    external: Option<Vec<String>>,
    peer: Option<Vec<String>>,
    key_file: Option<PathBuf>,
    webrtc_cert: Option<PathBuf>,
    metrics: Option<String>,
    log_format: Option<String>,
    log_level: Option<String>,
    max_connections: Option<Num>,
    max_connections_per_ip: Option<Num>,
    max_connections_per_peer: Option<Num>,
    max_pending_connections: Option<Num>,
    max_reservations: Option<Num>,
    max_reservations_per_peer: Option<Num>,
    reservation_duration: Option<Num>,
    reservation_rate_per_ip: Option<Num>,
    max_circuits: Option<Num>,
    max_circuits_per_peer: Option<Num>,
    max_circuit_bytes: Option<Num>,
    max_circuit_duration: Option<Num>,
    circuit_rate_per_ip: Option<Num>,
    max_message_bytes: Option<Num>,
    gossip_queue: Option<Num>,
    max_topics_per_peer: Option<Num>,
    gossip_rate_per_peer: Option<Num>,
    gossip_bytes_per_peer: Option<Num>,
    shutdown_grace: Option<Num>,
}

/// A number as written: a TOML integer, or a flag's text (checked later, with the option's name).
#[derive(Debug, Clone)]
enum Num {
    Int(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a whole number")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(i64::try_from(v).map_or_else(|_| Num::Text(v.to_string()), Num::Int))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Num, E> {
                Ok(Num::Text(v.to_owned()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Raw {
    /// Fields in `other` replace those in `self`.
    fn overlay(self, other: Raw) -> Raw {
        macro_rules! pick {
            ($($f:ident),*) => { Raw { $($f: other.$f.or(self.$f)),* } };
        }
        pick!(
            listen,
            external,
            peer,
            key_file,
            webrtc_cert,
            metrics,
            log_format,
            log_level,
            max_connections,
            max_connections_per_ip,
            max_connections_per_peer,
            max_pending_connections,
            max_reservations,
            max_reservations_per_peer,
            reservation_duration,
            reservation_rate_per_ip,
            max_circuits,
            max_circuits_per_peer,
            max_circuit_bytes,
            max_circuit_duration,
            circuit_rate_per_ip,
            max_message_bytes,
            gossip_queue,
            max_topics_per_peer,
            gossip_rate_per_peer,
            gossip_bytes_per_peer,
            shutdown_grace
        )
    }
}

/// Parses the command line (without the program name), reads `--config` if given, and checks it.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Config, ConfigError> {
    let mut flags = Raw::default();
    let mut config_file: Option<PathBuf> = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        // `--name=value` and `--name value` both work.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if name == "-h" || name == "--help" {
            return Err(ConfigError::Help);
        }
        let Some(option) = OPTIONS.iter().copied().find(|o| name == format!("--{o}")) else {
            return Err(ConfigError::UnknownFlag(arg));
        };
        let value = match inline {
            Some(v) => v,
            None => it.next().ok_or(ConfigError::MissingValue(option))?,
        };
        set(&mut flags, option, value, &mut config_file);
    }
    let file = match &config_file {
        Some(path) => read_file(path)?,
        None => Raw::default(),
    };
    check(file.overlay(flags))
}

/// Every option's name, as a flag (with `--`) and as a file key.
const OPTIONS: &[&str] = &[
    "config",
    "listen",
    "external",
    "peer",
    "key-file",
    "webrtc-cert",
    "metrics",
    "log-format",
    "log-level",
    "max-connections",
    "max-connections-per-ip",
    "max-connections-per-peer",
    "max-pending-connections",
    "max-reservations",
    "max-reservations-per-peer",
    "reservation-duration",
    "reservation-rate-per-ip",
    "max-circuits",
    "max-circuits-per-peer",
    "max-circuit-bytes",
    "max-circuit-duration",
    "circuit-rate-per-ip",
    "max-message-bytes",
    "gossip-queue",
    "max-topics-per-peer",
    "gossip-rate-per-peer",
    "gossip-bytes-per-peer",
    "shutdown-grace",
];

fn set(raw: &mut Raw, option: &str, value: String, config: &mut Option<PathBuf>) {
    let num = Some(Num::Text(value.clone()));
    match option {
        "config" => *config = Some(value.into()),
        "listen" => raw.listen.get_or_insert_with(Vec::new).push(value),
        "external" => raw.external.get_or_insert_with(Vec::new).push(value),
        "peer" => raw.peer.get_or_insert_with(Vec::new).push(value),
        "key-file" => raw.key_file = Some(value.into()),
        "webrtc-cert" => raw.webrtc_cert = Some(value.into()),
        "metrics" => raw.metrics = Some(value),
        "log-format" => raw.log_format = Some(value),
        "log-level" => raw.log_level = Some(value),
        "max-connections" => raw.max_connections = num,
        "max-connections-per-ip" => raw.max_connections_per_ip = num,
        "max-connections-per-peer" => raw.max_connections_per_peer = num,
        "max-pending-connections" => raw.max_pending_connections = num,
        "max-reservations" => raw.max_reservations = num,
        "max-reservations-per-peer" => raw.max_reservations_per_peer = num,
        "reservation-duration" => raw.reservation_duration = num,
        "reservation-rate-per-ip" => raw.reservation_rate_per_ip = num,
        "max-circuits" => raw.max_circuits = num,
        "max-circuits-per-peer" => raw.max_circuits_per_peer = num,
        "max-circuit-bytes" => raw.max_circuit_bytes = num,
        "max-circuit-duration" => raw.max_circuit_duration = num,
        "circuit-rate-per-ip" => raw.circuit_rate_per_ip = num,
        "max-message-bytes" => raw.max_message_bytes = num,
        "gossip-queue" => raw.gossip_queue = num,
        "max-topics-per-peer" => raw.max_topics_per_peer = num,
        "gossip-rate-per-peer" => raw.gossip_rate_per_peer = num,
        "gossip-bytes-per-peer" => raw.gossip_bytes_per_peer = num,
        "shutdown-grace" => raw.shutdown_grace = num,
        _ => unreachable!("every name in OPTIONS has an arm"),
    }
}

fn read_file(path: &Path) -> Result<Raw, ConfigError> {
    let file_error = |reason: String| ConfigError::File {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    toml::from_str(&text).map_err(|e| file_error(e.to_string().trim_end().to_owned()))
}

/// A week: longer than any sensible reservation, circuit or grace period.
const MAX_SECS: u64 = 7 * 24 * 3600;

fn number(
    option: &'static str,
    value: Option<Num>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let (text, parsed) = match value {
        None => return Ok(default),
        Some(Num::Int(n)) => (n.to_string(), u64::try_from(n).ok()),
        Some(Num::Text(t)) => {
            let parsed = t.trim().replace('_', "").parse::<u64>().ok();
            (t, parsed)
        }
    };
    let bad = |reason: String| ConfigError::BadValue {
        option,
        value: text.clone(),
        reason,
    };
    let n = parsed.ok_or_else(|| bad("not a whole number ≥ 0".into()))?;
    if n < min {
        return Err(bad(format!("must be at least {min}")));
    }
    if n > max {
        return Err(bad(format!("must be at most {max}")));
    }
    Ok(n)
}

/// Listen addresses must be of the transports this build has: TCP (plain or WebSocket) and
/// WebRTC-direct over UDP.
fn listen_addr(option: &'static str, text: &str) -> Result<Multiaddr, ConfigError> {
    let bad = |reason: String| ConfigError::BadValue {
        option,
        value: text.to_owned(),
        reason,
    };
    let addr: Multiaddr = text.parse().map_err(|e| bad(format!("{e}")))?;
    let mut protocols = addr.iter();
    match protocols.next() {
        Some(Protocol::Ip4(_) | Protocol::Ip6(_)) => {}
        _ => return Err(bad("must start with /ip4/ or /ip6/".into())),
    }
    let rest = (protocols.next(), protocols.next(), protocols.next());
    match rest {
        (Some(Protocol::Tcp(_)), None | Some(Protocol::Ws(_)), None) => Ok(addr),
        (Some(Protocol::Udp(_)), Some(Protocol::WebRTCDirect), None) => Ok(addr),
        (Some(Protocol::Udp(_)), Some(Protocol::WebRTCDirect), Some(Protocol::Certhash(_))) => {
            Err(bad(
                "no /certhash/ in a listen address: it comes from the certificate \
                 (--webrtc-cert)"
                    .into(),
            ))
        }
        (Some(Protocol::Udp(_)), _, _) => Err(bad(
            "UDP is served as /udp/PORT/webrtc-direct only (no QUIC or WebTransport)".into(),
        )),
        _ => Err(bad(
            "must be /tcp/PORT, /tcp/PORT/ws or /udp/PORT/webrtc-direct".into(),
        )),
    }
}

fn addrs(
    option: &'static str,
    values: Option<Vec<String>>,
    parse: impl Fn(&'static str, &str) -> Result<Multiaddr, ConfigError>,
) -> Result<Vec<Multiaddr>, ConfigError> {
    values
        .unwrap_or_default()
        .iter()
        .map(|v| parse(option, v))
        .collect()
}

fn any_addr(option: &'static str, text: &str) -> Result<Multiaddr, ConfigError> {
    text.parse().map_err(|e| ConfigError::BadValue {
        option,
        value: text.to_owned(),
        reason: format!("{e}"),
    })
}

fn peer_addr(option: &'static str, text: &str) -> Result<Multiaddr, ConfigError> {
    let addr = any_addr(option, text)?;
    if !matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        return Err(ConfigError::BadValue {
            option,
            value: text.to_owned(),
            reason: "must end with /p2p/PEER_ID".into(),
        });
    }
    Ok(addr)
}

fn check(raw: Raw) -> Result<Config, ConfigError> {
    let u32_max = u64::from(u32::MAX);
    let mut listen = addrs("listen", raw.listen, listen_addr)?;
    if listen.is_empty() {
        listen.push(
            "/ip4/127.0.0.1/tcp/9090/ws"
                .parse()
                .expect("a valid default"),
        );
    }
    let metrics = raw
        .metrics
        .map(|m| {
            m.parse::<SocketAddr>().map_err(|e| ConfigError::BadValue {
                option: "metrics",
                value: m.clone(),
                reason: format!("{e} (expected IP:PORT, e.g. 127.0.0.1:9100)"),
            })
        })
        .transpose()?;
    let log_format = match raw.log_format.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            return Err(ConfigError::BadValue {
                option: "log-format",
                value: other.to_owned(),
                reason: "must be text or json".into(),
            })
        }
    };
    let log_level = raw.log_level.unwrap_or_else(|| "info".into());
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_level) {
        return Err(ConfigError::BadValue {
            option: "log-level",
            value: log_level,
            reason: e.to_string(),
        });
    }
    let max_message_bytes = number(
        "max-message-bytes",
        raw.max_message_bytes,
        1 << 20,
        1024,
        64 << 20,
    )?;
    let gossip_bytes_per_peer = number(
        "gossip-bytes-per-peer",
        raw.gossip_bytes_per_peer,
        64 << 20,
        0,
        u64::MAX,
    )?;
    if gossip_bytes_per_peer != 0 && gossip_bytes_per_peer < max_message_bytes {
        return Err(ConfigError::BadValue {
            option: "gossip-bytes-per-peer",
            value: gossip_bytes_per_peer.to_string(),
            reason: format!(
                "must be 0 or at least --max-message-bytes ({max_message_bytes}), or no \
                 message that size could pass"
            ),
        });
    }
    let limits = Limits {
        max_connections: number("max-connections", raw.max_connections, 4096, 1, u32_max)? as u32,
        max_connections_per_ip: number(
            "max-connections-per-ip",
            raw.max_connections_per_ip,
            64,
            1,
            u32_max,
        )? as u32,
        max_connections_per_peer: number(
            "max-connections-per-peer",
            raw.max_connections_per_peer,
            4,
            1,
            u32_max,
        )? as u32,
        max_pending_connections: number(
            "max-pending-connections",
            raw.max_pending_connections,
            256,
            1,
            u32_max,
        )? as u32,
        max_reservations: number("max-reservations", raw.max_reservations, 1024, 1, u32_max)?
            as usize,
        max_reservations_per_peer: number(
            "max-reservations-per-peer",
            raw.max_reservations_per_peer,
            4,
            1,
            u32_max,
        )? as usize,
        reservation_duration: Duration::from_secs(number(
            "reservation-duration",
            raw.reservation_duration,
            3600,
            1,
            MAX_SECS,
        )?),
        reservation_rate_per_ip: number(
            "reservation-rate-per-ip",
            raw.reservation_rate_per_ip,
            60,
            0,
            u32_max,
        )? as u32,
        max_circuits: number("max-circuits", raw.max_circuits, 256, 1, u32_max)? as usize,
        max_circuits_per_peer: number(
            "max-circuits-per-peer",
            raw.max_circuits_per_peer,
            8,
            1,
            u32_max,
        )? as usize,
        max_circuit_bytes: number(
            "max-circuit-bytes",
            raw.max_circuit_bytes,
            1 << 20,
            1,
            u64::MAX,
        )?,
        max_circuit_duration: Duration::from_secs(number(
            "max-circuit-duration",
            raw.max_circuit_duration,
            120,
            1,
            MAX_SECS,
        )?),
        circuit_rate_per_ip: number(
            "circuit-rate-per-ip",
            raw.circuit_rate_per_ip,
            60,
            0,
            u32_max,
        )? as u32,
        max_message_bytes: max_message_bytes as usize,
        gossip_queue: number("gossip-queue", raw.gossip_queue, 5000, 2, 1 << 20)? as usize,
        max_topics_per_peer: number(
            "max-topics-per-peer",
            raw.max_topics_per_peer,
            256,
            1,
            1 << 20,
        )? as usize,
        gossip_rate_per_peer: number(
            "gossip-rate-per-peer",
            raw.gossip_rate_per_peer,
            3000,
            0,
            u32_max,
        )? as u32,
        gossip_bytes_per_peer,
    };
    Ok(Config {
        listen,
        external: addrs("external", raw.external, any_addr)?,
        peers: addrs("peer", raw.peer, peer_addr)?,
        key_file: raw.key_file,
        webrtc_cert: raw.webrtc_cert,
        metrics,
        log_format,
        log_level,
        limits,
        shutdown_grace: Duration::from_secs(number(
            "shutdown-grace",
            raw.shutdown_grace,
            2,
            0,
            MAX_SECS,
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_without_flags() {
        let c = parse(args(&[])).unwrap();
        assert_eq!(c.listen[0].to_string(), "/ip4/127.0.0.1/tcp/9090/ws");
        assert_eq!(c.limits.max_message_bytes, 1 << 20);
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.metrics, None);
    }

    #[test]
    fn flags_in_both_forms() {
        let c = parse(args(&[
            "--listen",
            "/ip4/127.0.0.1/tcp/0/ws",
            "--listen=/ip4/127.0.0.1/tcp/0",
            "--listen=/ip4/127.0.0.1/udp/0/webrtc-direct",
            "--webrtc-cert",
            "relay.pem",
            "--max-circuits=7",
            "--log-format",
            "json",
        ]))
        .unwrap();
        assert_eq!(c.listen.len(), 3);
        assert_eq!(c.webrtc_cert, Some(PathBuf::from("relay.pem")));
        assert_eq!(c.limits.max_circuits, 7);
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn bad_values_name_the_option() {
        let err = |a: &[&str]| parse(args(a)).unwrap_err().to_string();
        assert_eq!(
            err(&["--max-circuits", "0"]),
            "--max-circuits 0: must be at least 1"
        );
        assert!(err(&["--max-connections", "lots"]).contains("not a whole number"));
        assert!(err(&["--max-message-bytes", "10"]).contains("at least 1024"));
        assert!(err(&["--gossip-bytes-per-peer", "1000"]).contains("at least --max-message-bytes"));
        assert!(err(&["--max-topics-per-peer", "0"]).contains("at least 1"));
        assert!(err(&["--listen", "/ip4/1.2.3.4/udp/1/quic-v1"]).contains("webrtc-direct only"));
        assert!(err(&["--listen", "/ip4/1.2.3.4/tcp/1/wss"]).contains("/tcp/PORT/ws"));
        let hashed = "/ip4/1.2.3.4/udp/1/webrtc-direct/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g";
        assert!(err(&["--listen", hashed]).contains("no /certhash/"));
        assert!(err(&["--peer", "/ip4/1.2.3.4/tcp/1"]).contains("/p2p/"));
        assert!(err(&["--metrics", "9100"]).contains("IP:PORT"));
        assert!(err(&["--log-format", "xml"]).contains("text or json"));
        assert_eq!(err(&["--bogus"]), "unknown argument \"--bogus\"");
        assert_eq!(err(&["--listen"]), "--listen needs a value");
        assert_eq!(parse(args(&["-h"])), Err(ConfigError::Help));
    }

    #[test]
    fn every_option_is_documented() {
        for o in OPTIONS {
            assert!(USAGE.contains(&format!("--{o} ")), "{o} missing from USAGE");
        }
    }
}
