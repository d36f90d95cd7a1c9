//! `proxy-check`: loads proxy settings exactly as the runtime does and prints where each
//! exchange's HTTP and WebSocket traffic goes. Exit status 0 when the settings are valid,
//! 2 (with every error on stderr) when they are not or the command line is wrong.

use std::io::Write as _;
use std::process::ExitCode;

use std::time::Instant;

use proxy_runtime::check::{DEFAULT_KEY, Report};
use proxy_runtime::load::variables;
use proxy_runtime::{
    ConnectionKind, Dialer, ExchangeId, ProxyError, ProxyInjector, ProxySettings, Settings, Target,
    TlsRoots,
};

const USAGE: &str = "\
usage: proxy-check [--config FILE] [--prefix PREFIX] [--json] [EXCHANGE_ID ...]
       proxy-check --probe URL [--ca FILE] [--config FILE] [--prefix PREFIX] [--json] [EXCHANGE_ID ...]
       proxy-check --vars [--prefix PREFIX] [--json]

Loads proxy settings as the runtime does (defaults < YAML file < environment) and prints,
for the default and for every exchange configured or named, where HTTP and WebSocket
traffic goes. Exit status: 0 valid, 2 invalid settings or usage; with --probe, 1 when a
probe failed.

  --config FILE    YAML file whose `proxy:` section to read (default: $CRYPTOFEED_CONFIG)
  --prefix PREFIX  variable prefix (default: CRYPTOFEED_PROXY_)
  --json           print one JSON object on stdout
  --probe URL      connect to URL through each route listed: the HTTP routes for
                   http(s):// URLs, the WebSocket routes for ws(s):// URLs (TCP, proxy
                   handshake, TLS, and for WebSockets the upgrade)
  --ca FILE        also trust the CA certificates of this PEM file (with --probe)
  --vars           list every variable name the settings accept, with type and default
  -h, --help       print this help
";

struct Args {
    config: Option<String>,
    prefix: Option<String>,
    probe: Option<String>,
    ca: Option<String>,
    json: bool,
    vars: bool,
    exchanges: Vec<String>,
}

fn parse_args(args: impl Iterator<Item = std::ffi::OsString>) -> Result<Option<Args>, String> {
    let mut args = args
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument {a:?} is not valid UTF-8"))
        })
        .collect::<Result<Vec<String>, String>>()?
        .into_iter();
    let mut positional_only = false;
    let mut out = Args {
        config: None,
        prefix: None,
        probe: None,
        ca: None,
        json: false,
        vars: false,
        exchanges: Vec::new(),
    };
    while let Some(arg) = args.next() {
        if positional_only {
            out.exchanges.push(arg);
            continue;
        }
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
            "--" => positional_only = true,
            "-h" | "--help" | "--json" | "--vars" if inline.is_some() => {
                return Err(format!("{flag} takes no value"));
            }
            "-h" | "--help" => return Ok(None),
            "--json" => out.json = true,
            "--vars" => out.vars = true,
            "--config" => out.config = Some(value("--config")?),
            "--prefix" => out.prefix = Some(value("--prefix")?),
            "--probe" => out.probe = Some(value("--probe")?),
            "--ca" => out.ca = Some(value("--ca")?),
            f if f.starts_with('-') => return Err(format!("unknown option `{f}`")),
            _ => out.exchanges.push(arg),
        }
    }
    Ok(Some(out))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args_os().skip(1)) {
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
    let probes = match &args.probe {
        None => None,
        Some(url) => match probe_all(&settings, &report, url, args.ca.as_deref()) {
            Ok(results) => Some((url.clone(), results)),
            Err(e) => {
                eprintln!("proxy-check: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let out = if args.json {
        let mut json = report.to_json();
        if let (Some((url, results)), Some(obj)) = (&probes, json.as_object_mut()) {
            obj.insert("probe".to_owned(), probe_json(url, results));
        }
        format!("{json}\n")
    } else {
        let mut text = report.to_table();
        if let Some((url, results)) = &probes {
            text.push_str(&probe_table(url, results));
        }
        text
    };
    // A closed stdout (`proxy-check | head`) is not an error worth a panic.
    let _ = std::io::stdout().write_all(out.as_bytes());
    match probes {
        Some((_, results)) if results.iter().any(|r| r.outcome.is_err()) => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    }
}

/// The result of probing one route.
struct Probe {
    exchange: String,
    kind: ConnectionKind,
    route: String,
    outcome: Result<std::time::Duration, ProxyError>,
}

/// Connects to `url` through every route of the report, of the kind the URL's scheme names.
fn probe_all(
    settings: &ProxySettings,
    report: &Report,
    url: &str,
    ca: Option<&str>,
) -> Result<Vec<Probe>, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("--probe {url}: not a URL ({e})"))?;
    let (kind, tls) = match parsed.scheme() {
        "http" => (ConnectionKind::Http, false),
        "https" => (ConnectionKind::Http, true),
        "ws" => (ConnectionKind::Websocket, false),
        "wss" => (ConnectionKind::Websocket, true),
        other => {
            return Err(format!(
                "--probe takes http, https, ws or wss URLs, not {other}://"
            ));
        }
    };
    let mut roots = TlsRoots::default();
    if let Some(file) = ca {
        let pem = std::fs::read(file).map_err(|e| format!("--ca {file}: {e}"))?;
        roots = roots
            .add_pem(&pem)
            .map_err(|e| format!("--ca {file}: {e}"))?;
    }
    let injector = ProxyInjector::builder(settings.clone())
        .tls_roots(roots)
        .build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let target = Target::from_url(&parsed).map_err(|e| format!("--probe {url}: {e}"))?;
    let mut results = Vec::new();
    for routes in &report.routes {
        let dialer: Dialer = if routes.exchange == DEFAULT_KEY {
            injector.default_dialer(kind)
        } else {
            injector.dialer(&routes.exchange, kind)
        };
        let route = dialer
            .proxy()
            .map_or_else(|| "direct".to_owned(), str::to_owned);
        let started = Instant::now();
        let outcome = runtime.block_on(async {
            match kind {
                ConnectionKind::Http => dialer.connect(&target, tls).await.map(drop),
                ConnectionKind::Websocket => dialer.connect_websocket(url).await.map(drop),
            }
        });
        results.push(Probe {
            exchange: routes.exchange.clone(),
            kind,
            route,
            outcome: outcome.map(|()| started.elapsed()),
        });
    }
    Ok(results)
}

fn probe_table(url: &str, results: &[Probe]) -> String {
    let mut out = format!("\nprobe {url}:\n");
    for p in results {
        let line = match &p.outcome {
            Ok(took) => format!("ok ({} ms)", took.as_millis()),
            Err(e) => format!("FAILED: {e}"),
        };
        out.push_str(&format!(
            "  {:12} {:9} {:40} {line}\n",
            p.exchange,
            p.kind.as_str(),
            p.route
        ));
    }
    out
}

fn probe_json(url: &str, results: &[Probe]) -> serde_json::Value {
    let list: Vec<serde_json::Value> = results
        .iter()
        .map(|p| {
            let (ok, ms, error) = match &p.outcome {
                Ok(took) => (true, Some(took.as_millis() as u64), None),
                Err(e) => (false, None, Some(e.to_string())),
            };
            serde_json::json!({
                "exchange": p.exchange,
                "kind": p.kind.as_str(),
                "route": p.route,
                "ok": ok,
                "connect_ms": ms,
                "error": error,
            })
        })
        .collect();
    serde_json::json!({"url": url, "results": list})
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
