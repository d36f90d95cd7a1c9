use proxy_runtime::Settings;

#[derive(serde::Deserialize, Settings)]
#[settings(env_prefix = "BOT_", yaml_section = "bot")]
#[settings(env_prefix = "ROBOT_")]
struct Bot {
    name: String,
}

fn main() {}
