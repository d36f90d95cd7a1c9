use proxy_runtime::Settings;

#[derive(serde::Deserialize, Settings)]
struct Bot<'a> {
    #[serde(borrow)]
    name: &'a str,
}

fn main() {}
