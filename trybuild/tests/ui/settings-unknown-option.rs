use proxy_runtime::Settings;

#[derive(serde::Deserialize, Settings)]
#[settings(env_prefx = "BOT_")]
struct Bot {
    name: String,
}

fn main() {}
