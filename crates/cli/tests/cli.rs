//! The `tabnode` binary end to end on a temporary home, with the kv-store guest app.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

#[test]
fn install_create_call_persist_and_replay() {
    let home = home("flow");
    let app = ok(&home, &["app", "install", &kv_store()]);
    let app_id = app["app_id"].as_str().unwrap();
    let ctx = ok(&home, &["context", "create", app_id, "--args", "{}"]);
    let ctx = ctx["context_id"].as_str().unwrap();

    let set = ok(&home, &["call", ctx, "set", r#"{"key":"k","value":"v"}"#]);
    assert_eq!(
        set["events"],
        json!([{"kind": "Inserted", "data": {"key": "k", "value": "v"}}])
    );
    assert_eq!(set["logs"], json!([r#"set "k""#]));
    assert!(set["root_hash"].is_string());
    ok(&home, &["call", ctx, "set", r#"{"key":"k2","value":"v2"}"#]);

    // A new process on the same home sees the state.
    let get = ok(&home, &["call", ctx, "get", r#"{"key":"k"}"#]);
    assert_eq!(get["output"], json!("v"));
    let entries = ok(&home, &["call", ctx, "entries"]);
    assert_eq!(entries["output"], json!({"k": "v", "k2": "v2"}));

    let replay = ok(&home, &["replay", ctx]);
    assert_eq!(replay["matches"], json!(true), "{replay}");
    assert_eq!(replay["deltas"], json!(3));

    let audit = ok(&home, &["audit", ctx]);
    let methods: Vec<&str> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, vec!["init", "set", "set", "get", "entries"]);
    let verified = ok(&home, &["audit", ctx, "--verify"]);
    assert_eq!(verified["ok"], json!(true), "{verified}");
    assert_eq!(verified["records"], json!(5));
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn failures_are_json_with_a_kind_and_a_non_zero_exit() {
    let home = home("errors");
    let app_id = ok(&home, &["app", "install", &kv_store()])["app_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ctx = ok(&home, &["context", "create", &app_id])["context_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let cases: [(&[&str], &str); 5] = [
        (&["call", &ctx, "nope", "{}"], "MethodNotFound"),
        (&["call", &ctx, "set", "[1]"], "BadArgs"),
        (&["call", &ctx, "set", "{not json"], "BadArgs"),
        (&["call", "zzz", "get", "{}"], "BadId"),
        (
            &["call", &ctx, "entries", "--fuel", "1000"],
            "ExecutionFailed",
        ),
    ];
    for (args, kind) in cases {
        let (code, value) = tabnode(&home, args);
        assert_eq!(code, 1, "{args:?}: {value}");
        assert_eq!(value["error"]["kind"], json!(kind), "{args:?}: {value}");
        assert!(value["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let fuel = tabnode(&home, &["call", &ctx, "entries", "--fuel", "1000"]).1;
    assert!(
        fuel["error"]["message"].as_str().unwrap().contains("fuel"),
        "{fuel}"
    );

    let (code, value) = tabnode(&home, &["frobnicate"]);
    assert_eq!(code, 2);
    assert_eq!(value["error"]["kind"], json!("Usage"));
    let (code, _) = tabnode(&home, &["app", "install", "/no/such/file.wasm"]);
    assert_eq!(code, 1);
    // None of it changed the state.
    assert_eq!(ok(&home, &["call", &ctx, "entries"])["output"], json!({}));
    assert_eq!(ok(&home, &["replay", &ctx])["matches"], json!(true));
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn help_is_text_on_stdout_and_exits_0() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["help"],
        &["help", "call"],
        &["call", "--help"],
        &["help", "app", "install"],
        &["app", "install", "--help"],
        &["audit", "-h"],
        &["help", "run"],
        &["help", "context", "invite"],
        &["context", "join", "--help"],
        &["blob", "put", "--help"],
        &["help", "identity"],
    ] {
        let (code, out) = tabnode_raw(args);
        assert_eq!(code, 0, "{args:?}: {out}");
        assert!(out.contains("Usage: tabnode"), "{args:?}: {out}");
        assert!(
            serde_json::from_str::<Value>(&out).is_err(),
            "{args:?}: {out}"
        );
    }
    let (_, call) = tabnode_raw(&["help", "call"]);
    for word in ["CONTEXT_ID", "METHOD", "ARGS_JSON", "--fuel", "--home"] {
        assert!(call.contains(word), "{call}");
    }
    let (_, run) = tabnode_raw(&["help", "run"]);
    for word in ["--relay", "--no-stdin", "SIGTERM", "JSON array"] {
        assert!(run.contains(word), "{run}");
    }
    let (code, version) = tabnode_raw(&["--version"]);
    assert_eq!(
        (code, version.trim()),
        (0, concat!("tabnode ", env!("CARGO_PKG_VERSION")))
    );
}

#[test]
fn usage_errors_are_json_with_exit_2() {
    let home = home("usage");
    for args in [
        &["frobnicate"][..],
        &[],
        &["call", "ctx"],
        &["call", "ctx", "m", "{}", "extra"],
        &["context", "create"],
        &["call", "ctx", "m", "--fuel", "lots"],
        &["audit", "ctx", "--no-such-flag"],
    ] {
        let (code, value) = tabnode(&home, args);
        assert_eq!(code, 2, "{args:?}: {value}");
        assert_eq!(value["error"]["kind"], json!("Usage"), "{args:?}: {value}");
        assert!(value["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    // --home is required for a command, not for help.
    let (code, out) = tabnode_raw(&["replay", "ctx"]);
    assert_eq!(code, 2, "{out}");
    let value: Value = serde_json::from_str(&out).unwrap();
    assert!(value["error"]["message"]
        .as_str()
        .unwrap()
        .contains("--home"));
    let _ = std::fs::remove_dir_all(home);
}

const ABI: &str = r#"{"schema_version":"wasm-abi/1","methods":[{"name":"get"}]}"#;

/// An .mpk (gzipped tar of manifest.json, app.wasm, abi.json) of `wasm`, written to `dir`
/// under a name that does not say what it is.
fn bundle_file(dir: &Path, wasm: &[u8], manifest: serde_json::Value) -> PathBuf {
    let mut tar = tar::Builder::new(Vec::new());
    let manifest = manifest.to_string();
    for (path, bytes) in [
        ("manifest.json", manifest.as_bytes()),
        ("app.wasm", wasm),
        ("abi.json", ABI.as_bytes()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, path, bytes).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar.into_inner().unwrap()).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("app.bin");
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    path
}

fn kv_manifest() -> Value {
    json!({
        "version": "1.0", "package": "com.calimero.kv-store", "appVersion": "1.0.0",
        "minRuntimeVersion": "0.1.0",
        "wasm": {"path": "app.wasm", "size": 0, "hash": null},
        "abi": {"path": "abi.json", "size": ABI.len(), "hash": null},
        "migrations": []
    })
}

#[test]
fn an_mpk_bundle_installs_like_its_wasm_and_keeps_its_abi() {
    let home = home("mpk");
    let wasm = std::fs::read(kv_store()).unwrap();
    let file = bundle_file(&home.join("files"), &wasm, kv_manifest());
    let installed = ok(&home, &["app", "install", file.to_str().unwrap()]);
    assert_eq!(installed["package"], json!("com.calimero.kv-store"));
    assert_eq!(installed["app_version"], json!("1.0.0"));
    assert_eq!(installed["abi"], json!(true));
    assert_eq!(installed["signer_id"], json!(null));
    let app_id = installed["app_id"].as_str().unwrap();

    // The bare wasm on another home: the same id.
    let bare_home = self::home("mpk-bare");
    let bare = ok(&bare_home, &["app", "install", &kv_store()]);
    assert_eq!(bare["app_id"], json!(app_id));
    let (code, no_abi) = tabnode(&bare_home, &["app", "abi", app_id]);
    assert_eq!(
        (code, &no_abi["error"]["kind"]),
        (1, &json!("NoAbi")),
        "{no_abi}"
    );

    let abi = ok(&home, &["app", "abi", app_id]);
    assert_eq!(abi, serde_json::from_str::<Value>(ABI).unwrap());
    let ctx = ok(&home, &["context", "create", app_id])["context_id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&home, &["call", &ctx, "set", r#"{"key":"k","value":"v"}"#]);
    assert_eq!(
        ok(&home, &["call", &ctx, "get", r#"{"key":"k"}"#])["output"],
        json!("v")
    );
    let _ = std::fs::remove_dir_all(home);
    let _ = std::fs::remove_dir_all(bare_home);
}

#[test]
fn a_bad_bundle_is_refused_and_stores_nothing() {
    let home = home("bad-mpk");
    ok(&home, &["app", "install", &kv_store()]);
    let log = home.join("store/store.log");
    let size = || std::fs::metadata(&log).unwrap().len();
    let before = size();
    let wasm = std::fs::read(kv_store()).unwrap();
    let mut missing = kv_manifest();
    missing["abi"]["path"] = json!("res/abi.json");
    let mut no_package = kv_manifest();
    no_package.as_object_mut().unwrap().remove("package");
    for (what, manifest) in [
        ("names a missing file", missing),
        ("no package", no_package),
    ] {
        let file = bundle_file(&home.join(what), &wasm, manifest);
        let (code, value) = tabnode(&home, &["app", "install", file.to_str().unwrap()]);
        assert_eq!(code, 1, "{what}: {value}");
        assert_eq!(
            value["error"]["kind"],
            json!("BadBundle"),
            "{what}: {value}"
        );
    }
    // gzip magic, then junk.
    let junk = home.join("junk.mpk");
    std::fs::write(&junk, [0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    let (code, value) = tabnode(&home, &["app", "install", junk.to_str().unwrap()]);
    assert_eq!(
        (code, &value["error"]["kind"]),
        (1, &json!("BadBundle")),
        "{value}"
    );
    assert_eq!(size(), before, "a refused bundle wrote to the store");
    let _ = std::fs::remove_dir_all(home);
}

#[cfg(unix)]
#[test]
fn the_home_is_private_and_arguments_need_not_be_utf8() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    // A home that is not UTF-8 (a path may be any bytes) is made 0700, its log 0600.
    let parent = home("bytes");
    std::fs::create_dir_all(&parent).unwrap();
    let home = parent.join(OsStr::from_bytes(b"home-\xff"));
    let app = ok(&home, &["app", "install", &kv_store()]);
    assert_eq!(mode(&home), 0o700);
    assert_eq!(mode(&home.join("store")), 0o700);
    assert_eq!(mode(&home.join("store/store.log")), 0o600);

    // An argument that must be text and is not: a usage error, not a panic.
    let ctx = ok(
        &home,
        &["context", "create", app["app_id"].as_str().unwrap()],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tabnode"))
        .arg("--home")
        .arg(&home)
        .args(["call", ctx["context_id"].as_str().unwrap()])
        .arg(OsStr::from_bytes(b"se\xfft"))
        .output()
        .unwrap();
    let value: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(2), "{value}");
    assert_eq!(value["error"]["kind"], json!("Usage"), "{value}");
    let _ = std::fs::remove_dir_all(parent);
}
