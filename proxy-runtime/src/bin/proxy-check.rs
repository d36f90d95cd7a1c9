//! `proxy-check`: loads proxy settings exactly as the runtime does and prints where each
//! exchange's HTTP and WebSocket traffic goes, and where each route was set. Exit status 0
//! when the settings are valid, 1 when a probe failed, 2 (with every error on stderr) when
//! the settings are invalid or the command line is wrong.
//!
//! This file only reads the command line and chooses what to run; the reports and their
//! rendering are `proxy_runtime::check`'s.

use std::io::Write as _;
use std::process::ExitCode;

use proxy_runtime::check::shared::{self, SharedState};
use proxy_runtime::check::{Report, probe, render};
use proxy_runtime::load::variables;
use proxy_runtime::{ExchangeId, ProxyInjector, ProxySettings, Settings, TlsRoots};

const USAGE: &str = "\
usage: proxy-check [--shared] [--config FILE] [--prefix PREFIX] [--json] [EXCHANGE_ID ...]
       proxy-check --probe URL [--ca FILE] [--config FILE] [--prefix PREFIX] [--json] [EXCHANGE_ID ...]
       proxy-check --vars [--prefix PREFIX] [--json]
       proxy-check --diff FILE [--config FILE] [--prefix PREFIX] [--json]

Loads proxy settings as the runtime does (defaults < YAML file < environment) and prints,
for the default and for every exchange configured or named, where HTTP and WebSocket
traffic goes and where each route was set. Exit status: 0 valid, 2 invalid settings or
usage; with --probe or --shared, 1 when a probe failed or the shared store did not answer.

  --config FILE    YAML file whose `proxy:` section to read (default: $CRYPTOFEED_CONFIG)
  --prefix PREFIX  variable prefix (default: CRYPTOFEED_PROXY_)
  --json           print one JSON object on stdout
  --probe URL      connect to URL through each route listed: the HTTP routes for
                   http(s):// URLs, the WebSocket routes for ws(s):// URLs (TCP, proxy
                   handshake, TLS, and for WebSockets the upgrade)
  --ca FILE        also trust the CA certificates of this PEM file (with --probe)
  --shared         ask the shared store (shared.url) whether it answers, and print what
                   it holds for each exit: weight held and left, cooling, connection
                   places (--probe does too, when a store is configured)
  --vars           list every variable name the settings accept, with type and default
  --diff FILE      print what reloading the settings from FILE (with the environment
                   as it is) would change against the settings in force now (the
                   environment and --config or $CRYPTOFEED_CONFIG); exit 2 when FILE
                   does not load, with every error, before anything is deployed
  -h, --help       print this help
";

/// What to do.
enum Mode {
    /// Print the route report.
    Routes,
    /// Print the route report, then probe `url` through each route.
    Probe { url: String, ca: Option<String> },
    /// List the variables.
    Vars,
    /// What reloading from `file` would change.
    Diff { file: String },
}

struct Args {
    mode: Mode,
    config: Option<String>,
    prefix: Option<String>,
    json: bool,
    shared: bool,
    exchanges: Vec<String>,
}

/// Reads the command line; `Ok(None)` asks for the help.
fn parse_args(args: impl Iterator<Item = std::ffi::OsString>) -> Result<Option<Args>, String> {
    let mut args = args
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument {a:?} is not valid UTF-8"))
        })
        .collect::<Result<Vec<String>, String>>()?
        .into_iter();
    let (mut config, mut prefix, mut probe, mut ca) = (None, None, None, None);
    let mut diff = None;
    let (mut json, mut vars, mut positional_only) = (false, false, false);
    let mut shared = false;
    let mut exchanges = Vec::new();
    while let Some(arg) = args.next() {
        if positional_only {
            exchanges.push(arg);
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
            "-h" | "--help" | "--json" | "--vars" | "--shared" if inline.is_some() => {
                return Err(format!("{flag} takes no value"));
            }
            "-h" | "--help" => return Ok(None),
            "--json" => json = true,
            "--vars" => vars = true,
            "--shared" => shared = true,
            "--config" => config = Some(value("--config")?),
            "--prefix" => prefix = Some(value("--prefix")?),
            "--probe" => probe = Some(value("--probe")?),
            "--ca" => ca = Some(value("--ca")?),
            "--diff" => diff = Some(value("--diff")?),
            f if f.starts_with('-') => return Err(format!("unknown option `{f}`")),
            _ => exchanges.push(arg),
        }
    }
    if let Some(file) = diff {
        if vars || probe.is_some() || ca.is_some() || shared || !exchanges.is_empty() {
            return Err(
                "--diff compares two sets of settings; it takes no --vars, --probe, --ca, --shared or exchange ids"
                    .to_owned(),
            );
        }
        return Ok(Some(Args {
            mode: Mode::Diff { file },
            config,
            prefix,
            json,
            shared,
            exchanges,
        }));
    }
    let mode = match (vars, probe, ca) {
        (true, None, None) if config.is_none() && exchanges.is_empty() && !shared => Mode::Vars,
        (true, ..) => {
            return Err(
                "--vars lists every variable; it takes no --config, --probe, --ca, --shared or exchange ids"
                    .to_owned(),
            );
        }
        (false, Some(url), ca) => Mode::Probe { url, ca },
        (false, None, Some(_)) => return Err("--ca is used with --probe URL".to_owned()),
        (false, None, None) => Mode::Routes,
    };
    Ok(Some(Args {
        mode,
        config,
        prefix,
        json,
        shared,
        exchanges,
    }))
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
    match run(&args, &prefix) {
        Ok((out, code)) => {
            // A closed stdout (`proxy-check | head`) is not an error worth a panic.
            let _ = std::io::stdout().write_all(out.as_bytes());
            code
        }
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            ExitCode::from(2)
        }
    }
}

/// Runs the mode: what to print and the exit status, or the lines to print on stderr.
fn run(args: &Args, prefix: &str) -> Result<(String, ExitCode), Vec<String>> {
    if let Mode::Vars = args.mode {
        let vars = variables::<ProxySettings>(prefix);
        let out = if args.json {
            render::json(&vars)
        } else {
            render::vars_table(&vars)
        };
        return Ok((out, ExitCode::SUCCESS));
    }
    if let Mode::Diff { file } = &args.mode {
        return diff(args, prefix, file);
    }
    let mut errors = Vec::new();
    let mut extra = Vec::new();
    for id in &args.exchanges {
        match ExchangeId::new(id) {
            Ok(id) => extra.push(id),
            // Shown as a URL would be: an argument may be a URL pasted in the wrong place.
            Err(e) => errors.push(format!(
                "exchange id `{}` (argument): {e}",
                probe::redact_url(id)
            )),
        }
    }
    let mut loader = ProxySettings::loader()
        .process_env()
        .env_prefix(prefix.to_owned());
    if let Some(config) = &args.config {
        loader = loader.yaml_file(config);
    }
    let loaded = loader
        .load_with_origins()
        .map_err(|e| errors.extend(e.errors().iter().map(ToString::to_string)))
        .ok();
    let Some((settings, origins)) = loaded.filter(|_| errors.is_empty()) else {
        let plural = if errors.len() == 1 { "" } else { "s" };
        let mut lines = vec![format!(
            "proxy-check: invalid proxy settings ({} error{plural}):",
            errors.len()
        )];
        lines.extend(errors.iter().map(|e| format!("  - {e}")));
        return Err(lines);
    };
    let report = Report::new(&settings, Some(&origins), &extra, prefix);
    let probed = match &args.mode {
        Mode::Probe { url, ca } => Some(
            run_probe(settings.clone(), &report, url, ca.as_deref())
                .map_err(|e| vec![format!("proxy-check: {e}")])?,
        ),
        Mode::Routes | Mode::Vars | Mode::Diff { .. } => None,
    };
    let wants_store = args.shared || matches!(args.mode, Mode::Probe { .. });
    let store = if wants_store {
        run_shared(&settings, &report).map_err(|e| vec![format!("proxy-check: {e}")])?
    } else {
        None
    };
    let failed = probed.as_ref().is_some_and(probe::ProbeReport::failed)
        || store.as_ref().is_some_and(SharedState::failed);
    let out = if args.json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            report: &'a Report,
            #[serde(skip_serializing_if = "Option::is_none")]
            probe: Option<&'a probe::ProbeReport>,
            #[serde(skip_serializing_if = "Option::is_none")]
            shared_state: Option<&'a SharedState>,
        }
        render::json(&Out {
            report: &report,
            probe: probed.as_ref(),
            shared_state: store.as_ref(),
        })
    } else {
        let mut text = render::report_table(&report);
        if let Some(probed) = &probed {
            text.push_str(&render::probe_table(probed));
        }
        if let Some(store) = &store {
            text.push_str(&render::shared_table(store));
        } else if args.shared {
            text.push_str("\nshared store: none configured (shared.url)\n");
        }
        text
    };
    Ok((out, ExitCode::from(if failed { 1 } else { 0 })))
}

/// Reads the shared store, when the settings name one, on a runtime of its own.
fn run_shared(settings: &ProxySettings, report: &Report) -> Result<Option<SharedState>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    Ok(runtime.block_on(shared::shared_state(settings, report)))
}

/// Probes `url` through every route of the report, on a runtime of its own.
fn run_probe(
    settings: ProxySettings,
    report: &Report,
    url: &str,
    ca: Option<&str>,
) -> Result<probe::ProbeReport, String> {
    let mut roots = TlsRoots::default();
    if let Some(file) = ca {
        let pem = std::fs::read(file).map_err(|e| format!("--ca {file}: {e}"))?;
        roots = roots
            .add_pem(&pem)
            .map_err(|e| format!("--ca {file}: {e}"))?;
    }
    let injector = ProxyInjector::builder(settings).tls_roots(roots).build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime
        .block_on(probe::probe(&injector, report, url))
        .map_err(|e| e.to_string())
}

/// `--diff FILE`: what reloading from `file` would change against the settings in force
/// now, or every error of `file` (exit 2).
fn diff(args: &Args, prefix: &str, file: &str) -> Result<(String, ExitCode), Vec<String>> {
    let loader = || {
        ProxySettings::loader()
            .process_env()
            .env_prefix(prefix.to_owned())
    };
    let (next, origins) = loader().yaml_file(file).load_with_origins().map_err(|e| {
        let errors = e.errors();
        let plural = if errors.len() == 1 { "" } else { "s" };
        let mut lines = vec![format!(
            "proxy-check: {} does not load ({} error{plural}); reloading it would change nothing:",
            probe::redact_url(file),
            errors.len()
        )];
        lines.extend(errors.iter().map(|e| format!("  - {e}")));
        lines
    })?;
    // What a reload refuses: a file that gives no setting would turn every route direct.
    let empty = ProxySettings::file_warnings(&origins);
    if !empty.is_empty() {
        let mut lines = vec![format!(
            "proxy-check: a reload refuses {}, and changes nothing (to disable proxies, set enabled: false):",
            probe::redact_url(file)
        )];
        lines.extend(empty.iter().map(|e| format!("  - {e}")));
        return Err(lines);
    }
    let mut current = loader();
    if let Some(config) = &args.config {
        current = current.yaml_file(config);
    }
    let (report, note) = match current.load() {
        Ok(current) => (proxy_runtime::ReloadReport::between(&current, &next), None),
        // A process whose settings did not load fails every connection: every route of
        // FILE is a change.
        Err(e) => (
            proxy_runtime::ReloadReport::after_failure(&next),
            Some(format!("the settings in force now do not load ({e})")),
        ),
    };
    let out = if args.json {
        let routes: Vec<serde_json::Value> = report
            .routes()
            .iter()
            .map(|c| {
                serde_json::json!({
                    "exchange": c.exchange,
                    "kind": c.kind.as_str(),
                    "change": c.change.as_str(),
                    "what": c.what,
                    "before": c.before,
                    "after": c.after,
                })
            })
            .collect();
        let json = serde_json::json!({
            "valid": true,
            "routes": routes,
            "other": report.other(),
            "note": note,
        });
        format!("{json}\n")
    } else {
        let mut out = String::new();
        if let Some(note) = note {
            out.push_str(&format!("note: {note}\n"));
        }
        if report.is_empty() {
            out.push_str("reloading it changes nothing\n");
        }
        for change in report.routes() {
            out.push_str(&format!("{change}\n"));
        }
        for other in report.other() {
            out.push_str(&format!("{other}\n"));
        }
        out
    };
    Ok((out, ExitCode::SUCCESS))
}
