use proxy_runtime::Settings;

#[derive(serde::Deserialize, Settings)]
struct Bot {
    name: String,
    symbols: Vec<String>,
    delay: std::time::Duration,
}

fn main() {}
