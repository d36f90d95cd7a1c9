use proxy_runtime::Settings;

// `shorthand` names no field.
#[derive(serde::Deserialize, Settings)]
#[settings(shorthand = "address")]
struct Member {
    url: String,
}

// A value given alone would leave `weight` unset, and it has no default.
#[derive(serde::Deserialize, Settings)]
#[settings(shorthand = "url")]
struct Weighted {
    url: String,
    weight: u32,
    #[serde(default)]
    source: Option<String>,
}

fn main() {}
