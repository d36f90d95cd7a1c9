//! `proxy-check`: loads proxy settings exactly as the runtime does and prints where each
//! exchange's HTTP and WebSocket traffic goes. Exit status 0 when the settings are valid,
//! 2 (with every error on stderr) when they are not or the command line is wrong.

use std::io::Write as _;
use std::process::ExitCode;

use proxy_runtime::check::Report;
use proxy_runtime::load::variables;
use proxy_runtime::{ExchangeId, ProxySettings, Settings};

const USAGE: &str = "\
usage: proxy-check [--config FILE] [--prefix PREFIX] [--json] [EXCHANGE_ID ...]
       proxy-check --vars [--prefix PREFIX] [--json]

Loads proxy settings as the runtime does (defaults < YAML file < environment) and prints,
for the default and for every exchange configured or named, where HTTP and WebSocket
traffic goes. Exit status: 0 valid, 2 invalid settings or usage.

  --config FILE    YAML file whose `proxy:` section to read (default: $CRYPTOFEED_CONFIG)
  --prefix PREFIX  variable prefix (default: CRYPTOFEED_PROXY_)
  --json           print one JSON object on stdout
  --vars           list every variable name the settings accept, with type and default
  -h, --help       print this help
";

struct Args {
    config: Option<String>,
    prefix: Option<String>,
    json: bool,
    vars: bool,
    exchanges: Vec<String>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut out = Args {
        config: None,
        prefix: None,
        json: false,
        vars: false,
        exchanges: Vec::new(),
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--json" => out.json = true,
            "--vars" => out.vars = true,
            "--config" => out.config = Some(value("--config")?),
            "--prefix" => out.prefix = Some(value("--prefix")?),
            f if f.starts_with('-') => return Err(format!("unknown option `{f}`")),
            _ => out.exchanges.push(arg),
        }
    }
    Ok(Some(out))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("proxy-check: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let prefix = args
        .prefix
        .clone()
        .or_else(|| ProxySettings::OPTIONS.env_prefix.map(str::to_owned))
        .unwrap_or_default();

    if args.vars {
        print_vars(&prefix, args.json);
        return ExitCode::SUCCESS;
    }

    let mut errors = Vec::new();
    let mut extra = Vec::new();
    for id in &args.exchanges {
        match ExchangeId::new(id) {
            Ok(id) => extra.push(id),
            Err(e) => errors.push(format!("exchange id `{id}` (argument): {e}")),
        }
    }
    let mut loader = ProxySettings::loader()
        .process_env()
        .env_prefix(prefix.clone());
    if let Some(config) = &args.config {
        loader = loader.yaml_file(config);
    }
    let settings = match loader.load() {
        Ok(s) => Some(s),
        Err(e) => {
            errors.extend(e.errors().iter().map(ToString::to_string));
            None
        }
    };
    let Some(settings) = settings.filter(|_| errors.is_empty()) else {
        let plural = if errors.len() == 1 { "" } else { "s" };
        eprintln!(
            "proxy-check: invalid proxy settings ({} error{plural}):",
            errors.len()
        );
        for e in &errors {
            eprintln!("  - {e}");
        }
        return ExitCode::from(2);
    };

    let report = Report::new(&settings, &extra, &prefix);
    let out = if args.json {
        format!("{}\n", report.to_json())
    } else {
        report.to_table()
    };
    // A closed stdout (`proxy-check | head`) is not an error worth a panic.
    let _ = std::io::stdout().write_all(out.as_bytes());
    ExitCode::SUCCESS
}

fn print_vars(prefix: &str, json: bool) {
    let vars = variables::<ProxySettings>(prefix);
    let mut out = String::new();
    if json {
        let list: Vec<serde_json::Value> = vars
            .iter()
            .map(|v| {
                serde_json::json!({
                    "name": v.name,
                    "expected": v.expected,
                    "default": v.default,
                    "required": v.required,
                    "doc": v.doc,
                })
            })
            .collect();
        out = format!("{}\n", serde_json::Value::Array(list));
    } else {
        for v in &vars {
            out.push_str(&v.name);
            out.push('\n');
            out.push_str(&format!("    {}\n", v.expected));
            match (&v.default, v.required) {
                (Some(d), _) => out.push_str(&format!("    default: {d}\n")),
                (None, true) => out.push_str("    required\n"),
                (None, false) => {}
            }
            if !v.doc.is_empty() {
                out.push_str(&format!("    {}\n", v.doc));
            }
        }
        out.push_str(
            "\nNames are case-insensitive; `__` separates levels; <ID> is an exchange id \
             (lowercase letters and digits, words joined by single `_`).\n",
        );
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
}
