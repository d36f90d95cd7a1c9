use proxy_runtime::Settings;

#[derive(serde::Deserialize, Settings)]
struct Nothing;

fn main() {}
