use proxy_runtime::Settings;

// Three mistakes, three errors, in one compilation.
#[derive(serde::Deserialize, Settings)]
#[settings(env_prefix = "BOT_", section = "bot")]
struct Bot {
    #[serde(rename = "n")]
    name: String,
    max__orders: u32,
}

fn main() {}
