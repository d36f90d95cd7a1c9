use proxy_runtime::Settings;

#[derive(serde::Deserialize, Settings)]
#[allow(non_snake_case)]
struct Bot {
    api__key: String,
    _hidden: String,
    Name: String,
}

fn main() {}
