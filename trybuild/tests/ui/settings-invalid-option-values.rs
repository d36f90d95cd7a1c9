use proxy_runtime::Settings;

#[derive(serde::Deserialize, Settings)]
#[settings(env_prefix = "bot_", config_env = "BOT-CONFIG", yaml_section = "bot.settings")]
struct Bot {
    name: String,
}

#[derive(serde::Deserialize, Settings)]
#[settings(env_prefix = "")]
struct Bot2 {
    name: String,
}

fn main() {}
