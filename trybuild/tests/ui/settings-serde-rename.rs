use proxy_runtime::Settings;

#[derive(serde::Deserialize, Settings)]
#[serde(rename_all = "camelCase")]
struct Bot {
    #[serde(rename = "botName")]
    name: String,
    #[serde(alias = "symbols")]
    pairs: String,
}

fn main() {}
