use proxy_runtime::Settings;

#[derive(serde::Deserialize, Settings)]
struct Bot {
    #[settings(env = "NAME")]
    name: String,
}

fn main() {}
