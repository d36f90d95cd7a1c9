use proxy_runtime::Settings;

#[derive(serde::Deserialize, Settings)]
#[settings(env_prefix = BOT_)]
struct Bot {
    name: String,
}

#[derive(serde::Deserialize, Settings)]
#[settings(yaml_section = 5)]
struct Bot2 {
    name: String,
}

#[derive(serde::Deserialize, Settings)]
#[settings(config_env)]
struct Bot3 {
    name: String,
}

fn main() {}
