//! Loads `examples/config.yaml` with any `CRYPTOFEED_PROXY_*` variables on top, exactly as
//! the runtime does, and prints where each exchange's traffic goes.
//!
//! ```sh
//! cargo run --example quickstart
//! CRYPTOFEED_PROXY_EXCHANGES__KRAKEN__HTTP__URL=socks5h://127.0.0.1:9050 cargo run --example quickstart
//! ```

use std::error::Error;
use std::process::ExitCode;

use proxy_runtime::check::Report;
use proxy_runtime::{ExchangeId, ProxySettings, Settings};

fn main() -> Result<ExitCode, Box<dyn Error>> {
    let config = proxy_examples::config_path();
    let prefix = ProxySettings::OPTIONS.env_prefix.unwrap_or_default();
    println!(
        "settings: {} (section `proxy:`), then variables {prefix}*",
        config.display()
    );

    let overrides: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.to_ascii_uppercase().starts_with(prefix))
        .collect();
    if overrides.is_empty() {
        println!("no {prefix}* variables set: the file alone decides (set one to override it)");
    } else {
        println!("overriding the file: {}", overrides.join(", "));
    }
    println!();

    let settings = match ProxySettings::loader()
        .yaml_file(&config)
        .process_env()
        .load()
    {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let kraken = ExchangeId::new("kraken")?;
    print!("{}", Report::new(&settings, &[kraken], prefix).to_table());
    Ok(ExitCode::SUCCESS)
}
