use proxy_runtime::Settings;

#[derive(serde::Deserialize, Settings)]
struct Pair(u16, u16);

fn main() {}
