//! Native runtime figures as JSON: `tabnode-bench [KV_STORE_WASM] [CALLS]`.

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "tests/apps/dist/kv_store.wasm".into());
    let calls = args
        .next()
        .map_or(500, |n| n.parse().expect("CALLS is a number"));
    let wasm = std::fs::read(&path).unwrap_or_else(|e| {
        eprintln!("{path}: {e} (build the apps with `bash tests/apps/build.sh`)");
        std::process::exit(1)
    });
    match tabnode_bench::run(&wasm, calls) {
        Ok(figures) => println!(
            "{}",
            serde_json::to_string(&figures).expect("figures encode")
        ),
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            std::process::exit(1);
        }
    }
}
