use proxy_runtime::Settings;

#[derive(serde::Deserialize, Settings)]
#[settings(one_of("url"))]
#[settings(one_of("url", "url", "urls"))]
#[settings(one_of("url", "mirror"))]
#[settings(one_of("url", "name"))]
struct Route {
    url: Option<String>,
    #[serde(default)]
    urls: Vec<String>,
    name: String,
}

fn main() {}
