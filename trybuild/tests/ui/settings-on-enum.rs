use proxy_runtime::Settings;

#[derive(serde::Deserialize, Settings)]
enum Mode {
    Live,
    Paper,
}

fn main() {}
