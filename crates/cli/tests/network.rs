//! Two CLI nodes in one context through the real relay: one creates and invites and `run`s,
//! the other joins from the link (fetching the app from the first) and `run`s; a call on
//! either reaches the other, and a blob one announced comes to the other. Needs the relay binary: `make relay` (with the same
//! CARGO_TARGET_DIR), or TABNODE_RELAY=path.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// How long any one awaited line may take: a join waits for gossip meshes and anti-entropy.
const WAIT: Duration = Duration::from_secs(90);

/// The relay next to the `tabnode` binary under test (`make relay` builds it there), or
/// TABNODE_RELAY.
fn relay_binary() -> PathBuf {
    let path = std::env::var_os("TABNODE_RELAY").map_or_else(
        || Path::new(env!("CARGO_BIN_EXE_tabnode")).with_file_name("tabnode-relay"),
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "no relay binary at {}: build it with `make relay` (same CARGO_TARGET_DIR) or set TABNODE_RELAY",
        path.display()
    );
    path
}

/// A child process killed when the test ends, also when it fails; its stdout lines, parsed.
struct Process {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    /// Every line read so far, for the failure message.
    seen: Vec<String>,
    commands: usize,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Starts `command`; its stderr is shown with the test's output (a relay's is not: it logs
    /// every connection).
    fn spawn(name: &'static str, mut command: Command) -> Self {
        let stderr = if name == "relay" {
            Stdio::null()
        } else {
            Stdio::inherit()
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            name,
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            commands: 0,
        }
    }

    /// The next line (of any text) that `pick` accepts, within [`WAIT`].
    fn expect_text<T>(&mut self, what: &str, mut pick: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let picked = pick(&line);
                    self.seen.push(line);
                    if let Some(t) = picked {
                        return t;
                    }
                }
                Err(_) => panic!(
                    "{}: no {what} within {WAIT:?}; its lines:\n{}",
                    self.name,
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The next JSON line that `pick` accepts.
    fn expect(&mut self, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
        self.expect_text(what, |line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            pick(&value).then_some(value)
        })
    }

    /// Sends a line on stdin and returns its answer (a `result` or an `error` line).
    fn send(&mut self, line: &str) -> Value {
        self.commands += 1;
        let number = self.commands;
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").unwrap();
        self.expect("answer", |v| v["line"] == json!(number))
    }

    /// Sends a command on stdin and returns its answer's value (it must not fail).
    fn command(&mut self, words: &[&str]) -> Value {
        let answer = self.send(&serde_json::to_string(words).unwrap());
        assert_eq!(answer["type"], json!("result"), "{words:?}: {answer}");
        answer["value"].clone()
    }

    /// Waits for the process to end by itself; its exit code.
    fn exit_code(&mut self) -> i32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "{} did not stop", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn start_relay() -> (Process, String) {
    let mut command = Command::new(relay_binary());
    command.args(["--listen", "/ip4/127.0.0.1/tcp/0/ws"]);
    let mut relay = Process::spawn("relay", command);
    let addr = relay.expect_text("address", |line| {
        line.strip_prefix("RELAY_MULTIADDR=").map(str::to_owned)
    });
    (relay, addr)
}

fn run(name: &'static str, home: &Path, relay: &str) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tabnode"));
    command
        .arg("--home")
        .arg(home)
        .args(["run", "--relay", relay]);
    let mut node = Process::spawn(name, command);
    node.expect("started", |v| v["type"] == json!("started"));
    node
}

fn field(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {value}"))
        .to_owned()
}

/// The value a kv-store `get` gives on a running node.
fn get(node: &mut Process, ctx: &str, key: &str) -> Value {
    let args = json!({ "key": key }).to_string();
    node.command(&["call", ctx, "get", &args])["output"].clone()
}

/// `set` on a running node; the delta it made.
fn set(node: &mut Process, ctx: &str, key: &str, value: &str) -> String {
    let args = json!({ "key": key, "value": value }).to_string();
    field(&node.command(&["call", ctx, "set", &args]), "delta_id")
}

#[test]
fn two_cli_nodes_join_through_the_relay_and_each_ones_call_reaches_the_other() {
    let (_relay, relay) = start_relay();
    let (home_a, home_b) = (home("net-a"), home("net-b"));
    let app = field(&ok(&home_a, &["app", "install", &kv_store()]), "app_id");
    let ctx = field(&ok(&home_a, &["context", "create", &app]), "context_id");
    let invite = ok(
        &home_a,
        &[
            "context",
            "invite",
            &ctx,
            "--link-base",
            "http://127.0.0.1/",
        ],
    );
    let link = field(&invite, "link");
    let b_key = field(&ok(&home_b, &["identity"]), "public_key");

    let mut a = run("A", &home_a, &relay);
    // A runs: its home is its alone until it stops.
    let (code, busy) = tabnode(&home_a, &["context", "list"]);
    assert_eq!(
        (code, &busy["error"]["kind"]),
        (1, &json!("HomeLocked")),
        "{busy}"
    );

    // B joins from the page-style link, without the app: it comes from A, checked by its id.
    let joined = Command::new(env!("CARGO_BIN_EXE_tabnode"))
        .arg("--home")
        .arg(&home_b)
        .args([
            "context",
            "join",
            &link,
            "--relay",
            &relay,
            "--timeout",
            "90",
        ])
        .output()
        .unwrap();
    let progress = String::from_utf8_lossy(&joined.stderr);
    let answer: Value = serde_json::from_slice(&joined.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{progress}",
            String::from_utf8_lossy(&joined.stdout)
        )
    });
    assert_eq!(joined.status.code(), Some(0), "{answer}\n{progress}");
    assert_eq!(answer, json!({"context_id": ctx, "synced": true}));
    assert!(progress.contains(r#""type":"joined""#), "{progress}");
    assert!(progress.contains(r#""type":"synced""#), "{progress}");
    let members = ok(&home_b, &["context", "members", &ctx]);
    assert!(
        members["members"]
            .as_array()
            .unwrap()
            .contains(&json!({"key": b_key, "role": "member"})),
        "{members}"
    );

    // B, a member now, gets a blob A announced to the context: it comes from A through the
    // relay, in parts (over 256 KiB), checked against its id.
    let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    let file = home_a.with_extension("blob-in");
    std::fs::write(&file, &data).unwrap();
    let put = a.command(&["blob", "put", file.to_str().unwrap(), "--context", &ctx]);
    let blob = field(&put, "blob_id");
    let out = home_b.with_extension("blob-out");
    let fetched = Command::new(env!("CARGO_BIN_EXE_tabnode"))
        .arg("--home")
        .arg(&home_b)
        .args(["blob", "get", &blob, "--out", out.to_str().unwrap()])
        .args(["--context", &ctx, "--relay", &relay, "--timeout", "90"])
        .output()
        .unwrap();
    let progress = String::from_utf8_lossy(&fetched.stderr);
    assert_eq!(fetched.status.code(), Some(0), "{progress}");
    assert!(progress.contains(r#""type":"blobProgress""#), "{progress}");
    assert_eq!(std::fs::read(&out).unwrap(), data, "the blob B wrote");
    // Offline, B holds it now; a blob nobody announced does not come, and says why.
    let again = ok(
        &home_b,
        &["blob", "get", &blob, "--out", out.to_str().unwrap()],
    );
    assert_eq!(again["size"], json!(data.len()));
    let unknown = "11111111111111111111111111111111";
    let (code, missing) = tabnode(
        &home_b,
        &[
            "blob",
            "get",
            unknown,
            "--out",
            "x",
            "--context",
            &ctx,
            "--relay",
            &relay,
            "--timeout",
            "1",
        ],
    );
    assert_eq!(
        (code, &missing["error"]["kind"]),
        (1, &json!("Timeout")),
        "{missing}"
    );
    let (code, usage) = tabnode(
        &home_b,
        &["blob", "get", unknown, "--out", "x", "--context", &ctx],
    );
    assert_eq!(
        (code, &usage["error"]["kind"]),
        (2, &json!("Usage")),
        "{usage}"
    );

    let mut b = run("B", &home_b, &relay);
    // Inside `run`, a blob B lacks is fetched while the node runs on, and written once here.
    let more: Vec<u8> = data.iter().rev().copied().collect();
    std::fs::write(&file, &more).unwrap();
    let put = a.command(&["blob", "put", file.to_str().unwrap(), "--context", &ctx]);
    let second = field(&put, "blob_id");
    let get_second = [
        "blob",
        "get",
        &second,
        "--out",
        out.to_str().unwrap(),
        "--context",
        &ctx,
    ];
    assert_eq!(b.command(&get_second)["fetching"], json!(true));
    b.expect("the whole blob", |v| {
        v["type"] == json!("blobProgress")
            && v["blobId"] == json!(second)
            && v["received"] == v["total"]
    });
    assert_eq!(b.command(&get_second)["size"], json!(more.len()));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        more,
        "the second blob B wrote"
    );
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&out);

    // A call on A reaches B...
    let from_a = set(&mut a, &ctx, "from-a", "1");
    b.expect("A's delta", |v| {
        v["type"] == json!("deltaApplied") && v["deltaId"] == json!(from_a)
    });
    assert_eq!(get(&mut b, &ctx, "from-a"), json!("1"));
    // ...and the other way.
    let from_b = set(&mut b, &ctx, "from-b", "2");
    a.expect("B's delta", |v| {
        v["type"] == json!("deltaApplied") && v["deltaId"] == json!(from_b)
    });
    assert_eq!(get(&mut a, &ctx, "from-b"), json!("2"));

    // A line that is no command is answered with an error, and the node runs on.
    for (line, kind) in [
        ("not json", "Usage"),
        (r#"["frobnicate"]"#, "Usage"),
        (r#"["call", "zzz", "get"]"#, "BadId"),
    ] {
        let answer = a.send(line);
        assert_eq!(answer["type"], json!("error"), "{line}: {answer}");
        assert_eq!(answer["error"]["kind"], json!(kind), "{line}: {answer}");
    }
    assert_eq!(get(&mut a, &ctx, "from-a"), json!("1"));

    // B stops when its stdin closes, A on SIGTERM; both cleanly.
    b.stdin.take();
    b.expect("B stopping", |v| v["type"] == json!("stopped"));
    assert_eq!(b.exit_code(), 0);
    signal(&a, "TERM");
    let stopped = a.expect("A stopping", |v| v["type"] == json!("stopped"));
    assert_eq!(stopped["reason"], json!("SIGTERM"));
    assert_eq!(a.exit_code(), 0);

    // What each learned is in its store: a later process sees both writes, on both homes.
    for home in [&home_a, &home_b] {
        let all = ok(home, &["call", &ctx, "entries"]);
        assert_eq!(
            all["output"],
            json!({"from-a": "1", "from-b": "2"}),
            "{all}"
        );
        assert_eq!(ok(home, &["replay", &ctx])["matches"], json!(true));
    }
    let _ = std::fs::remove_dir_all(home_a);
    let _ = std::fs::remove_dir_all(home_b);
}

/// Sends the process a signal (`kill -NAME`).
fn signal(process: &Process, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &process.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn run_without_stdin_runs_on_past_its_end_until_sigint() {
    let (_relay, relay) = start_relay();
    let home = home("net-no-stdin");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tabnode"));
    command
        .arg("--home")
        .arg(&home)
        .args(["run", "--no-stdin", "--relay", &relay]);
    let mut node = Process::spawn("node", command);
    node.stdin.take(); // its stdin ends at once
    node.expect("started", |v| v["type"] == json!("started"));
    // Still running after the end of stdin: it reaches the relay and holds a reservation.
    node.expect("reservation", |v| v["type"] == json!("reserved"));
    signal(&node, "INT");
    let stopped = node.expect("stopping", |v| v["type"] == json!("stopped"));
    assert_eq!(stopped["reason"], json!("SIGINT"));
    assert_eq!(node.exit_code(), 0);
    let _ = std::fs::remove_dir_all(home);
}
