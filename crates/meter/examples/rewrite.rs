//! Writes a module as the node runs it: `cargo run --release -p tabnode-meter --example rewrite
//! -- IN.wasm OUT.wasm [--no-fuel]` (for measuring what the rewrite costs on an engine).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, rest @ ..] = &args[..] else {
        eprintln!("usage: rewrite IN.wasm OUT.wasm [--no-fuel]");
        std::process::exit(2);
    };
    let config = tabnode_meter::Config {
        charge_fuel: !rest.iter().any(|a| a == "--no-fuel"),
        ..Default::default()
    };
    let wasm = std::fs::read(input).expect("reads IN.wasm");
    let out = tabnode_meter::instrument(&wasm, &config).unwrap_or_else(|e| {
        eprintln!("{input}: {e}");
        std::process::exit(1)
    });
    std::fs::write(output, &out).expect("writes OUT.wasm");
    eprintln!("{input}: {} -> {} bytes", wasm.len(), out.len());
}
