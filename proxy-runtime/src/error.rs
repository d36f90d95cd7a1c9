//! The typed error of every connection: which exchange, which proxy (redacted), which
//! target, what went wrong, and the underlying cause.
//!
//! Owns the one place where connection failures become text. Nothing that holds a password
//! is ever stored here: proxies are kept in their redacted form.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use crate::redact::redact_text;
use crate::settings::load::LoadError;

/// The phase of establishing a connection, named by timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Resolving a host name (the proxy's, or the target's for a direct connection or a
    /// local-DNS SOCKS scheme).
    Resolve,
    /// The TCP connection to the proxy (or to the target, when direct).
    Connect,
    /// TLS to an `https://` proxy.
    ProxyTls,
    /// The proxy's handshake: HTTP CONNECT or SOCKS.
    ProxyHandshake,
    /// TLS to the target (`https://`, `wss://`).
    Tls,
    /// The WebSocket upgrade.
    WebSocketUpgrade,
    /// Sending an HTTP request and waiting for the head of its response (on a new or a
    /// pooled connection).
    ResponseHead,
    /// Reading an HTTP response's body.
    ResponseBody,
    /// Waiting for the shared store to lease weight of an exit's budget
    /// ([`SharedSettings`](crate::SharedSettings)), before anything is sent.
    WeightLease,
}

impl Phase {
    /// A short name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Resolve => "name resolution",
            Phase::Connect => "TCP connect",
            Phase::ProxyTls => "TLS handshake with the proxy",
            Phase::ProxyHandshake => "proxy handshake",
            Phase::Tls => "TLS handshake with the target",
            Phase::WebSocketUpgrade => "WebSocket upgrade",
            Phase::ResponseHead => "request and response head",
            Phase::ResponseBody => "response body",
            Phase::WeightLease => "waiting for a lease of the shared weight budget",
        }
    }
}

impl Phase {
    /// The phases of establishing a connection through a route's member, in order: the
    /// ones timed per member.
    pub(crate) const CONNECTION: [Phase; 5] = [
        Phase::Resolve,
        Phase::Connect,
        Phase::ProxyTls,
        Phase::ProxyHandshake,
        Phase::Tls,
    ];

    /// The phase's name in metrics (the `phase` label).
    pub(crate) fn metric_label(self) -> &'static str {
        match self {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::ProxyTls => "proxy_tls",
            Phase::ProxyHandshake => "proxy_handshake",
            Phase::Tls => "tls",
            Phase::WebSocketUpgrade => "websocket_upgrade",
            Phase::ResponseHead => "response_head",
            Phase::ResponseBody => "response_body",
            Phase::WeightLease => "weight_lease",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyErrorKind {
    /// The proxy could not be reached: its name did not resolve, or TCP to it failed.
    ProxyUnreachable,
    /// A phase did not finish within the route's `timeout_seconds`.
    Timeout(Phase),
    /// The proxy wants credentials and none were configured (HTTP 407, SOCKS5 "no
    /// acceptable method" or a demand for user/password auth).
    AuthRequired,
    /// The proxy rejected the configured credentials (HTTP 407 or 401 after credentials
    /// were sent, SOCKS5 auth failure).
    AuthFailed,
    /// The proxy refused the request: an HTTP status (CONNECT), or a SOCKS reply code.
    Refused(Refusal),
    /// The target could not be reached: through the proxy (its reply says why: SOCKS5
    /// codes 3 to 6), or directly (TCP failed; no reply).
    TargetUnreachable(Option<Refusal>),
    /// The target's name could not be resolved locally (direct, `socks4://`, `socks5://`).
    TargetResolution,
    /// The proxy broke the protocol: a malformed or truncated reply.
    Protocol,
    /// A TLS failure (to an `https://` proxy or to the target).
    Tls,
    /// The WebSocket handshake failed.
    WebSocket,
    /// The HTTP exchange with the target failed (the connection broke, or the server
    /// broke HTTP).
    Http,
    /// The server answered with an error status (4xx or 5xx), as
    /// [`Response::error_for_status`](crate::Response::error_for_status) reports it.
    Status(http::StatusCode),
    /// The response body is larger than the client's `max_body_bytes` (counted after
    /// decompression); nothing more was read.
    BodyTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The response body could not be decoded: invalid JSON for `json()`, or a corrupt
    /// compressed stream.
    Decode,
    /// The request could not be built: an invalid header name or value, or a body that
    /// cannot be serialized.
    InvalidRequest,
    /// Every member of a pool that was tried failed to connect;
    /// [`ProxyError::member_failures`] says how each failed.
    AllMembersFailed,
    /// The target URL cannot be used (scheme, host, or a limit of the proxy protocol).
    InvalidTarget,
    /// The exchange id asked for is not one (`binance-futures`): no route can name it.
    InvalidExchange,
    /// The proxy settings are unusable, so no connection is allowed: they could not be
    /// loaded, or a route's credentials cannot be carried by its proxy protocol.
    Settings,
    /// A resilient WebSocket session's connection ended: the server closed it, it broke,
    /// or it was declared dead (no frame within `dead_after`) or idle (no data message
    /// within `idle_after`); the detail says which. The session reconnects by itself.
    Disconnected,
    /// A message was sent on a resilient WebSocket session that had no connection, and
    /// none came within the route's timeout (or the session had ended). The message was
    /// not sent; the library never sends it later.
    NotConnected,
    /// The `on_connect` hook of a resilient WebSocket session failed (or did not finish
    /// within the route's timeout): the connection is dropped and another attempted.
    Hook,
    /// A member's local source address or network interface cannot be used: the address
    /// is not on this host, the interface does not exist, or every address of the proxy
    /// (or target) is of the other family. The member failed (a pool benches it and tries
    /// the next); the connection is never made from another address instead.
    SourceUnavailable,
    /// The request's weight would cross the weight budget of every exit of its route (see
    /// [`HttpBudget`](crate::HttpBudget)), and the earliest exit to free enough would do so
    /// only after the request's deadline. Nothing was sent.
    RateLimited {
        /// The exit that frees enough first, as shown (redacted): a pool member, or the
        /// route.
        exit: String,
        /// How long until it does, from when the request was refused; when weight in
        /// flight held every exit back (its answers will tell when it frees), the time
        /// until the exit would have been looked at again.
        wait: std::time::Duration,
    },
}

/// What a proxy answered when it refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// An HTTP status to CONNECT, with the start of its reason phrase.
    Http {
        /// The status code.
        status: u16,
        /// The reason phrase, shortened and stripped of control characters.
        reason: String,
    },
    /// A SOCKS5 reply code (1 to 8).
    Socks5(u8),
    /// A SOCKS4 reply code (91 to 93).
    Socks4(u8),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Http { status, reason } if reason.is_empty() => write!(f, "HTTP {status}"),
            Refusal::Http { status, reason } => write!(f, "HTTP {status} {reason}"),
            Refusal::Socks5(code) => {
                write!(f, "SOCKS5 reply {code} ({})", socks5_reply_text(*code))
            }
            Refusal::Socks4(code) => write!(f, "SOCKS4 reply {code}"),
        }
    }
}

/// The meaning of a SOCKS5 reply code (RFC 1928).
pub(crate) fn socks5_reply_text(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned",
    }
}

impl ProxyErrorKind {
    /// Every label [`metric_label`](Self::metric_label) gives, so that a member's counters
    /// are made before its first failure.
    pub(crate) const METRIC_LABELS: [&'static str; 10] = [
        "proxy_unreachable",
        "source_unavailable",
        "timeout",
        "auth_required",
        "auth_failed",
        "refused",
        "target_unreachable",
        "protocol",
        "tls",
        "other",
    ];

    /// How metrics count a failed connection attempt (the `error_kind` label): the kinds
    /// an attempt ends with by name, every other kind as `other`.
    pub(crate) fn metric_label(&self) -> &'static str {
        match self {
            ProxyErrorKind::ProxyUnreachable => "proxy_unreachable",
            ProxyErrorKind::SourceUnavailable => "source_unavailable",
            ProxyErrorKind::Timeout(_) => "timeout",
            ProxyErrorKind::AuthRequired => "auth_required",
            ProxyErrorKind::AuthFailed => "auth_failed",
            ProxyErrorKind::Refused(_) => "refused",
            ProxyErrorKind::TargetUnreachable(_) => "target_unreachable",
            ProxyErrorKind::Protocol => "protocol",
            ProxyErrorKind::Tls => "tls",
            _ => "other",
        }
    }
}

impl fmt::Display for ProxyErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyErrorKind::ProxyUnreachable => f.write_str("proxy unreachable"),
            ProxyErrorKind::Timeout(phase) => write!(f, "timed out during {phase}"),
            ProxyErrorKind::AuthRequired => f.write_str("proxy requires authentication"),
            ProxyErrorKind::AuthFailed => f.write_str("proxy rejected the credentials"),
            ProxyErrorKind::Refused(r) => write!(f, "proxy refused the connection: {r}"),
            ProxyErrorKind::TargetUnreachable(Some(r)) => {
                write!(f, "proxy could not reach the target: {r}")
            }
            ProxyErrorKind::TargetUnreachable(None) => f.write_str("target unreachable"),
            ProxyErrorKind::TargetResolution => f.write_str("cannot resolve the target's name"),
            ProxyErrorKind::Protocol => f.write_str("proxy protocol error"),
            ProxyErrorKind::Tls => f.write_str("TLS error"),
            ProxyErrorKind::WebSocket => f.write_str("WebSocket handshake failed"),
            ProxyErrorKind::Http => f.write_str("HTTP error"),
            ProxyErrorKind::Status(status) => match status.canonical_reason() {
                Some(reason) => write!(f, "the server answered {} {reason}", status.as_u16()),
                None => write!(f, "the server answered {}", status.as_u16()),
            },
            ProxyErrorKind::BodyTooLarge { limit } => {
                write!(f, "the response body is larger than {limit} bytes")
            }
            ProxyErrorKind::Decode => f.write_str("cannot decode the response body"),
            ProxyErrorKind::InvalidRequest => f.write_str("invalid request"),
            ProxyErrorKind::AllMembersFailed => f.write_str("every pool member tried failed"),
            ProxyErrorKind::InvalidTarget => f.write_str("invalid target"),
            ProxyErrorKind::InvalidExchange => f.write_str("invalid exchange id"),
            ProxyErrorKind::Settings => f.write_str("invalid proxy settings"),
            ProxyErrorKind::Disconnected => f.write_str("the WebSocket connection ended"),
            ProxyErrorKind::NotConnected => {
                f.write_str("the WebSocket session has no connection to send on")
            }
            ProxyErrorKind::Hook => f.write_str("the session's on_connect hook failed"),
            ProxyErrorKind::SourceUnavailable => {
                f.write_str("the member's source address or interface cannot be used")
            }
            ProxyErrorKind::RateLimited { exit, wait } => write!(
                f,
                "the weight budget of every exit is spent: {exit} frees enough in {} ms, after the request's deadline",
                wait.as_millis()
            ),
        }
    }
}

type Source = Arc<dyn StdError + Send + Sync + 'static>;

/// A connection failure: what went wrong, for which exchange, through which proxy
/// (redacted), to which target, and why.
///
/// Cheap to clone. `Display` and `Debug` never contain a proxy password.
#[derive(Clone)]
pub struct ProxyError {
    inner: Arc<Inner>,
}

/// How the failed connection was to go, as far as is known.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Via {
    /// Not known, or no connection was to be made (an unusable route).
    Unknown,
    /// Straight to the target.
    Direct,
    /// Through this proxy (redacted).
    Proxy(String),
}

struct Inner {
    kind: ProxyErrorKind,
    exchange: Option<String>,
    via: Via,
    target: Option<String>,
    detail: Option<String>,
    source: Option<Source>,
    members: Vec<ProxyError>,
    phase: Option<Phase>,
}

impl ProxyError {
    pub(crate) fn new(kind: ProxyErrorKind) -> Self {
        let phase = match kind {
            ProxyErrorKind::Timeout(phase) => Some(phase),
            _ => None,
        };
        Self {
            inner: Arc::new(Inner {
                kind,
                exchange: None,
                via: Via::Unknown,
                target: None,
                detail: None,
                source: None,
                members: Vec::new(),
                phase,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => f(inner),
            None => {
                let old = &self.inner;
                let mut inner = Inner {
                    kind: old.kind.clone(),
                    exchange: old.exchange.clone(),
                    via: old.via.clone(),
                    target: old.target.clone(),
                    detail: old.detail.clone(),
                    source: old.source.clone(),
                    members: old.members.clone(),
                    phase: old.phase,
                };
                f(&mut inner);
                self.inner = Arc::new(inner);
            }
        }
        self
    }

    /// Adds a short explanation (never containing a secret).
    pub(crate) fn detail(self, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        self.edit(|i| i.detail = Some(detail))
    }

    /// Keeps how each pool member failed.
    pub(crate) fn members(self, failures: Vec<ProxyError>) -> Self {
        self.edit(|i| i.members = failures)
    }

    /// How each pool member that was tried failed, in the order tried (for
    /// [`ProxyErrorKind::AllMembersFailed`]; empty otherwise). Each is redacted.
    pub fn member_failures(&self) -> &[ProxyError] {
        &self.inner.members
    }

    /// Keeps the underlying cause.
    pub(crate) fn source(self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.edit(|i| i.source = Some(Arc::new(source)))
    }

    /// Keeps an underlying cause given boxed (a caller's own error), as the direct source:
    /// its `Display` in this error's, and itself to downcast.
    pub(crate) fn source_boxed(self, source: Box<dyn StdError + Send + Sync + 'static>) -> Self {
        self.edit(|i| i.source = Some(Arc::from(source)))
    }

    /// Names where the failure happened: the exchange, the way (direct or the redacted
    /// proxy) and the target. Set once per connection (by the dialer) and once per request
    /// or stream (by the HTTP client and WebSockets), which name the same route.
    pub(crate) fn at(self, exchange: Option<&str>, via: Via, target: Option<&str>) -> Self {
        self.edit(|i| {
            i.exchange = exchange.map(str::to_owned);
            i.via = via;
            i.target = target.map(str::to_owned);
        })
    }

    pub(crate) fn settings(error: LoadError) -> Self {
        ProxyError::new(ProxyErrorKind::Settings).source(error)
    }

    /// What went wrong.
    pub fn kind(&self) -> &ProxyErrorKind {
        &self.inner.kind
    }

    /// The exchange whose connection failed, if known.
    pub fn exchange(&self) -> Option<&str> {
        self.inner.exchange.as_deref()
    }

    /// The proxy, redacted (or the pool member, as metrics label it: `direct://ADDRESS`
    /// for a source address); `None` for a direct connection, or when the route was
    /// unusable before any member was chosen (see [`kind`](Self::kind)).
    pub fn proxy(&self) -> Option<&str> {
        match &self.inner.via {
            Via::Proxy(p) => Some(p),
            Via::Direct | Via::Unknown => None,
        }
    }

    /// How the failed connection was to go, as far as is known.
    pub(crate) fn via(&self) -> &Via {
        &self.inner.via
    }

    /// Whether the failed connection was a direct one (no proxy configured for it, or a
    /// `direct://` member): false for a `direct://ADDRESS` member, which
    /// [`proxy`](Self::proxy) names.
    pub fn is_direct(&self) -> bool {
        self.inner.via == Via::Direct
    }

    /// The target, as `host:port`.
    pub fn target(&self) -> Option<&str> {
        self.inner.target.as_deref()
    }

    /// The status of an error status ([`ProxyErrorKind::Status`]).
    pub fn status(&self) -> Option<http::StatusCode> {
        match self.inner.kind {
            ProxyErrorKind::Status(status) => Some(status),
            _ => None,
        }
    }

    /// The phase of establishing the connection that failed, where the failure happened
    /// in one: TLS with an `https://` proxy ([`Phase::ProxyTls`]) or with the target
    /// ([`Phase::Tls`]) for a [`ProxyErrorKind::Tls`], the phase a timeout ran out in, and
    /// so on; `None` for failures outside connecting (a request, a body, the settings).
    pub fn phase(&self) -> Option<Phase> {
        self.inner.phase
    }

    /// The same error, as happened during `phase` (unless it names a phase already).
    pub(crate) fn in_phase(self, phase: Phase) -> Self {
        if self.inner.phase.is_some() {
            return self;
        }
        self.edit(|i| i.phase = Some(phase))
    }

    /// Whether this is a timeout, and of which phase.
    pub fn timeout_phase(&self) -> Option<Phase> {
        match self.inner.kind {
            ProxyErrorKind::Timeout(phase) => Some(phase),
            _ => None,
        }
    }

    /// Whether a deadline ran out (of any phase: connecting, the request, the body), as
    /// reqwest's `Error::is_timeout`.
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, ProxyErrorKind::Timeout(_))
    }

    /// Whether establishing the connection failed: the proxy (reaching it, its handshake,
    /// its credentials, TLS with it), the target (reaching it, its name, TLS with it), or
    /// every member of a pool; a timeout of one of those phases too. As reqwest's
    /// `Error::is_connect`.
    pub fn is_connect(&self) -> bool {
        use ProxyErrorKind as K;
        match &self.inner.kind {
            K::ProxyUnreachable
            | K::SourceUnavailable
            | K::AuthRequired
            | K::AuthFailed
            | K::Refused(_)
            | K::TargetUnreachable(_)
            | K::TargetResolution
            | K::Protocol
            | K::Tls
            | K::AllMembersFailed => true,
            K::Timeout(phase) => Phase::CONNECTION.contains(phase),
            _ => false,
        }
    }

    /// Whether the server answered with an error status ([`error_for_status`]), as
    /// reqwest's `Error::is_status`; [`status`](Self::status) says which.
    ///
    /// [`error_for_status`]: crate::Response::error_for_status
    pub fn is_status(&self) -> bool {
        matches!(self.inner.kind, ProxyErrorKind::Status(_))
    }

    /// Whether reading the response body failed: over the limit, broken off, or out of
    /// time. As reqwest's `Error::is_body`.
    pub fn is_body(&self) -> bool {
        matches!(self.inner.kind, ProxyErrorKind::BodyTooLarge { .. })
            || self.inner.phase == Some(Phase::ResponseBody)
    }

    /// Whether the body could not be decoded (its JSON, or its compression), as reqwest's
    /// `Error::is_decode`.
    pub fn is_decode(&self) -> bool {
        matches!(self.inner.kind, ProxyErrorKind::Decode)
    }

    /// Whether sending the request or receiving the response head failed, the
    /// connection up (hyper's error, or that phase's deadline), as reqwest's
    /// `Error::is_request`.
    pub fn is_request(&self) -> bool {
        matches!(self.inner.kind, ProxyErrorKind::Http) && !self.is_body()
            || self.inner.kind == ProxyErrorKind::Timeout(Phase::ResponseHead)
    }

    /// Whether the request could not be built (a URL, a header, a body, a WebSocket
    /// configuration, an exchange id), as reqwest's `Error::is_builder`: nothing was sent.
    pub fn is_builder(&self) -> bool {
        matches!(
            self.inner.kind,
            ProxyErrorKind::InvalidRequest
                | ProxyErrorKind::InvalidTarget
                | ProxyErrorKind::InvalidExchange
        )
    }

    /// The `std::io::ErrorKind` closest to this error, for [`From<ProxyError> for
    /// std::io::Error`](#impl-From<ProxyError>-for-Error).
    fn io_kind(&self) -> std::io::ErrorKind {
        use ProxyErrorKind as K;
        use std::io::ErrorKind as Io;
        match &self.inner.kind {
            K::Timeout(_) => Io::TimedOut,
            K::Refused(_) => Io::ConnectionRefused,
            K::TargetUnreachable(Some(Refusal::Socks5(3))) => Io::NetworkUnreachable,
            K::TargetUnreachable(Some(Refusal::Socks5(4))) => Io::HostUnreachable,
            K::TargetUnreachable(Some(Refusal::Socks5(6))) => Io::TimedOut,
            K::TargetUnreachable(_) | K::ProxyUnreachable => {
                self.io_source_kind().unwrap_or(Io::ConnectionRefused)
            }
            K::AuthRequired | K::AuthFailed => Io::PermissionDenied,
            K::TargetResolution => Io::NotFound,
            K::Protocol | K::Tls | K::Decode | K::WebSocket => Io::InvalidData,
            K::BodyTooLarge { .. } => Io::FileTooLarge,
            K::InvalidRequest | K::InvalidTarget | K::InvalidExchange | K::Settings => {
                Io::InvalidInput
            }
            K::AllMembersFailed => self
                .member_failures()
                .last()
                .map_or(Io::ConnectionRefused, ProxyError::io_kind),
            K::Http | K::Disconnected => self.io_source_kind().unwrap_or(Io::ConnectionAborted),
            K::NotConnected => Io::NotConnected,
            K::SourceUnavailable => Io::AddrNotAvailable,
            K::RateLimited { .. } => Io::QuotaExceeded,
            K::Status(_) | K::Hook => Io::Other,
        }
    }

    /// The kind of the `io::Error` this error was caused by, if it was.
    fn io_source_kind(&self) -> Option<std::io::ErrorKind> {
        let mut cause = StdError::source(self);
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                return Some(io.kind());
            }
            cause = e.source();
        }
        None
    }
}

/// The error as an `io::Error` of the closest kind (a timeout is `TimedOut`, a refusal
/// `ConnectionRefused`, a name that does not resolve `NotFound`, ...), holding the
/// `ProxyError` itself (`get_ref`, `into_inner`), so that a client whose errors wrap
/// `io::Error` writes `?`.
impl From<ProxyError> for std::io::Error {
    fn from(error: ProxyError) -> Self {
        std::io::Error::new(error.io_kind(), error)
    }
}

/// The error as tungstenite's, by way of `io::Error` (`Error::Io`), so that a client whose
/// errors wrap `tungstenite::Error` writes `?`. (With another version of tungstenite,
/// convert to `io::Error` first: every version has `Error::Io`.)
impl From<ProxyError> for tokio_tungstenite::tungstenite::Error {
    fn from(error: ProxyError) -> Self {
        tokio_tungstenite::tungstenite::Error::Io(error.into())
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        if let Some(exchange) = &i.exchange {
            write!(f, "{exchange}: ")?;
        }
        write!(f, "{}", i.kind)?;
        if let Some(detail) = &i.detail {
            write!(f, ": {detail}")?;
        }
        match (&i.via, &i.target) {
            (Via::Proxy(p), Some(t)) => write!(f, " (via {p} to {t})")?,
            (Via::Proxy(p), None) => write!(f, " (via {p})")?,
            (Via::Direct, Some(t)) => write!(f, " (direct to {t})")?,
            (Via::Direct, None) => f.write_str(" (direct)")?,
            (Via::Unknown, Some(t)) => write!(f, " (to {t})")?,
            (Via::Unknown, None) => {}
        }
        if let Some(source) = &i.source {
            write!(f, ": {}", redact_text(&source.to_string()))?;
        }
        for (n, member) in i.members.iter().enumerate() {
            let sep = if n == 0 { ": " } else { "; " };
            let how = match &member.inner.detail {
                Some(detail) => format!("{}: {detail}", member.inner.kind),
                None => member.inner.kind.to_string(),
            };
            let through = member.proxy().unwrap_or("direct");
            write!(f, "{sep}{through} {how}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("ProxyError")
            .field("kind", &i.kind)
            .field("exchange", &i.exchange)
            .field("proxy", &self.proxy())
            .field("direct", &self.is_direct())
            .field("target", &i.target)
            .field("detail", &i.detail)
            .field("phase", &i.phase)
            .field("members", &i.members)
            .field(
                "source",
                &i.source
                    .as_ref()
                    .map(|s| redact_text(&s.to_string()).into_owned()),
            )
            .finish()
    }
}

impl StdError for ProxyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

/// Finds a [`ProxyError`] in an error's source chain (hyper wraps connector errors).
pub(crate) fn find_in_chain(error: &(dyn StdError + 'static)) -> Option<ProxyError> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = cur {
        if let Some(found) = e.downcast_ref::<ProxyError>() {
            return Some(found.clone());
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{Phase, ProxyError, ProxyErrorKind as K, Refusal, Via, find_in_chain};
    use std::error::Error as StdError;

    #[test]
    fn every_phase_has_its_name() {
        let names = [
            (Phase::Resolve, "name resolution"),
            (Phase::Connect, "TCP connect"),
            (Phase::ProxyTls, "TLS handshake with the proxy"),
            (Phase::ProxyHandshake, "proxy handshake"),
            (Phase::Tls, "TLS handshake with the target"),
            (Phase::WebSocketUpgrade, "WebSocket upgrade"),
            (Phase::ResponseHead, "request and response head"),
            (Phase::ResponseBody, "response body"),
        ];
        for (phase, name) in names {
            assert_eq!(phase.as_str(), name);
            assert_eq!(phase.to_string(), name);
        }
    }

    #[test]
    fn every_phase_has_its_metric_label_and_the_connection_s_come_in_order() {
        let labels = [
            (Phase::Resolve, "resolve"),
            (Phase::Connect, "connect"),
            (Phase::ProxyTls, "proxy_tls"),
            (Phase::ProxyHandshake, "proxy_handshake"),
            (Phase::Tls, "tls"),
            (Phase::WebSocketUpgrade, "websocket_upgrade"),
            (Phase::ResponseHead, "response_head"),
            (Phase::ResponseBody, "response_body"),
            (Phase::WeightLease, "weight_lease"),
        ];
        for (phase, label) in labels {
            assert_eq!(phase.metric_label(), label);
        }
        let connection: Vec<Phase> = labels.iter().take(5).map(|(p, _)| *p).collect();
        assert_eq!(Phase::CONNECTION.to_vec(), connection);
    }

    #[test]
    fn every_kind_is_counted_under_a_label_of_the_list() {
        let labels = [
            (K::ProxyUnreachable, "proxy_unreachable"),
            (K::SourceUnavailable, "source_unavailable"),
            (K::Timeout(Phase::Connect), "timeout"),
            (K::AuthRequired, "auth_required"),
            (K::AuthFailed, "auth_failed"),
            (K::Refused(Refusal::Socks4(91)), "refused"),
            (K::TargetUnreachable(None), "target_unreachable"),
            (
                K::TargetUnreachable(Some(Refusal::Socks5(4))),
                "target_unreachable",
            ),
            (K::Protocol, "protocol"),
            (K::Tls, "tls"),
            (K::Http, "other"),
            (K::AllMembersFailed, "other"),
            (K::Settings, "other"),
            (
                K::RateLimited {
                    exit: String::new(),
                    wait: std::time::Duration::ZERO,
                },
                "other",
            ),
        ];
        for (kind, label) in &labels {
            assert_eq!(kind.metric_label(), *label, "{kind:?}");
        }
        let given: std::collections::BTreeSet<&str> = labels.iter().map(|(_, l)| *l).collect();
        let listed: std::collections::BTreeSet<&str> = K::METRIC_LABELS.into_iter().collect();
        assert_eq!(
            given, listed,
            "the list is every label given, and only those"
        );
    }

    #[test]
    fn refusals_say_what_the_proxy_answered() {
        let http = |reason: &str| Refusal::Http {
            status: 403,
            reason: reason.to_owned(),
        };
        assert_eq!(http("").to_string(), "HTTP 403");
        assert_eq!(http("Forbidden").to_string(), "HTTP 403 Forbidden");
        assert_eq!(Refusal::Socks4(91).to_string(), "SOCKS4 reply 91");
        let socks5 = [
            (0, "unassigned"),
            (1, "general SOCKS server failure"),
            (2, "connection not allowed by ruleset"),
            (3, "network unreachable"),
            (4, "host unreachable"),
            (5, "connection refused"),
            (6, "TTL expired"),
            (7, "command not supported"),
            (8, "address type not supported"),
            (9, "unassigned"),
        ];
        for (code, text) in socks5 {
            assert_eq!(
                Refusal::Socks5(code).to_string(),
                format!("SOCKS5 reply {code} ({text})")
            );
        }
    }

    #[test]
    fn every_kind_has_its_message() {
        let messages = [
            (K::ProxyUnreachable, "proxy unreachable"),
            (
                K::SourceUnavailable,
                "the member's source address or interface cannot be used",
            ),
            (K::Timeout(Phase::Connect), "timed out during TCP connect"),
            (K::AuthRequired, "proxy requires authentication"),
            (K::AuthFailed, "proxy rejected the credentials"),
            (
                K::Refused(Refusal::Socks4(92)),
                "proxy refused the connection: SOCKS4 reply 92",
            ),
            (
                K::TargetUnreachable(Some(Refusal::Socks5(4))),
                "proxy could not reach the target: SOCKS5 reply 4 (host unreachable)",
            ),
            (K::TargetUnreachable(None), "target unreachable"),
            (K::TargetResolution, "cannot resolve the target's name"),
            (K::Protocol, "proxy protocol error"),
            (K::Tls, "TLS error"),
            (K::WebSocket, "WebSocket handshake failed"),
            (K::Http, "HTTP error"),
            (
                K::Status(http::StatusCode::TOO_MANY_REQUESTS),
                "the server answered 429 Too Many Requests",
            ),
            (
                K::Status(http::StatusCode::from_u16(599).unwrap()),
                "the server answered 599",
            ),
            (
                K::BodyTooLarge { limit: 10 },
                "the response body is larger than 10 bytes",
            ),
            (K::Decode, "cannot decode the response body"),
            (K::InvalidRequest, "invalid request"),
            (K::AllMembersFailed, "every pool member tried failed"),
            (K::InvalidTarget, "invalid target"),
            (K::InvalidExchange, "invalid exchange id"),
            (K::Settings, "invalid proxy settings"),
            (K::Disconnected, "the WebSocket connection ended"),
            (
                K::NotConnected,
                "the WebSocket session has no connection to send on",
            ),
            (K::Hook, "the session's on_connect hook failed"),
            (
                K::RateLimited {
                    exit: "direct://192.0.2.10".to_owned(),
                    wait: std::time::Duration::from_millis(1500),
                },
                "the weight budget of every exit is spent: direct://192.0.2.10 frees enough in 1500 ms, after the request's deadline",
            ),
        ];
        for (kind, message) in messages {
            assert_eq!(kind.to_string(), message);
        }
    }

    fn proxy(shown: &str) -> Via {
        Via::Proxy(shown.to_owned())
    }

    #[test]
    fn an_error_names_exchange_route_target_detail_and_cause() {
        let cause = std::io::Error::other("reset by peer");
        let e = ProxyError::new(K::ProxyUnreachable)
            .detail("no route")
            .source(cause)
            .at(Some("binance"), proxy("socks5h://p:1080"), Some("t:443"));
        assert_eq!(
            e.to_string(),
            "binance: proxy unreachable: no route (via socks5h://p:1080 to t:443): reset by peer"
        );
        assert_eq!(e.kind(), &K::ProxyUnreachable);
        assert_eq!(e.exchange(), Some("binance"));
        assert_eq!(e.proxy(), Some("socks5h://p:1080"));
        assert_eq!(e.target(), Some("t:443"));
        assert!(!e.is_direct());
        assert_eq!(StdError::source(&e).unwrap().to_string(), "reset by peer");
        assert_eq!(
            format!("{e:?}"),
            "ProxyError { kind: ProxyUnreachable, exchange: Some(\"binance\"), \
             proxy: Some(\"socks5h://p:1080\"), direct: false, target: Some(\"t:443\"), \
             detail: Some(\"no route\"), phase: None, members: [], source: Some(\"reset by peer\") }"
        );

        let ways = [
            (
                proxy("http://p:3128"),
                None,
                "invalid target (via http://p:3128)",
            ),
            (
                Via::Direct,
                Some("t:443"),
                "invalid target (direct to t:443)",
            ),
            (Via::Direct, None, "invalid target (direct)"),
            (Via::Unknown, Some("t:443"), "invalid target (to t:443)"),
            (Via::Unknown, None, "invalid target"),
        ];
        for (via, target, shown) in ways {
            let direct = via == Via::Direct;
            let e = ProxyError::new(K::InvalidTarget).at(None, via, target);
            assert_eq!(e.to_string(), shown);
            assert_eq!(e.is_direct(), direct, "{shown}");
            assert_eq!(e.proxy().is_some(), shown.contains("via"), "{shown}");
            assert!(StdError::source(&e).is_none());
        }
    }

    #[test]
    fn an_error_keeps_the_first_phase_it_is_put_in() {
        assert_eq!(ProxyError::new(K::Tls).phase(), None);
        let tls = ProxyError::new(K::Tls).in_phase(Phase::ProxyTls);
        assert_eq!(tls.phase(), Some(Phase::ProxyTls));
        assert_eq!(tls.in_phase(Phase::Tls).phase(), Some(Phase::ProxyTls));
        let timeout = ProxyError::new(K::Timeout(Phase::Connect));
        assert_eq!(timeout.phase(), Some(Phase::Connect));
        assert_eq!(timeout.in_phase(Phase::Tls).phase(), Some(Phase::Connect));
        // A clone keeps it; editing a shared error leaves its clones as they were.
        let shared = ProxyError::new(K::Protocol);
        let kept = shared.clone();
        assert_eq!(
            shared.in_phase(Phase::ProxyHandshake).phase(),
            Some(Phase::ProxyHandshake)
        );
        assert_eq!(kept.phase(), None);
    }

    #[test]
    fn status_and_timeout_phase_only_for_their_kinds() {
        let status = ProxyError::new(K::Status(http::StatusCode::IM_A_TEAPOT));
        assert_eq!(status.status(), Some(http::StatusCode::IM_A_TEAPOT));
        assert_eq!(status.timeout_phase(), None);
        let timeout = ProxyError::new(K::Timeout(Phase::Tls));
        assert_eq!(timeout.timeout_phase(), Some(Phase::Tls));
        assert_eq!(timeout.status(), None);
    }

    #[test]
    fn a_pool_error_lists_each_member_as_tried() {
        let failures = vec![
            ProxyError::new(K::ProxyUnreachable).at(None, proxy("socks5h://a:1"), None),
            ProxyError::new(K::Timeout(Phase::Connect))
                .detail("slow")
                .at(None, Via::Direct, None),
        ];
        let e = ProxyError::new(K::AllMembersFailed).members(failures.clone());
        assert_eq!(
            e.to_string(),
            "every pool member tried failed: socks5h://a:1 proxy unreachable; \
             direct timed out during TCP connect: slow"
        );
        assert_eq!(e.member_failures().len(), 2);
        assert_eq!(e.member_failures()[1].to_string(), failures[1].to_string());
    }

    #[test]
    fn editing_a_shared_error_leaves_its_clones_as_they_were() {
        let first = ProxyError::new(K::Tls).at(Some("okx"), Via::Direct, Some("t:443"));
        let kept = first.clone();
        let changed = first.detail("bad certificate");
        assert_eq!(kept.to_string(), "okx: TLS error (direct to t:443)");
        assert_eq!(
            changed.to_string(),
            "okx: TLS error: bad certificate (direct to t:443)"
        );
    }

    #[test]
    fn a_proxy_error_is_found_in_a_chain_of_causes() {
        #[derive(Debug)]
        struct Wrapper(ProxyError);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("wrapped")
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let inner = ProxyError::new(K::AuthFailed).at(Some("kraken"), Via::Unknown, None);
        let found = find_in_chain(&Wrapper(inner)).unwrap();
        assert_eq!(found.kind(), &K::AuthFailed);
        assert_eq!(found.exchange(), Some("kraken"));
        assert!(find_in_chain(&std::io::Error::other("plain")).is_none());
    }

    #[test]
    fn settings_errors_keep_the_load_error_as_their_cause() {
        let load = crate::model::proxy_settings::ProxySettings::loader()
            .env_vars([("CRYPTOFEED_PROXY_ENABLED", "maybe")])
            .load()
            .unwrap_err();
        let shown = load.to_string();
        let e = ProxyError::settings(load);
        assert_eq!(e.kind(), &K::Settings);
        assert_eq!(StdError::source(&e).unwrap().to_string(), shown);
    }
}
