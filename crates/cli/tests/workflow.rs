//! `tabnode workflow run`: the project's own merobox-format workflows (tests/workflows/) on real
//! tabnode nodes and the real relay, as a user runs them from the repository's root. Needs the
//! relay binary beside `tabnode` (`make relay`, same CARGO_TARGET_DIR) or TABNODE_RELAY, and the
//! guest apps (`bash tests/apps/build.sh`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

/// What a run printed: its JSON lines (steps, then the summary or the error) and exit code.
struct Run {
    code: i32,
    lines: Vec<Value>,
    stderr: String,
}

impl Run {
    fn steps(&self) -> Vec<&Value> {
        self.lines
            .iter()
            .filter(|l| l["type"] == json!("step"))
            .collect()
    }

    fn last(&self) -> &Value {
        self.lines.last().expect("a run prints a last line")
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run_workflow(file: &str, homes: &Path) -> Run {
    run_workflow_with(file, homes, &[])
}

fn run_workflow_with(file: &str, homes: &Path, flags: &[&str]) -> Run {
    kv_store(); // the workflows install it: fail early, clearly, if it is not built
    let out = Command::new(env!("CARGO_BIN_EXE_tabnode"))
        .current_dir(repo_root())
        .args(["workflow", "run", file, "--homes"])
        .arg(homes)
        .args(flags)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines = stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{stderr}"))
        })
        .collect();
    Run {
        code: out.status.code().unwrap_or(-1),
        lines,
        stderr,
    }
}

/// Every node process is gone once the run is over: each home opens again (no `HomeLocked`).
fn assert_homes_free(homes: &Path, nodes: &[&str]) {
    for node in nodes {
        ok(&homes.join(node), &["context", "list"]);
    }
}

#[test]
fn two_nodes_invite_join_and_see_each_others_writes() {
    let homes = home("wf-two");
    let run = run_workflow("tests/workflows/kv-store-two-nodes.yml", &homes);
    assert_eq!(run.code, 0, "{:?}\n{}", run.last(), run.stderr);
    let steps = run.steps();
    // 13 steps, the repeat's 4 steps 3 times over.
    assert_eq!(steps.len(), 13 + 4 * 3, "{}", run.stderr);
    assert!(
        steps.iter().all(|s| s["passed"] == json!(true)),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.last(),
        &json!({"type": "done", "workflow": "kv-store on two nodes", "passed": 13, "total": 13, "failed": 0})
    );
    assert!(
        run.stderr.contains("✓ 11#3.4 Node 1 sees the round"),
        "{}",
        run.stderr
    );
    assert_homes_free(&homes, &["kv-node-1", "kv-node-2"]);
    // What node 2 learned is in its store.
    let ctx = ok(&homes.join("kv-node-2"), &["context", "list"])["contexts"][0].clone();
    let entries = ok(
        &homes.join("kv-node-2"),
        &["call", ctx.as_str().unwrap(), "entries"],
    );
    assert_eq!(entries["output"]["round_3"], json!("r3"), "{entries}");
    let _ = std::fs::remove_dir_all(homes);
}

#[test]
fn a_mesh_of_three_a_blob_and_an_expected_failure() {
    let homes = home("wf-mesh");
    let run = run_workflow("tests/workflows/kv-store-mesh-and-blob.yml", &homes);
    assert_eq!(run.code, 0, "{:?}\n{}", run.last(), run.stderr);
    assert_eq!(run.last()["passed"], json!(10), "{}", run.stderr);
    assert_homes_free(&homes, &["mesh-node-1", "mesh-node-2", "mesh-node-3"]);
    let _ = std::fs::remove_dir_all(homes);
}

#[test]
fn an_integer_beyond_2_pow_53_comes_exact() {
    let homes = home("wf-big");
    let run = run_workflow("tests/workflows/probe-big-integers.yml", &homes);
    assert_eq!(run.code, 0, "{:?}\n{}", run.last(), run.stderr);
    assert_eq!(run.last()["passed"], json!(4), "{}", run.stderr);
    let _ = std::fs::remove_dir_all(homes);
}

#[test]
fn a_failing_step_ends_the_run_naming_the_step_and_why() {
    let homes = home("wf-fail");
    let run = run_workflow("tests/workflows/failing.yml", &homes);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let steps = run.steps();
    assert_eq!(
        steps.len(),
        4,
        "the step after the failure must not run: {}",
        run.stderr
    );
    let failed = steps[3];
    assert_eq!(failed["passed"], json!(false));
    assert_eq!(failed["error"]["kind"], json!("AssertionFailed"));
    let error = &run.last()["error"];
    assert_eq!(error["kind"], json!("StepFailed"), "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            r#"step 4 "Expect a value that is not there" (json_assert): AssertionFailed"#
        ),
        "{message}"
    );
    assert!(
        message.contains(r#"right={"output":"present"}"#),
        "{message}"
    );
    let summary = &run.lines[run.lines.len() - 2];
    assert_eq!(
        (&summary["passed"], &summary["total"]),
        (&json!(3), &json!(5))
    );
    assert_homes_free(&homes, &["solo-1"]);
    let _ = std::fs::remove_dir_all(homes);
}

#[test]
fn a_step_it_cannot_do_fails_as_unsupported_naming_it() {
    let homes = home("wf-unsupported");
    let run = run_workflow("tests/workflows/unsupported.yml", &homes);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let error = &run.last()["error"];
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with(r#"step 2 "Run a script in the container" (script): UnsupportedStep: unsupported step: script"#),
        "{message}"
    );
    assert_homes_free(&homes, &["solo-1"]);
    let _ = std::fs::remove_dir_all(homes);
}

#[test]
fn a_workflow_that_is_not_one_is_refused_before_anything_starts() {
    let dir = home("wf-bad");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.yml");
    for (text, kind) in [
        ("steps: [", "BadWorkflow"),
        ("nodes: {count: 1, prefix: n}\n", "BadWorkflow"),
        ("nodes: [a, b]\nsteps: []\n", "BadWorkflow"),
    ] {
        std::fs::write(&file, text).unwrap();
        let (code, out) = tabnode_raw(&["workflow", "run", file.to_str().unwrap()]);
        let value: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(
            (code, &value["error"]["kind"]),
            (1, &json!(kind)),
            "{text}: {out}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The counts of an operation in a fuzzy_test step's JSON line.
fn runs_of(fuzzy: &Value, operation: &str) -> (u64, u64, u64) {
    let counts = &fuzzy["byOperation"][operation];
    let count = |name: &str| counts[name].as_u64().unwrap_or_else(|| panic!("{fuzzy}"));
    (count("runs"), count("passed"), count("failed"))
}

#[test]
fn a_fuzzy_test_counts_its_assertions_and_passes_by_its_threshold() {
    let homes = home("wf-fuzzy");
    let flags = [
        "--keep-going",
        "--fuzzy-minutes",
        "0.03",
        "--fuzzy-seed",
        "42",
    ];
    let run = run_workflow_with("tests/workflows/kv-store-fuzzy.yml", &homes, &flags);
    let steps = run.steps();
    assert_eq!(steps.len(), 5, "{}", run.stderr);

    // The first: every assertion holds (2 a set_and_verify, 1 a list_entries), 100% needed.
    let first = steps[2];
    assert_eq!(first["passed"], json!(true), "{first}\n{}", run.stderr);
    let fuzzy = &first["fuzzy"];
    assert_eq!(fuzzy["seed"], json!("42"));
    // --fuzzy-minutes, not the workflow's 0.2 (12 s): about 1.8 s, the last operation finished.
    assert_eq!(fuzzy["minutes"], json!(0.03));
    let ran = fuzzy["ranMs"].as_u64().unwrap();
    assert!((1800..12_000).contains(&ran), "ran {ran} ms");
    let (writes, written_passed, written_failed) = runs_of(fuzzy, "set_and_verify");
    let (lists, listed_passed, listed_failed) = runs_of(fuzzy, "list_entries");
    assert!(writes > 0 && lists > 0, "{fuzzy}");
    assert_eq!(fuzzy["operations"], json!(writes + lists));
    assert_eq!((written_passed, written_failed), (2 * writes, 0), "{fuzzy}");
    assert_eq!((listed_passed, listed_failed), (lists, 0), "{fuzzy}");
    assert_eq!(fuzzy["passed"], json!(2 * writes + lists));
    assert_eq!(
        (&fuzzy["failed"], &fuzzy["callErrors"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(fuzzy["passRate"], json!(100.0));
    assert!(run.stderr.contains("--fuzzy-seed 42"), "{}", run.stderr);
    assert!(
        run.stderr.contains("  … fuzzy_test ") && run.stderr.contains(" / 1s: "),
        "a progress line every summary_interval_seconds: {}",
        run.stderr
    );
    // Its counts, exported as merobox exports them, read by the next step.
    assert_eq!(steps[3]["passed"], json!(true), "{}", run.stderr);

    // The second: every expects_the_impossible fails its one assertion; 100% cannot be met.
    let second = steps[4];
    assert_eq!(second["passed"], json!(false), "{}", run.stderr);
    assert_eq!(second["error"]["kind"], json!("BelowThreshold"), "{second}");
    let fuzzy = &second["fuzzy"];
    let (sets, sets_passed, sets_failed) = runs_of(fuzzy, "set");
    let (impossible, impossible_passed, impossible_failed) =
        runs_of(fuzzy, "expects_the_impossible");
    assert!(impossible > 0, "{fuzzy}");
    assert_eq!((sets_passed, sets_failed), (sets, 0), "{fuzzy}");
    assert_eq!(
        (impossible_passed, impossible_failed),
        (0, impossible),
        "{fuzzy}"
    );
    assert_eq!(fuzzy["failed"], json!(impossible));
    let message = second["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("is below the success threshold 100%"),
        "{message}"
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        (
            &run.last()["error"]["kind"],
            &run.lines[run.lines.len() - 2]["passed"]
        ),
        (&json!("StepFailed"), &json!(4))
    );
    assert_homes_free(&homes, &["fz-node-1", "fz-node-2"]);
    let _ = std::fs::remove_dir_all(homes);
}

#[test]
fn a_fuzzy_test_that_does_not_read_is_refused_before_anything_starts() {
    let dir = home("wf-fuzzy-bad");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.yml");
    let step = |fields: &str| {
        format!(
            "nodes: {{count: 1, prefix: n}}\nsteps:\n  - {{name: ok, type: wait, seconds: 0}}\n  - {{name: load, type: fuzzy_test, duration_minutes: 1, context_id: c, nodes: [{{name: n-1}}], {fields}}}\n"
        )
    };
    let ops = "operations: [{name: o, weight: 1, steps: [{type: wait, seconds: 0}]}]";
    for (text, says) in [
        (step(&format!("{ops}, duration_minute: 2")), "duration_minute: unknown field"),
        (step(&format!("{ops}, success_threshold: 120")), "success_threshold: must be a percentage"),
        (step("operations: [{name: o, weight: 0, steps: [{type: wait, seconds: 0}]}]"), "operations[0].weight: must be a positive number"),
        (step("operations: [{name: o, weight: 1, steps: [{type: parallel}]}]"), "is not a step fuzzy_test runs"),
        (step("operations: [{name: o, weight: 1, steps: [{type: call, node: n-7, context_id: c, method: m}]}]"), "no node \"n-7\""),
        (step("operations: [{name: o, weight: 1, steps: [{type: wait, seconds: 0, x: 1}]}]"), "steps[0].x: unknown field"),
        (step("operations: [{name: o, weight: 1, steps: [{type: call, node: n-1, context_id: c, method: m, args: {k: '{{random_int(1)}}'}}]}]"), "random_int(1): takes two integers"),
    ] {
        std::fs::write(&file, &text).unwrap();
        let (code, out) = tabnode_raw(&["workflow", "run", file.to_str().unwrap()]);
        let value: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(code, 1, "{text}: {out}");
        assert_eq!(value["error"]["kind"], json!("BadWorkflow"), "{text}: {out}");
        let message = value["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(r#"step 2 "load" (fuzzy_test): "#) && message.contains(says),
            "{message} should say {says:?}"
        );
    }
    let (code, out) = tabnode_raw(&["workflow", "run", "x.yml", "--fuzzy-minutes", "0"]);
    assert_eq!(code, 2, "{out}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The runner's child processes (Linux: /proc lists them).
#[cfg(target_os = "linux")]
fn children(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn sigterm_stops_the_run_and_every_process_it_started() {
    use std::io::{BufRead, BufReader};
    let dir = home("wf-term");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("long.yml");
    std::fs::write(
        &file,
        "nodes: {count: 2, prefix: n}\nsteps:\n  - {name: Long wait, type: wait, seconds: 600}\n",
    )
    .unwrap();
    let homes = dir.join("homes");
    let mut runner = Command::new(env!("CARGO_BIN_EXE_tabnode"))
        .args(["workflow", "run"])
        .arg(&file)
        .arg("--homes")
        .arg(&homes)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The relay and the nodes run once the runner says how many steps it runs on them.
    let mut stderr = BufReader::new(runner.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("workflow ") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the runner ended early"
        );
    }
    let started = std::time::Instant::now();
    while children(runner.id()).len() < 3 {
        assert!(started.elapsed().as_secs() < 30, "no relay and two nodes");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let spawned = children(runner.id());
    let status = Command::new("kill")
        .args(["-TERM", &runner.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = runner.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let message = last["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(r#"step 1 "Long wait" (wait): Interrupted"#),
        "{message}"
    );
    for pid in spawned {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} outlived the runner"
        );
    }
    assert_homes_free(&homes, &["n-1", "n-2"]);
    let _ = std::fs::remove_dir_all(dir);
}
