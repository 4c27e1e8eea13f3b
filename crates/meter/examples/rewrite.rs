//! Writes a module as the node runs it: `cargo run --release -p tabnode-meter --example rewrite
//! -- IN.wasm OUT.wasm [--no-fuel] [--plain] [--as-is]` (for measuring what the rewrite costs on
//! an engine). `--plain` writes the stack accounting as meter 1 did (`Config::plain`); IN may be
//! text (`.wat`), and `--as-is` writes it out as binary, not rewritten.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, rest @ ..] = &args[..] else {
        eprintln!("usage: rewrite IN.wasm|IN.wat OUT.wasm [--no-fuel] [--plain] [--as-is]");
        std::process::exit(2);
    };
    let flag = |name: &str| rest.iter().any(|a| a == name);
    let config = tabnode_meter::Config {
        charge_fuel: !flag("--no-fuel"),
        plain: flag("--plain"),
        ..Default::default()
    };
    let wasm = wat::parse_file(input).unwrap_or_else(|e| {
        eprintln!("{input}: {e}");
        std::process::exit(1)
    });
    let out = if flag("--as-is") {
        wasm.clone()
    } else {
        tabnode_meter::instrument(&wasm, &config).unwrap_or_else(|e| {
            eprintln!("{input}: {e}");
            std::process::exit(1)
        })
    };
    std::fs::write(output, &out).expect("writes OUT.wasm");
    eprintln!("{input}: {} -> {} bytes", wasm.len(), out.len());
}
