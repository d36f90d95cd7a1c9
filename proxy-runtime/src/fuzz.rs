//! Entry points for the fuzz targets in `fuzz/` (built with `--cfg fuzzing`, as cargo-fuzz
//! builds): the parsers and protocol readers that take input from outside, driven with
//! arbitrary bytes. Not part of the API; absent from every other build.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::model::exchange::ExchangeId;
use crate::model::hosts::{HostIndex, HostPattern};
use crate::model::proxy_url::ProxyUrl;
use crate::redact;
use crate::transport::io::Io;
use crate::transport::proxy::{http_connect, socks};
use crate::transport::target::Target;

/// Redacts free text, as error messages that quote input do.
pub fn redact_text(text: &str) -> String {
    redact::redact_text(text).into_owned()
}

/// Redacts one URL-like value.
pub fn redact_value(value: &str) -> String {
    redact::redact_value(value).into_owned()
}

/// Whether `host` is claimed by an exchange that lists `pattern`, as the index that routes
/// requests by host decides (to check it against [`HostPattern::matches`]).
pub fn index_claims(pattern: &HostPattern, host: &str) -> bool {
    let id = ExchangeId::new("x").expect("a valid id");
    let (index, _) = HostIndex::new([(&id, std::slice::from_ref(pattern))]);
    index.exchange_for(host).is_some()
}

/// A proxy URL's unredacted form, which the settings loader parses back (for a round-trip
/// check).
pub fn unredacted(url: &ProxyUrl) -> String {
    url.to_unredacted_string()
}

/// A peer that sends `reply` in pieces of `piece` bytes (at least one), reading and
/// dropping whatever it is sent, then closes.
fn scripted_peer(reply: Vec<u8>, piece: usize) -> Box<dyn Io> {
    let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        for chunk in reply.chunks(piece.max(1)) {
            if theirs.write_all(chunk).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
        let _ = theirs.shutdown().await;
        let mut sink = [0u8; 1024];
        while let Ok(n) = theirs.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    });
    Box::new(ours)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A CONNECT through `proxy` (an `http://` URL) to `example.com:443`, answered with
/// `reply` in pieces of `piece` bytes: the bytes the tunnel then yields, or the error.
pub fn connect_reply(proxy: &ProxyUrl, reply: &[u8], piece: usize) -> Result<Vec<u8>, String> {
    let Some(endpoint) = proxy.endpoint() else {
        return Err("direct".to_owned());
    };
    let target = Target::new("example.com", 443).map_err(|e| e.to_string())?;
    let reply = reply.to_vec();
    runtime().block_on(async move {
        let io = scripted_peer(reply, piece);
        let mut tunnel = http_connect::handshake(io, endpoint, &target, &[])
            .await
            .map_err(|e| e.to_string())?;
        let mut rest = Vec::new();
        let _ = tunnel.read_to_end(&mut rest).await;
        Ok(rest)
    })
}

/// A SOCKS handshake through `proxy` (a `socks4`/`socks4a`/`socks5`/`socks5h` URL) to
/// `target`, answered with `reply` in pieces of `piece` bytes.
pub fn socks_reply(
    proxy: &ProxyUrl,
    target: &Target,
    resolved: Option<&[SocketAddr]>,
    reply: &[u8],
    piece: usize,
) -> Result<(), String> {
    let Some(endpoint) = proxy.endpoint() else {
        return Err("direct".to_owned());
    };
    let addresses = socks::addresses(endpoint, target, resolved).map_err(|e| e.to_string())?;
    let reply = reply.to_vec();
    runtime().block_on(async move {
        let io = scripted_peer(reply, piece);
        socks::handshake(io, endpoint, &addresses[0])
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    })
}

/// The password the fuzz seeds give in URLs.
pub const CANARY: &str = "Canary-Pw-0";

/// Whether the canary stands only in a password's place in `text` (`:Canary-Pw-0@`):
/// elsewhere (a user name, a strategy) it is no secret and may be shown.
pub fn canary_only_as_password(text: &str) -> bool {
    text.match_indices(CANARY)
        .all(|(i, _)| text[..i].ends_with(':') && text[i + CANARY.len()..].starts_with('@'))
}

/// Whether every pool member of `settings` shows the same (`Display` and `Debug`) with its
/// CONNECT header values replaced: what is shown does not depend on a secret.
pub fn blind_to_header_values(settings: &crate::model::proxy_settings::ProxySettings) -> bool {
    use crate::model::key::ConnectionKind;
    use crate::model::member::PoolMember;
    let kinds = [ConnectionKind::Http, ConnectionKind::Websocket];
    let default = settings
        .default_routes()
        .into_iter()
        .flat_map(|c| kinds.iter().filter_map(|k| c.get(*k)));
    let exchanges = settings
        .exchanges()
        .values()
        .flat_map(|e| kinds.iter().filter_map(|k| e.get(*k)));
    default
        .chain(exchanges)
        .flat_map(|route| route.members())
        .all(|member| {
            let mut blind = PoolMember::new(member.url().clone());
            if let Some(source) = member
                .source()
                .filter(|_| !matches!(member.url(), ProxyUrl::DirectFrom(_)))
            {
                blind = blind.with_source(source).expect("valid as loaded");
            }
            if let Some(interface) = member.interface() {
                blind = blind.with_interface(interface).expect("valid as loaded");
            }
            for (name, _) in member.connect_headers() {
                blind = blind
                    .with_connect_header(name.as_str(), "x")
                    .expect("valid as loaded");
            }
            format!("{member} {member:?}") == format!("{blind} {blind:?}")
        })
}

/// Drives one exit's weight window with operations read from `data` (take, answer with or
/// without the exchange's count, give back, abandon, let time pass) and checks what admission
/// relies on: a request is let through only when the budget has room for it; the instant
/// a refused request is told (when the weight counted in the window holds it back) lets it
/// through when nothing else changed; the weight in flight is what was let through and not
/// answered; the running total matches the slots. Also reads `data` as a used-weight
/// header value: a count is digits alone, read back exactly.
pub fn weight_window(data: &[u8]) {
    use crate::route::weight::parse_count;
    use crate::route::window::{Blocked, ExitWindow};
    use std::time::Duration;
    use tokio::time::Instant;

    if let Some(n) = parse_count(data) {
        assert!(data.iter().all(u8::is_ascii_digit));
        let read: Option<u64> = std::str::from_utf8(data).ok().and_then(|s| s.parse().ok());
        assert_eq!(read, Some(n));
    }
    let [budget, window, ops @ ..] = data else {
        return;
    };
    let budget = u32::from(*budget) + 1;
    let window = Duration::from_millis(u64::from(*window) * 10 + 1);
    let mut now = Instant::now();
    let mut w = ExitWindow::new(budget, window, now);
    // The weights let through and not answered, with their numbers and the weight
    // settled then.
    let mut open: Vec<(u32, u64, u64)> = Vec::new();
    let mut seq = 0;
    for op in ops.chunks_exact(3) {
        let arg = u32::from(op[1]);
        match op[0] % 6 {
            0 => {
                let before = w.used(now);
                match w.take(arg, now) {
                    Ok(()) => {
                        assert!(arg == 0 || before + u64::from(arg) <= u64::from(budget));
                        open.push((arg, seq, w.settled()));
                        seq += 1;
                    }
                    Err(Blocked { at, .. }) => {
                        assert!(arg > 0 && before + u64::from(arg) > u64::from(budget));
                        assert!(at > now, "a refusal points to the future");
                        // Counted weight alone held it back: free at `at`, nothing else
                        // changing. (Weight in flight is looked at again a slot later.)
                        if w.in_flight() == 0 && arg <= budget {
                            assert_eq!(w.clone().take(arg, at), Ok(()), "free at {at:?}");
                        }
                    }
                }
            }
            1 | 2 if !open.is_empty() => {
                let (weight, n, mark) = open.remove(usize::from(op[2]) % open.len());
                let reported = (op[0] % 6 == 1).then_some(u64::from(op[2]) * 2);
                w.answered(weight, n, reported, mark, now);
            }
            3 if !open.is_empty() => {
                let (weight, ..) = open.remove(0);
                w.give_back(weight);
            }
            4 if !open.is_empty() => {
                let (weight, ..) = open.remove(0);
                let before = w.used(now);
                w.abandoned(weight, now);
                assert_eq!(w.used(now), before, "abandoned weight stays counted");
            }
            _ => now += Duration::from_millis(u64::from(arg) * u64::from(op[2]) / 16),
        }
        w.check();
        let flying: u64 = open.iter().map(|(w, ..)| u64::from(*w)).sum();
        assert_eq!(w.in_flight(), flying, "weight in flight");
        assert!(w.used(now) >= flying);
    }
}

/// Reads `data` as what the shared store's side hands in: a message of the cooling
/// channel (`KEY WAIT_MS`: read only when it is exactly that, the wait at most a day) and
/// a Redis URL of the settings (never a panic; one accepted reads back to itself and is
/// shown with its password masked as the redaction of its text).
pub fn shared_inputs(data: &[u8]) {
    use crate::model::shared::SharedUrl;
    use crate::route::cooling::COOL_MAX;
    use crate::route::shared::parse_cooling;
    use crate::settings::schema::SettingsLeaf;

    if let Some((key, wait)) = parse_cooling(data) {
        assert!(!key.is_empty());
        assert!(wait <= COOL_MAX);
        let text = std::str::from_utf8(data).expect("a message read is text");
        let digits = &text[key.len() + 1..];
        assert!(digits.bytes().all(|b| b.is_ascii_digit()) && !digits.is_empty());
        let ms: u64 = digits.parse().expect("digits");
        assert_eq!(wait, std::time::Duration::from_millis(ms).min(COOL_MAX));
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(url) = SharedUrl::new(text)
    {
        let again = SharedUrl::from_scalar(&url.to_scalar()).expect("reads back");
        assert_eq!(again, url);
        let parsed = url::Url::parse(text).expect("accepted, so a URL");
        assert_eq!(url.is_tls(), parsed.scheme() == "rediss");
        if let Some(password) = parsed.password().filter(|p| *p != crate::redact::MASK) {
            let shown = url.to_string();
            assert!(!shown.contains(&format!(":{password}@")), "{shown}");
        }
    }
}
