use proxy_runtime::Settings;

#[derive(Settings)]
struct Bot {
    name: String,
}

fn main() {}
