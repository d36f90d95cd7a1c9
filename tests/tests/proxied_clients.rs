//! Clients written with `#[proxied]` and no proxy code: their connections follow the
//! settings in force when they are built.

use proxy_tests::Fetch;
use std::sync::Arc;

use futures_util::StreamExt;
use proxy_runtime::{
    ProxyInjector, ProxySettings, proxied, with_proxy_injector, with_proxy_injector_sync,
};
use proxy_tests::origin::{Origin, WELCOME, body_for};
use proxy_tests::real::RealProxy;
use proxy_tests::tls::TestCa;
use tokio_tungstenite::tungstenite::Message;

#[proxied(exchange = "binance")]
#[derive(Debug)]
struct Binance {
    rest: String,
    stream: String,
}

#[proxied]
impl Binance {
    fn new(origin: &Origin) -> Self {
        Self {
            rest: format!("https://127.0.0.1:{}/api/v3/depth", origin.https.port()),
            stream: format!("wss://127.0.0.1:{}/ws/btcusdt@trade", origin.wss.port()),
        }
    }

    async fn depth(&self) -> Result<proxy_runtime::Bytes, proxy_runtime::ProxyError> {
        self.http().fetch(&self.rest).await
    }

    async fn first_trade(&self) -> Result<Message, proxy_runtime::ProxyError> {
        let mut ws = self.websocket(&self.stream).await.map(|(ws, _)| ws)?;
        Ok(ws.next().await.expect("a message").expect("a frame"))
    }
}

#[proxied(exchange = "kraken")]
struct Kraken {
    rest: String,
}

#[proxied]
impl Kraken {
    fn new(origin: &Origin) -> Self {
        Kraken {
            rest: format!("https://127.0.0.1:{}/0/public/Depth", origin.https.port()),
        }
    }
}

fn injector(ca: &TestCa, vars: &[(&str, String)]) -> Arc<ProxyInjector> {
    let settings = ProxySettings::loader()
        .env_vars(vars.iter().map(|(k, v)| (*k, v.clone())))
        .load()
        .unwrap();
    Arc::new(
        ProxyInjector::builder(settings)
            .tls_roots(ca.roots())
            .build(),
    )
}

#[tokio::test]
async fn through_a_real_proxy_when_enabled_and_direct_when_disabled() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let socks = RealProxy::microsocks(false);
    let proxy = socks.url("socks5h", None);
    let enabled = injector(
        &ca,
        &[
            ("CRYPTOFEED_PROXY_ENABLED", "true".into()),
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", proxy.clone()),
            ("CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL", proxy.clone()),
        ],
    );
    let client = with_proxy_injector_sync(enabled, || Binance::new(&origin));
    assert!(
        format!("{client:?}").contains(&format!("via {proxy}")),
        "{client:?}"
    );
    assert_eq!(client.depth().await.unwrap(), body_for("/api/v3/depth"));
    assert_eq!(client.first_trade().await.unwrap(), Message::text(WELCOME));
    let https = format!("connected to 127.0.0.1:{}", origin.https.port());
    let wss = format!("connected to 127.0.0.1:{}", origin.wss.port());
    assert!(
        socks.log_mentions(&https).await && socks.log_mentions(&wss).await,
        "{}",
        socks.log()
    );

    // The same settings, disabled: direct, and the proxy sees nothing more.
    let disabled = injector(
        &ca,
        &[
            ("CRYPTOFEED_PROXY_ENABLED", "false".into()),
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", proxy.clone()),
        ],
    );
    let before = socks.log().lines().count();
    let accepted = origin.https.accepted();
    let direct = with_proxy_injector(disabled, async { Binance::new(&origin) }).await;
    assert!(
        format!("{direct:?}").contains("http: \"direct\""),
        "{direct:?}"
    );
    assert_eq!(direct.depth().await.unwrap(), body_for("/api/v3/depth"));
    assert_eq!(origin.https.accepted(), accepted + 1);
    assert_eq!(socks.log().lines().count(), before, "{}", socks.log());
}

#[tokio::test]
async fn two_clients_of_different_exchanges_use_their_own_routes() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let (a, b) = (RealProxy::microsocks(false), RealProxy::microsocks(false));
    let inj = injector(
        &ca,
        &[
            ("CRYPTOFEED_PROXY_ENABLED", "true".into()),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL",
                a.url("socks5h", None),
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__KRAKEN__HTTP__URL",
                b.url("socks5h", None),
            ),
        ],
    );
    let (binance, kraken) =
        with_proxy_injector_sync(inj, || (Binance::new(&origin), Kraken::new(&origin)));
    assert_eq!(binance.exchange(), "binance");
    assert_eq!(kraken.exchange(), "kraken");
    binance.depth().await.unwrap();
    kraken.http().fetch(&kraken.rest).await.unwrap();
    let line = format!("connected to 127.0.0.1:{}", origin.https.port());
    assert!(a.log_mentions(&line).await && b.log_mentions(&line).await);
    assert_eq!(
        a.log().matches(&line).count(),
        1,
        "binance only:\n{}",
        a.log()
    );
    assert_eq!(
        b.log().matches(&line).count(),
        1,
        "kraken only:\n{}",
        b.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_settings_in_parallel_do_not_leak_into_each_other() {
    let ca = TestCa::new();
    let origin = Origin::start(&ca).await;
    let mut tasks = Vec::new();
    for i in 0..12u16 {
        let ca = ca.clone();
        let origin = origin.clone();
        tasks.push(tokio::spawn(async move {
            let proxy = format!("socks5h://scope-{i}.test:{}", 2000 + i);
            let inj = injector(
                &ca,
                &[
                    ("CRYPTOFEED_PROXY_ENABLED", "true".into()),
                    ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", proxy.clone()),
                ],
            );
            with_proxy_injector(inj, async move {
                for _ in 0..20 {
                    tokio::task::yield_now().await;
                    let client = Binance::new(&origin);
                    assert!(
                        format!("{client:?}").contains(&format!("via {proxy}")),
                        "{client:?}"
                    );
                }
            })
            .await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn a_failed_lazy_environment_load_fails_every_connection() {
    let ca = TestCa::new();
    let decoy = Origin::start(&ca).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_lazy_env_client"))
        .arg(decoy.https.port().to_string())
        .env_clear()
        .env("CRYPTOFEED_PROXY_ENABLE", "true")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("failures: 6"), "{stdout}");
    assert!(!stdout.contains("connected"), "{stdout}");
    assert_eq!(
        stdout.matches("invalid proxy settings").count(),
        6 + 3 * 2,
        "six errors, and three clients whose Debug says why both routes fail:\n{stdout}"
    );
    assert_eq!(
        stdout
            .matches("error: binance: invalid proxy settings")
            .count(),
        6,
        "{stdout}"
    );
    assert!(
        stdout.contains("did you mean `CRYPTOFEED_PROXY_ENABLED`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("http: \"fails (invalid proxy settings)\""),
        "{stdout}"
    );
    assert_eq!(
        stderr.matches("proxy settings could not be loaded").count(),
        1,
        "logged once:\n{stderr}"
    );
    assert_eq!(
        decoy.https.accepted() + decoy.wss.accepted(),
        0,
        "never direct"
    );
}

/// Runs `late_install_client` with only `vars` in its environment: its stdout and stderr.
async fn late_install(vars: &[(&str, &str)]) -> (String, String) {
    late_install_with(&[], vars).await
}

/// Runs `late_install_client ARGS` with only `vars` in its environment.
async fn late_install_with(args: &[&str], vars: &[(&str, &str)]) -> (String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_late_install_client"))
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stdout}{stderr}");
    (stdout, stderr)
}

#[tokio::test]
async fn settings_installed_after_the_environment_served_a_client_are_said_once() {
    let (stdout, stderr) = late_install(&[]).await;
    // The client built first stays direct; the one built after follows the settings.
    assert!(
        stdout.contains(
            "early: Binance { __proxied: Connectors { exchange: \"binance\", http: \"direct\""
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("http: \"via socks5h://installed.test:1080\""),
        "{stdout}"
    );
    // Said once each: that the environment had no settings, and which exchanges it served.
    assert_eq!(
        stderr
            .matches("no proxy settings in the environment")
            .count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains(" INFO "), "{stderr}");
    let late = "proxy settings were installed after the settings loaded from the environment had served these exchanges";
    assert_eq!(stderr.matches(late).count(), 1, "{stderr}");
    assert!(stderr.contains("exchanges=binance"), "{stderr}");
    assert!(stderr.contains(" ERROR "), "{stderr}");
}

#[tokio::test]
async fn a_route_the_environment_serves_after_an_install_is_said_too() {
    // The environment's injector, taken before the install, serves its first route after
    // it: the install saw nothing served, so the serving says it.
    let (stdout, stderr) = late_install_with(&["held"], &[]).await;
    assert!(stdout.contains("held: \"direct\""), "{stdout}");
    let late = "proxy settings were installed after the settings loaded from the environment had served these exchanges";
    assert_eq!(stderr.matches(late).count(), 1, "{stderr}");
    assert!(stderr.contains("exchanges=okx"), "{stderr}");
}

#[tokio::test]
async fn an_environment_that_sends_everything_direct_unsaid_is_warned_about() {
    // A settings file that gives nothing.
    let dir = std::env::temp_dir().join(format!("late-install-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in [
        ("empty.yaml", ""),
        ("bare.yaml", "proxy:\n"),
        ("other.yaml", "feeds: {}\n"),
    ] {
        let file = dir.join(name);
        std::fs::write(&file, text).unwrap();
        let (_, stderr) = late_install(&[("CRYPTOFEED_CONFIG", file.to_str().unwrap())]).await;
        assert_eq!(
            stderr.matches("gives no proxy setting").count(),
            1,
            "{name}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("{name} gives no proxy setting")),
            "{stderr}"
        );
        assert!(
            !stderr.contains("no proxy settings in the environment"),
            "{stderr}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
    // Proxies enabled, and no route at all.
    let (_, stderr) = late_install(&[("CRYPTOFEED_PROXY_ENABLED", "true")]).await;
    assert_eq!(
        stderr
            .matches("proxies are enabled (`enabled`) but no route is configured")
            .count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains(" WARN "), "{stderr}");
}
