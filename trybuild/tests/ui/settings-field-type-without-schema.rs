use proxy_runtime::Settings;

#[derive(serde::Deserialize, Settings)]
struct Bot {
    name: String,
    ratio: f64,
    delays: Vec<std::time::Duration>,
}

fn main() {}
