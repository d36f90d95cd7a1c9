//! Resilient WebSocket sessions: a supervisor over plain streams of one route, which
//! keeps the stream alive (pings, liveness), reconnects through route selection with
//! jittered backoff, runs the caller's `on_connect` after every connection, and replaces
//! a connection make-before-break when its lifetime ends.
//!
//! The session has no task of its own: reading it drives it, as reading a tokio-tungstenite
//! stream is what answers its pings. The read path is the plain stream's plus a clock
//! read; the timers are looked at only when the connection has nothing to read (and every
//! 64 messages of a stream that never pauses).

use std::collections::VecDeque;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

use super::{WebSocket, client_request};
use crate::error::{ProxyError, ProxyErrorKind as K};
use crate::model::session::SessionSettings;
use crate::route::dialer::Dialer;
use crate::transport::tls;

/// The payload of the session's own pings: their pongs are not handed to the reader.
const PING_PAYLOAD: &[u8] = b"proxy-runtime keepalive";
/// Messages read in a row before the timers are looked at, on a stream that never pauses.
const CHECK_EVERY: u8 = 64;
/// The old connection's data messages kept during a rotation, to find the overlap.
const RECENT_OLD: usize = 4096;
/// The new connection's messages held during a rotation; past it the switch is made.
const HELD_NEW: usize = 8192;
/// A session whose route a reload changed moves to the new one at a moment drawn up to
/// this long after it notices, so that the sessions of a route do not all move at once.
const RELOAD_SPREAD: Duration = Duration::from_secs(5);

type Hook = Arc<dyn Fn(Subscriber) -> BoxFuture<'static, Result<(), BoxError>> + Send + Sync>;
type EventFn = Arc<dyn Fn(&SessionEvent) + Send + Sync>;
type SequenceFn = Arc<dyn Fn(&Message) -> Option<u64> + Send + Sync>;
type BoxError = Box<dyn StdError + Send + Sync>;
type Connecting = BoxFuture<'static, Result<Live, ProxyError>>;

/// What a session tells the application besides its messages: through
/// [`WebSocketSessionBuilder::on_event`], as `tracing` events (target
/// `proxy_runtime::ws::session`, with the exchange and the redacted route) and as
/// `metrics` counters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A connection is up and `on_connect` ran: messages flow from it.
    Connected {
        /// The connection's number in this session (1, 2, ...), as
        /// [`SessionMessage::connection`] names it.
        connection: u64,
        /// How it was made, like `binance via socks5h://127.0.0.1:1080 to
        /// stream.binance.com:9443` (redacted): the member it went through.
        route: String,
    },
    /// A connection ended ([`ProxyErrorKind::Disconnected`](crate::ProxyErrorKind::Disconnected)
    /// says how) or could not be made.
    Disconnected {
        /// The connection that ended (0: an attempt that never connected).
        connection: u64,
        /// Why.
        error: ProxyError,
    },
    /// A new connection will be attempted after `delay`.
    Reconnecting {
        /// The attempt's number since the last stable connection (1, 2, ...).
        attempt: u32,
        /// The backoff drawn for it.
        delay: Duration,
    },
    /// A planned rotation switched the reader from one connection to another.
    Rotated {
        /// The old connection, now closed.
        from: u64,
        /// The new one.
        to: u64,
        /// Whether the two were seen to overlap (no message lost in the switch); `false`
        /// when the switch was made after `overlap_wait` without it.
        overlap: bool,
    },
    /// The session ended: the error is the last item the stream yields.
    Ended {
        /// Why.
        error: ProxyError,
    },
}

/// One message of a session, with the connection it came from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SessionMessage {
    /// The connection's number in the session (1, 2, ...): it changes at every reconnection
    /// and rotation, so a reader can tell where a duplicate across a rotation came from.
    pub connection: u64,
    /// The message, as tokio-tungstenite reads it (pings included; the session's own
    /// pongs and the server's close frame are not handed on).
    pub message: Message,
}

/// Sends the subscriptions of a new connection, in `on_connect`: each message is written
/// and flushed to that connection before `send` returns, and before any message of the
/// connection reaches the reader.
#[derive(Debug, Clone)]
pub struct Subscriber {
    tx: mpsc::UnboundedSender<(Message, oneshot::Sender<Result<(), ProxyError>>)>,
    connection: u64,
}

impl Subscriber {
    /// Writes `message` to the new connection.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), ProxyError> {
        let (done, sent) = oneshot::channel();
        let gone = || {
            ProxyError::new(K::Hook).detail("the connection is gone: the hook outlived its attempt")
        };
        self.tx.send((message.into(), done)).map_err(|_| gone())?;
        sent.await.map_err(|_| gone())?
    }

    /// The number of the connection being set up.
    pub fn connection(&self) -> u64 {
        self.connection
    }
}

/// What every connection of a session is made from.
struct Ctx {
    dialer: Dialer,
    request: Result<Request, ProxyError>,
    config: Option<WebSocketConfig>,
    settings: SessionSettings,
    on_connect: Option<Hook>,
    on_event: Option<EventFn>,
    sequence: Option<SequenceFn>,
    /// The exchange, as metrics label it (`*` for the default route).
    exchange: String,
}

impl Ctx {
    fn emit(&self, event: SessionEvent) {
        let exchange = self.exchange.as_str();
        match &event {
            SessionEvent::Connected { connection, route } => {
                tracing::info!(exchange, connection, route = %route, "websocket session connected");
                metrics::counter!("websocket_session_connects_total", "exchange" => self.exchange.clone()).increment(1);
            }
            SessionEvent::Disconnected { connection, error } => {
                tracing::warn!(exchange, connection, error = %error, "websocket session disconnected");
                metrics::counter!("websocket_session_disconnects_total", "exchange" => self.exchange.clone()).increment(1);
            }
            SessionEvent::Reconnecting { attempt, delay } => {
                tracing::info!(
                    exchange,
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    "websocket session reconnecting"
                );
            }
            SessionEvent::Rotated { from, to, overlap } => {
                tracing::info!(exchange, from, to, overlap, "websocket session rotated");
                metrics::counter!("websocket_session_rotations_total", "exchange" => self.exchange.clone(), "overlap" => if *overlap { "true" } else { "false" }).increment(1);
            }
            SessionEvent::Ended { error } => {
                tracing::error!(exchange, error = %error, "websocket session ended");
                metrics::counter!("websocket_session_ended_total", "exchange" => self.exchange.clone()).increment(1);
            }
        }
        if let Some(on_event) = &self.on_event {
            on_event(&event);
        }
    }
}

/// Opens a [`WebSocketSession`]: made by `websocket_session` on a `#[proxied]` client, a
/// [`Dialer`] or a [`ProxyInjector`](crate::ProxyInjector); [`open`](Self::open) connects.
#[must_use = "a session builder does nothing until `open` is awaited"]
pub struct WebSocketSessionBuilder {
    ctx: Ctx,
}

impl fmt::Debug for WebSocketSessionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketSessionBuilder")
            .field("route", &self.ctx.dialer.route())
            .field("settings", &format_args!("{}", self.ctx.settings))
            .finish_non_exhaustive()
    }
}

impl WebSocketSessionBuilder {
    pub(crate) fn new(dialer: Dialer, request: Result<Request, ProxyError>) -> Self {
        let exchange = dialer.exchange().unwrap_or("*").to_owned();
        Self {
            ctx: Ctx {
                settings: dialer.session_settings(),
                dialer,
                request,
                config: None,
                on_connect: None,
                on_event: None,
                sequence: None,
                exchange,
            },
        }
    }

    /// Runs `hook` after every connection (the first, each reconnection, each rotation),
    /// before any message of that connection reaches the reader: send the subscriptions
    /// with its [`Subscriber`]. It must finish within the route's timeout; an error (or
    /// the timeout) drops the connection and counts as a failed attempt.
    pub fn on_connect<F, Fut, E>(mut self, hook: F) -> Self
    where
        F: Fn(Subscriber) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        self.ctx.on_connect = Some(Arc::new(move |subscriber| {
            let run = hook(subscriber);
            Box::pin(async move { run.await.map_err(Into::into) })
        }));
        self
    }

    /// Calls `on_event` with every [`SessionEvent`], on the task reading the session (keep
    /// it short: send it to a channel to do more).
    pub fn on_event(mut self, on_event: impl Fn(&SessionEvent) + Send + Sync + 'static) -> Self {
        self.ctx.on_event = Some(Arc::new(on_event));
        self
    }

    /// Reads the exchange's sequence number of a message, for a rotation to find where the
    /// new connection takes over exactly (instead of by a message seen byte-equal on
    /// both): `None` for a message without one (an acknowledgement).
    pub fn sequence(
        mut self,
        sequence: impl Fn(&Message) -> Option<u64> + Send + Sync + 'static,
    ) -> Self {
        self.ctx.sequence = Some(Arc::new(sequence));
        self
    }

    /// tungstenite's frame and message size limits for every connection.
    pub fn config(mut self, config: WebSocketConfig) -> Self {
        self.ctx.config = Some(config);
        self
    }

    /// Knobs over the route's (each one given here wins; the others stay the settings').
    pub fn settings(mut self, settings: SessionSettings) -> Self {
        self.ctx.settings = settings.or(&self.ctx.settings);
        self
    }

    /// Makes the first connection (through every member of a pool, within the route's
    /// timeout) and runs `on_connect` on it. Fails with that attempt's error: a proxy
    /// down or a host mistyped at start-up is the caller's to see. From then on the
    /// session reconnects by itself.
    pub async fn open(self) -> Result<WebSocketSession, ProxyError> {
        let problems = self.ctx.settings.problems();
        if !problems.is_empty() {
            return Err(self.ctx.dialer.attach(
                ProxyError::new(K::Settings)
                    .detail(format!("websocket_session: {}", problems.join("; "))),
                None,
            ));
        }
        let ctx = Arc::new(self.ctx);
        let first = connect(ctx.clone(), Duration::ZERO, 1);
        let mut session = WebSocketSession {
            ctx,
            state: State::Connecting(first),
            next_id: 2,
            attempts: 0,
            disconnected_at: None,
            rotation: None,
            pending: VecDeque::new(),
            catchup: None,
            attention: false,
            sender: None,
            send_deadline: None,
            write: Write::Flushed,
            rotation_failures: 0,
            opening: true,
            finished: None,
        };
        std::future::poll_fn(|cx| session.poll_connecting(cx)).await;
        session.opening = false;
        match &session.state {
            State::Live(_) => Ok(session),
            State::Connecting(_) | State::Ended => Err(session
                .finished
                .take()
                .unwrap_or_else(|| ProxyError::new(K::NotConnected))),
        }
    }
}

/// A WebSocket stream that stays up: a `Stream` of [`SessionMessage`]s and a `Sink` of
/// `Message`s, like tokio-tungstenite's, over a connection the session replaces when it
/// ends. See the README's "Resilient streams" for the guarantees and limits.
///
/// - Reading drives it: pings, liveness, reconnection and rotation happen while a task
///   polls the stream (as with tokio-tungstenite, whose pongs are sent while it is read).
/// - The reader sees no error while the session reconnects; the stream ends (after one
///   `Err`) only when no retry can help or `max_attempts` ran out.
/// - A `send` while the session reconnects waits for the new connection up to the route's
///   timeout, then fails with [`NotConnected`](crate::ProxyErrorKind::NotConnected).
///   A message written to a connection that was lost before it was flushed fails its
///   `send` with `NotConnected` too (it may or may not have left), even when a new
///   connection is up by the time of the flush: the library never sends an application
///   message again. (A message written to the old connection of a rotation is flushed by
///   that connection's close handshake.)
/// - A session of a [`ProxyInjector`](crate::ProxyInjector)'s route follows its reloads:
///   each reconnection takes the route in force, and a reload that changes the route
///   moves the session with the rotation's make-before-break switch, at a moment drawn
///   within 5 s of its next look at its timers (every 64 messages, or a quarter of
///   `dead_after`), within the connection budget.
/// - Dropping it closes its connections; it has no task to stop.
pub struct WebSocketSession {
    ctx: Arc<Ctx>,
    state: State,
    next_id: u64,
    /// Failed attempts since the last stable connection.
    attempts: u32,
    /// When the connection was lost, until the first message after it.
    disconnected_at: Option<Instant>,
    rotation: Option<Box<Rotation>>,
    /// Messages of the new connection held during a rotation, to deliver first.
    pending: VecDeque<SessionMessage>,
    /// After a rotation: what the new connection still sends that the reader had.
    catchup: Option<Catchup>,
    /// Whether any of `pending`, `catchup`, `rotation` and `disconnected_at` may be set:
    /// the read path looks at them only then. Set where they are set; recomputed by
    /// [`attend`](Self::attend).
    attention: bool,
    sender: Option<Waker>,
    send_deadline: Option<Pin<Box<Sleep>>>,
    /// Whether a message was written and not yet flushed, and to which connection.
    write: Write,
    /// Rotations that failed in a row (their retries back off).
    rotation_failures: u32,
    /// While `open` runs: the first attempt's failure is returned, not retried.
    opening: bool,
    /// The error that ended the session, yielded once.
    finished: Option<ProxyError>,
}

enum State {
    Live(Box<Live>),
    Connecting(Connecting),
    Ended,
}

/// A connection that is up.
struct Live {
    ws: WebSocket,
    id: u64,
    route: String,
    opened: Instant,
    /// When a frame (a data message) was last known to have arrived: set at each look at
    /// the timers that finds one came since the look before (a clock read per message
    /// would cost more than the rest of the session's read path), so it is late by at most
    /// the time between two looks, which [`Live::rearm`] bounds by a quarter of the limit.
    last_frame: Instant,
    last_data: Instant,
    /// Whether a frame (a data message) came since the last look at the timers.
    fresh_frame: bool,
    fresh_data: bool,
    next_ping: Option<Instant>,
    /// When the rotation starts (none once it started, or without `max_lifetime`).
    rotate_at: Option<Instant>,
    /// When it moves to the route a reload put in force.
    moving: Move,
    /// When it has been up for `stable_after` (none once it has).
    stable_at: Option<Instant>,
    /// The one timer: the soonest of the next ping, the dead and idle limits, and the
    /// rotation.
    wake: Pin<Box<Sleep>>,
    since_check: u8,
    /// The close frame the server sent, for the disconnection's detail.
    close: Option<String>,
}

/// A connection's move to the route a reload put in force.
struct Move {
    /// The dialer's generation when the connection was asked for (or when the last move
    /// was made due): a reload since put another route in force.
    generation: u64,
    /// When the move (a rotation) is due, once a reload was noticed.
    at: Option<Instant>,
}

impl Move {
    /// Whether the move is due at `now`, the dialer's generation being `generation`: a
    /// new generation sets it `draw` (0 to 1) of [`RELOAD_SPREAD`] from now, so that the
    /// sessions of a route do not all move at once (the connection budget paces them
    /// too).
    fn due(&mut self, generation: u64, now: Instant, draw: f64) -> bool {
        if generation != self.generation && self.at.is_none() {
            self.generation = generation;
            self.at = Some(now + RELOAD_SPREAD.mul_f64(draw));
        }
        if self.at.is_some_and(|at| now >= at) {
            // The move goes to the route in force now: reloads noticed while it waited
            // are in it.
            self.generation = generation;
            self.at = None;
            return true;
        }
        false
    }
}

enum Rotation {
    Connecting(Connecting),
    Overlap(Box<Overlap>),
}

struct Overlap {
    new: Box<Live>,
    /// What both connections delivered since the new one came up.
    log: OverlapLog,
    until: Pin<Box<Sleep>>,
}

/// What the two connections of a rotation delivered, to find where they overlap.
#[derive(Default)]
struct OverlapLog {
    /// The new connection's messages, not yet delivered.
    held: VecDeque<Message>,
    /// The digests of the held messages (without a sequence hook), to look a message up
    /// without a scan.
    held_seen: Digests,
    /// The old connection's recent data messages (without a sequence hook).
    recent: VecDeque<Message>,
    /// Their digests.
    recent_seen: Digests,
    /// The old connection's last sequence number (with a sequence hook).
    last_old_seq: Option<u64>,
}

/// What the timers say.
#[derive(Default)]
struct Due {
    /// The connection is dead or idle.
    lost: Option<ProxyError>,
    /// Its lifetime ended: rotate.
    rotate: bool,
    /// It has been up for `stable_after`: the attempt count starts again.
    stable: bool,
    /// A ping was written (with the reader's context: the writer's wake-up may be taken).
    pinged: bool,
}

impl fmt::Debug for WebSocketSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Live(live) => format!("connected ({}, {})", live.id, live.route),
            State::Connecting(_) => "reconnecting".to_owned(),
            State::Ended => "ended".to_owned(),
        };
        f.debug_struct("WebSocketSession")
            .field("exchange", &self.ctx.exchange)
            .field("state", &state)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// Opens connection `id` after `delay`, and runs the hook on it.
fn connect(ctx: Arc<Ctx>, delay: Duration, id: u64) -> Connecting {
    Box::pin(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let request = ctx.request.clone()?;
        let generation = ctx.dialer.generation();
        let (mut ws, _) = ctx
            .dialer
            .open_websocket(Ok(request), ctx.config, None)
            .await?;
        if let Some(hook) = &ctx.on_connect {
            let deadline = ctx.dialer.timeout();
            let run = run_hook(hook, &mut ws, id);
            match tokio::time::timeout(deadline, run).await {
                Ok(result) => result.map_err(|e| ctx.dialer.attach(e, None))?,
                Err(_) => {
                    return Err(ctx.dialer.attach(
                        ProxyError::new(K::Hook)
                            .detail(format!("on_connect did not finish within {deadline:?}")),
                        None,
                    ));
                }
            }
        }
        let route = ws.get_ref().description().to_owned();
        Ok(Live::new(ws, id, route, &ctx.settings, generation))
    })
}

/// Runs `hook`, writing what it sends to `ws` as it sends it.
async fn run_hook(hook: &Hook, ws: &mut WebSocket, id: u64) -> Result<(), ProxyError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut run = hook(Subscriber { tx, connection: id });
    loop {
        tokio::select! {
            biased;
            Some((message, done)) = rx.recv() => {
                let sent = ws.send(message).await.map_err(broke);
                let failed = sent.clone().err();
                let _ = done.send(sent);
                if let Some(e) = failed {
                    return Err(e);
                }
            }
            result = &mut run => {
                return result.map_err(|e| ProxyError::new(K::Hook).source_boxed(e));
            }
        }
    }
}

/// A connection that broke.
fn broke(e: tungstenite::Error) -> ProxyError {
    ProxyError::new(K::Disconnected)
        .detail("the connection broke")
        .source(e)
}

/// Whether no retry can fix `error`: settings or a request that cannot work, the target's
/// certificate refused, an upgrade refused for good (a 4xx other than 408 and 429).
pub(crate) fn is_permanent(error: &ProxyError) -> bool {
    match error.kind() {
        K::Settings | K::InvalidExchange | K::InvalidTarget | K::InvalidRequest => true,
        K::Tls => tls::is_certificate_failure(error),
        K::WebSocket => {
            let mut cause = StdError::source(error);
            while let Some(e) = cause {
                if let Some(tungstenite::Error::Http(response)) =
                    e.downcast_ref::<tungstenite::Error>()
                {
                    let status = response.status();
                    // 403 (a block by address), 408, 418 (a ban that ends) and 429 pass.
                    return status.is_client_error()
                        && ![403, 408, 418, 429].contains(&status.as_u16());
                }
                cause = e.source();
            }
            false
        }
        K::AllMembersFailed => {
            let members = error.member_failures();
            !members.is_empty() && members.iter().all(is_permanent)
        }
        _ => false,
    }
}

impl Live {
    fn new(
        ws: WebSocket,
        id: u64,
        route: String,
        settings: &SessionSettings,
        generation: u64,
    ) -> Self {
        let now = Instant::now();
        let mut live = Self {
            ws,
            id,
            route,
            opened: now,
            last_frame: now,
            last_data: now,
            fresh_frame: false,
            fresh_data: false,
            next_ping: settings.ping_interval().map(|every| now + every),
            rotate_at: settings.max_lifetime().map(|lifetime| now + lifetime),
            moving: Move {
                generation,
                at: None,
            },
            stable_at: Some(now + settings.stable_after()),
            wake: Box::pin(tokio::time::sleep_until(now)),
            since_check: 0,
            close: None,
        };
        live.rearm(settings);
        live
    }

    /// Sets the timer to the soonest thing due (a day away when nothing is).
    fn rearm(&mut self, settings: &SessionSettings) {
        let now = Instant::now();
        let far = now + Duration::from_secs(86_400);
        // A look at least every quarter of the liveness limits: a frame is known to have
        // come at most that late, so a connection is declared dead (idle) between
        // `dead_after` (`idle_after`) and a quarter more after its last frame (message).
        let look = [settings.dead_after(), settings.idle_after()]
            .into_iter()
            .flatten()
            .min()
            .map(|limit| now + limit / 4);
        let at = [
            self.next_ping,
            settings.dead_after().map(|d| self.last_frame + d),
            settings.idle_after().map(|d| self.last_data + d),
            self.rotate_at,
            self.moving.at,
            self.stable_at,
            look,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(far);
        self.wake.as_mut().reset(at);
    }

    /// What is due now, into `due`; sends a ping when one is. `generation` is the
    /// dialer's now.
    fn due(
        &mut self,
        settings: &SessionSettings,
        generation: u64,
        cx: &mut Context<'_>,
        due: &mut Due,
    ) {
        let now = Instant::now();
        if std::mem::take(&mut self.fresh_frame) {
            self.last_frame = now;
        }
        if std::mem::take(&mut self.fresh_data) {
            self.last_data = now;
        }
        if let Some(dead) = settings.dead_after()
            && now >= self.last_frame + dead
        {
            due.lost = Some(ProxyError::new(K::Disconnected).detail(format!(
                "declared dead: no frame for {} ms (dead_after_ms)",
                dead.as_millis()
            )));
            return;
        }
        if let Some(idle) = settings.idle_after()
            && now >= self.last_data + idle
        {
            due.lost = Some(ProxyError::new(K::Disconnected).detail(format!(
                "declared idle: no data message for {} ms (idle_after_ms)",
                idle.as_millis()
            )));
            return;
        }
        if let (Some(at), Some(every)) = (self.next_ping, settings.ping_interval())
            && now >= at
        {
            due.pinged = true;
            // A write buffer too full for the ping skips it (the next is an interval away;
            // liveness counts any frame). An error shows on the next read.
            if let Poll::Ready(Ok(())) = self.ws.poll_ready_unpin(cx) {
                let _ = self.ws.start_send_unpin(Message::Ping(PING_PAYLOAD.into()));
                let _ = self.ws.poll_flush_unpin(cx);
            }
            self.next_ping = Some(now + every);
        }
        if self.rotate_at.is_some_and(|at| now >= at) {
            self.rotate_at = None;
            due.rotate = true;
        }
        if self.moving.due(generation, now, fastrand::f64()) {
            due.rotate = true;
        }
        if self.stable_at.is_some_and(|at| now >= at) {
            self.stable_at = None;
            due.stable = true;
        }
    }

    /// Looks at the timers if the timer fired (or `force`), until the timer is armed for
    /// later and registered to wake the reader (but for a lost connection, which is
    /// dropped).
    #[inline(never)]
    fn poll_timers(
        &mut self,
        settings: &SessionSettings,
        generation: u64,
        cx: &mut Context<'_>,
        force: bool,
    ) -> Due {
        let mut due = Due::default();
        let mut fired = force;
        loop {
            if !fired && self.wake.as_mut().poll(cx).is_pending() {
                return due;
            }
            fired = false;
            self.due(settings, generation, cx, &mut due);
            self.rearm(settings);
            if due.lost.is_some() {
                return due;
            }
        }
    }

    /// Notes a frame read now; whether it is one to hand on (not the session's own pong, not
    /// the close frame).
    #[inline(always)]
    fn seen(&mut self, message: &Message) -> bool {
        self.fresh_frame = true;
        match message {
            Message::Text(_) | Message::Binary(_) => {
                self.fresh_data = true;
                true
            }
            Message::Pong(payload) => payload.as_ref() != PING_PAYLOAD,
            Message::Close(frame) => {
                self.closed(frame.as_ref());
                false
            }
            Message::Ping(_) | Message::Frame(_) => true,
        }
    }

    /// Notes the server's close frame, for the disconnection's detail.
    #[cold]
    fn closed(&mut self, frame: Option<&tungstenite::protocol::CloseFrame>) {
        self.close = Some(match frame {
            Some(frame) => format!(
                "the server closed the connection ({} {})",
                frame.code, frame.reason
            ),
            None => "the server closed the connection".to_owned(),
        });
    }

    /// Why the connection ended, when its stream did.
    fn ended(&mut self) -> ProxyError {
        ProxyError::new(K::Disconnected).detail(
            self.close
                .take()
                .unwrap_or_else(|| "the connection was closed without a close frame".to_owned()),
        )
    }

    /// Closes it in the background, politely (a close frame, for at most a second).
    fn close(self: Box<Self>) {
        let mut ws = self.ws;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
            });
        }
    }
}

/// A multiset of message digests: whether a message may be among some kept ones, without
/// comparing it with each (a rotation compares every message of both connections).
#[derive(Default)]
struct Digests(std::collections::HashMap<u64, u32>);

impl Digests {
    fn add(&mut self, digest: u64) {
        *self.0.entry(digest).or_default() += 1;
    }

    fn remove(&mut self, digest: u64) {
        if let std::collections::hash_map::Entry::Occupied(mut entry) = self.0.entry(digest) {
            *entry.get_mut() -= 1;
            if *entry.get() == 0 {
                entry.remove();
            }
        }
    }

    fn contains(&self, digest: u64) -> bool {
        self.0.contains_key(&digest)
    }
}

/// The digest of a data message's kind and bytes.
fn digest(message: &Message) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    match message {
        Message::Text(text) => (0u8, text.as_str().as_bytes()).hash(&mut hasher),
        Message::Binary(bytes) => (1u8, bytes.as_ref()).hash(&mut hasher),
        other => (2u8, other.len()).hash(&mut hasher),
    }
    hasher.finish()
}

/// Whether `message` carries data (what overlap and idleness look at).
fn is_data(message: &Message) -> bool {
    matches!(message, Message::Text(_) | Message::Binary(_))
}

/// Where the new connection takes over, once the overlap is seen.
struct Switch {
    /// The first held message to deliver.
    from: usize,
    /// What the new connection will still send that the old one delivered.
    catchup: Option<Catchup>,
}

/// What the new connection still owes the old one after a switch: messages it will send
/// that the reader has had, dropped as they come.
#[derive(Debug)]
enum Catchup {
    /// Data messages numbered up to this one.
    Through(u64),
    /// These messages, byte-equal, in this order.
    Messages(VecDeque<Message>),
}

impl Catchup {
    /// Whether `message` is one the reader had (and is dropped); `done` once the new
    /// connection is past them.
    fn drops(&mut self, message: &Message, sequence: Option<&SequenceFn>, done: &mut bool) -> bool {
        if !is_data(message) {
            return false;
        }
        match self {
            Catchup::Through(old) => match sequence.and_then(|s| s(message)) {
                Some(seq) if seq <= *old => true,
                Some(_) => {
                    *done = true;
                    false
                }
                None => false,
            },
            Catchup::Messages(owed) => {
                let had = owed.front() == Some(message);
                if had {
                    owed.pop_front();
                }
                *done = owed.is_empty() || !had;
                had
            }
        }
    }
}

impl OverlapLog {
    /// With a sequence hook: the overlap is seen once the new connection's first numbered
    /// message is at most one past the old connection's last (no gap between them).
    fn sequence_overlap(&self, sequence: &SequenceFn) -> Option<Switch> {
        let old = self.last_old_seq?;
        let first = self.held.iter().find_map(|m| sequence(m))?;
        (first <= old.saturating_add(1)).then(|| Switch {
            from: 0,
            catchup: Some(Catchup::Through(old)),
        })
    }

    /// Holds a message of the new connection; the switch, if it shows the overlap.
    fn note_new(&mut self, sequence: Option<&SequenceFn>, message: Message) -> Option<Switch> {
        if let Some(sequence) = sequence {
            self.held.push_back(message);
            return self.sequence_overlap(sequence);
        }
        let d = digest(&message);
        self.held_seen.add(d);
        self.held.push_back(message);
        // The old connection delivered it (it keeps data messages only, and a digest
        // includes the kind): what it delivered after it, the new one owes.
        if !self.recent_seen.contains(d) {
            return None;
        }
        let last = self.held.back()?;
        let j = self.recent.iter().rposition(|m| m == last)?;
        let owed: VecDeque<Message> = self.recent.iter().skip(j + 1).cloned().collect();
        Some(Switch {
            from: self.held.len(),
            catchup: (!owed.is_empty()).then_some(Catchup::Messages(owed)),
        })
    }

    /// Notes a message the old connection delivers; the switch, if it shows the overlap.
    fn note_old(&mut self, sequence: Option<&SequenceFn>, message: &Message) -> Option<Switch> {
        if !is_data(message) {
            return None;
        }
        if let Some(sequence) = sequence {
            if let Some(seq) = sequence(message) {
                self.last_old_seq = Some(seq);
            }
            return self.sequence_overlap(sequence);
        }
        // The new connection has it already: it takes over after it.
        let d = digest(message);
        if self.held_seen.contains(d)
            && let Some(i) = self.held.iter().position(|m| m == message)
        {
            return Some(Switch {
                from: i + 1,
                catchup: None,
            });
        }
        if self.recent.len() == RECENT_OLD
            && let Some(old) = self.recent.pop_front()
        {
            self.recent_seen.remove(digest(&old));
        }
        self.recent_seen.add(d);
        self.recent.push_back(message.clone());
        None
    }

    /// The held messages the reader gets at the switch: from `from` on, and with a
    /// sequence hook, only the data messages past the old connection's last.
    fn delivered(
        self,
        from: usize,
        sequence: Option<&SequenceFn>,
    ) -> impl Iterator<Item = Message> {
        let old = sequence.zip(self.last_old_seq);
        self.held.into_iter().skip(from).filter(move |m| match old {
            Some((sequence, old)) => !is_data(m) || sequence(m).is_none_or(|seq| seq > old),
            None => true,
        })
    }
}

impl WebSocketSession {
    /// The number of the connection messages come from now (`None` while reconnecting or
    /// ended).
    pub fn connection(&self) -> Option<u64> {
        match &self.state {
            State::Live(live) => Some(live.id),
            State::Connecting(_) | State::Ended => None,
        }
    }

    /// How the current connection was made (redacted), like
    /// `binance via socks5h://127.0.0.1:1080 to stream.binance.com:9443`.
    pub fn route(&self) -> Option<&str> {
        match &self.state {
            State::Live(live) => Some(&live.route),
            State::Connecting(_) | State::Ended => None,
        }
    }

    /// The knobs this session runs with.
    pub fn settings(&self) -> &SessionSettings {
        &self.ctx.settings
    }

    /// Drives a connection under way; `Ready` once the state changed (live, another
    /// attempt scheduled, or ended).
    #[inline(never)]
    fn poll_connecting(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let State::Connecting(attempt) = &mut self.state else {
                return Poll::Ready(());
            };
            let result = ready!(attempt.as_mut().poll(cx));
            match result {
                Ok(live) => {
                    self.went_live(Box::new(live));
                    return Poll::Ready(());
                }
                Err(error) => {
                    self.ctx.emit(SessionEvent::Disconnected {
                        connection: 0,
                        error: error.clone(),
                    });
                    // The first attempt already tried every member of the route: its
                    // failure is the caller's to see, not to wait out.
                    if self.opening || is_permanent(&error) {
                        self.end(error);
                        return Poll::Ready(());
                    }
                    self.schedule(error);
                    // `open` waits for a live connection or the end, not a state change.
                }
            }
        }
    }

    fn went_live(&mut self, live: Box<Live>) {
        self.ctx.emit(SessionEvent::Connected {
            connection: live.id,
            route: live.route.clone(),
        });
        self.state = State::Live(live);
        self.send_deadline = None;
        if let Some(sender) = self.sender.take() {
            sender.wake();
        }
    }

    /// Schedules the next attempt after `error`, or ends the session when the attempts
    /// ran out.
    fn schedule(&mut self, error: ProxyError) {
        self.attempts = self.attempts.saturating_add(1);
        let settings = &self.ctx.settings;
        if let Some(max) = settings.max_attempts()
            && self.attempts > max
        {
            let error = ProxyError::new(K::Disconnected).detail(format!(
                "gave up after {max} attempts (max_attempts): {error}"
            ));
            self.end(self.ctx.dialer.attach(error, None));
            return;
        }
        let delay = backoff(settings, self.attempts);
        self.ctx.emit(SessionEvent::Reconnecting {
            attempt: self.attempts,
            delay,
        });
        let id = self.take_id();
        self.state = State::Connecting(connect(self.ctx.clone(), delay, id));
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn end(&mut self, error: ProxyError) {
        self.ctx.emit(SessionEvent::Ended {
            error: error.clone(),
        });
        self.state = State::Ended;
        self.rotation = None;
        self.finished = Some(error);
        if let Some(sender) = self.sender.take() {
            sender.wake();
        }
    }

    /// The live connection was lost with `error`.
    #[inline(never)]
    fn lost(&mut self, error: ProxyError) {
        let State::Live(live) = std::mem::replace(&mut self.state, State::Ended) else {
            return;
        };
        let error = self.ctx.dialer.attach(error, None);
        self.ctx.emit(SessionEvent::Disconnected {
            connection: live.id,
            error: error.clone(),
        });
        self.disconnected_at.get_or_insert_with(Instant::now);
        self.catchup = None;
        self.attention = true;
        if self.write == Write::Pending {
            self.write = Write::Lost;
        }
        // A writer waiting on the lost connection looks again (and finds it gone).
        if let Some(sender) = self.sender.take() {
            sender.wake();
        }
        if live.opened.elapsed() >= self.ctx.settings.stable_after() {
            self.attempts = 0;
        }
        match self.rotation.as_deref() {
            // A rotation under way is the reconnection: it is already connecting.
            Some(Rotation::Connecting(_)) => {
                if let Some(Rotation::Connecting(attempt)) = self.rotation.take().map(|r| *r) {
                    self.state = State::Connecting(attempt);
                }
            }
            // Its new connection is up: the switch is made now, without the overlap.
            Some(Rotation::Overlap(_)) => {
                self.state = State::Live(live);
                self.switch(
                    Switch {
                        from: 0,
                        catchup: None,
                    },
                    false,
                );
            }
            None => self.schedule(error),
        }
    }

    /// Starts a rotation: the next connection, made beside the live one.
    fn start_rotation(&mut self) {
        let id = self.take_id();
        self.attention = true;
        self.rotation = Some(Box::new(Rotation::Connecting(connect(
            self.ctx.clone(),
            Duration::ZERO,
            id,
        ))));
    }

    /// Drives the rotation beside `live`: the new connection's setup, then its messages,
    /// held until the overlap. Returns the switch to make, if it is time.
    #[inline(never)]
    fn poll_rotation(&mut self, cx: &mut Context<'_>) -> Option<(Switch, bool)> {
        let rotation = self.rotation.as_mut()?;
        match &mut **rotation {
            Rotation::Connecting(attempt) => match attempt.as_mut().poll(cx) {
                Poll::Pending => None,
                Poll::Ready(Ok(new)) => {
                    let until = Box::pin(tokio::time::sleep(self.ctx.settings.overlap_wait()));
                    **rotation = Rotation::Overlap(Box::new(Overlap {
                        new: Box::new(new),
                        log: OverlapLog::default(),
                        until,
                    }));
                    // Read what it has already.
                    self.poll_rotation(cx)
                }
                Poll::Ready(Err(error)) => {
                    tracing::warn!(exchange = %self.ctx.exchange, error = %error, "websocket session rotation could not connect: trying again later");
                    self.rotation = None;
                    self.retry_rotation_later(Some(&error));
                    None
                }
            },
            Rotation::Overlap(overlap) => {
                let sequence = self.ctx.sequence.as_ref();
                loop {
                    match overlap.new.ws.poll_next_unpin(cx) {
                        Poll::Ready(Some(Ok(message))) => {
                            if !overlap.new.seen(&message) {
                                continue;
                            }
                            if let Some(switch) = overlap.log.note_new(sequence, message) {
                                return Some((switch, true));
                            }
                            if overlap.log.held.len() >= HELD_NEW {
                                return Some((
                                    Switch {
                                        from: 0,
                                        catchup: None,
                                    },
                                    false,
                                ));
                            }
                        }
                        Poll::Ready(Some(Err(_)) | None) => {
                            tracing::warn!(exchange = %self.ctx.exchange, "websocket session rotation lost its new connection: trying again later");
                            self.rotation = None;
                            self.retry_rotation_later(None);
                            return None;
                        }
                        Poll::Pending => break,
                    }
                }
                if overlap.until.as_mut().poll(cx).is_ready() {
                    return Some((
                        Switch {
                            from: 0,
                            catchup: None,
                        },
                        false,
                    ));
                }
                None
            }
        }
    }

    /// A rotation failed: the next is tried after a backoff (at least `overlap_wait`),
    /// or never after a failure no retry fixes (the connection then lives until it ends,
    /// and the reconnection reports it).
    fn retry_rotation_later(&mut self, error: Option<&ProxyError>) {
        self.rotation_failures = self.rotation_failures.saturating_add(1);
        let settings = &self.ctx.settings;
        let delay = backoff(settings, self.rotation_failures).max(settings.overlap_wait());
        if let State::Live(live) = &mut self.state {
            live.rotate_at = match error {
                Some(e) if is_permanent(e) => None,
                _ => Some(Instant::now() + delay),
            };
            live.rearm(settings);
        }
    }

    /// Notes a data message `message` the old connection delivers during the overlap;
    /// whether it shows the overlap.
    fn overlap_from_old(&mut self, message: &Message) -> Option<Switch> {
        let Some(Rotation::Overlap(overlap)) = self.rotation.as_deref_mut() else {
            return None;
        };
        overlap.log.note_old(self.ctx.sequence.as_ref(), message)
    }

    /// Switches the reader to the rotation's new connection: its held messages from `from`
    /// on are delivered first (with a sequence hook: those past the old connection's last).
    #[inline(never)]
    fn switch(&mut self, switch: Switch, overlap_seen: bool) {
        let Switch { from, catchup } = switch;
        let Some(Rotation::Overlap(overlap)) = self.rotation.take().map(|r| *r) else {
            return;
        };
        let Overlap { new, log, .. } = *overlap;
        let to = new.id;
        let deliver: Vec<SessionMessage> = log
            .delivered(from, self.ctx.sequence.as_ref())
            .map(|message| SessionMessage {
                connection: to,
                message,
            })
            .collect();
        self.pending.extend(deliver);
        self.catchup = catchup;
        self.attention = true;
        self.ctx.emit(SessionEvent::Connected {
            connection: to,
            route: new.route.clone(),
        });
        self.rotation_failures = 0;
        if let State::Live(old) = std::mem::replace(&mut self.state, State::Live(new)) {
            self.ctx.emit(SessionEvent::Rotated {
                from: old.id,
                to,
                overlap: overlap_seen,
            });
            old.close();
        }
        if let Some(sender) = self.sender.take() {
            sender.wake();
        }
    }

    /// Acts on what the timers said (but a loss).
    #[inline(never)]
    fn timers_said(&mut self, due: &Due) {
        if due.stable {
            self.attempts = 0;
        }
        if due.pinged {
            // The ping took the writer's wake-up: let it look again.
            if let Some(sender) = self.sender.take() {
                sender.wake();
            }
        }
        if due.rotate && self.rotation.is_none() {
            self.start_rotation();
        }
    }

    /// What a message read from the live connection needs beyond the common case: the
    /// catch-up after a rotation, the timers every [`CHECK_EVERY`] messages, the rotation
    /// under way, the recovery time after a loss. `None` when the message is dropped (the
    /// reader had it). Recomputes [`attention`](Self::attention).
    #[inline(never)]
    fn attend(&mut self, message: Message, cx: &mut Context<'_>) -> Option<SessionMessage> {
        if let Some(catchup) = &mut self.catchup {
            let mut done = false;
            let drop = catchup.drops(&message, self.ctx.sequence.as_ref(), &mut done);
            if done {
                self.catchup = None;
            }
            if drop {
                self.refresh_attention();
                return None;
            }
        }
        let State::Live(live) = &mut self.state else {
            return None;
        };
        let connection = live.id;
        if live.since_check >= CHECK_EVERY {
            live.since_check = 0;
            let generation = self.ctx.dialer.generation();
            let due = live.poll_timers(&self.ctx.settings, generation, cx, true);
            // The message is delivered; a loss is found again at the next pause.
            self.timers_said(&due);
        }
        if self.rotation.is_some() {
            // Driven here too: a stream that never pauses must still rotate.
            if let Some(switch) = self.overlap_from_old(&message) {
                self.switch(switch, true);
            } else if let Some((switch, seen)) = self.poll_rotation(cx) {
                self.switch(switch, seen);
            }
        }
        if is_data(&message)
            && let Some(at) = self.disconnected_at.take()
        {
            metrics::histogram!("websocket_session_recovery_seconds", "exchange" => self.ctx.exchange.clone())
                .record(at.elapsed().as_secs_f64());
        }
        self.refresh_attention();
        Some(SessionMessage {
            connection,
            message,
        })
    }

    /// Whether the read path must look beyond the common case.
    fn refresh_attention(&mut self) {
        self.attention = self.catchup.is_some()
            || self.rotation.is_some()
            || self.disconnected_at.is_some()
            || !self.pending.is_empty();
    }

    /// The next message, driving everything.
    fn poll_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<SessionMessage, ProxyError>>> {
        loop {
            if self.attention
                && let Some(message) = self.pending.pop_front()
            {
                return Poll::Ready(Some(Ok(message)));
            }
            let live = match &mut self.state {
                State::Ended => return Poll::Ready(self.finished.take().map(Err)),
                State::Connecting(_) => {
                    if self.poll_connecting(cx).is_pending() {
                        return Poll::Pending;
                    }
                    continue;
                }
                State::Live(live) => live,
            };
            let read = live.ws.poll_next_unpin(cx);
            match read {
                Poll::Ready(Some(Ok(message))) => {
                    if !live.seen(&message) {
                        continue;
                    }
                    live.since_check = live.since_check.saturating_add(1);
                    if self.attention || live.since_check >= CHECK_EVERY {
                        match self.attend(message, cx) {
                            Some(message) => return Poll::Ready(Some(Ok(message))),
                            None => continue,
                        }
                    }
                    return Poll::Ready(Some(Ok(SessionMessage {
                        connection: live.id,
                        message,
                    })));
                }
                Poll::Ready(Some(Err(e))) => {
                    // After the server's close frame, what follows (often a connection
                    // dropped without TLS's close_notify) is not the reason.
                    let error = if live.close.is_some() {
                        live.ended()
                    } else {
                        broke(e)
                    };
                    self.lost(error);
                }
                Poll::Ready(None) => {
                    let error = live.ended();
                    self.lost(error);
                }
                Poll::Pending => {
                    let generation = self.ctx.dialer.generation();
                    let mut due = live.poll_timers(&self.ctx.settings, generation, cx, false);
                    if let Some(error) = due.lost.take() {
                        self.lost(error);
                        continue;
                    }
                    self.timers_said(&due);
                    if self.rotation.is_some()
                        && let Some((switch, seen)) = self.poll_rotation(cx)
                    {
                        self.switch(switch, seen);
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

/// The delay before attempt `attempt` (1, 2, ...): drawn uniformly up to a ceiling that
/// starts at `backoff_initial` and doubles up to `backoff_max` (full jitter).
fn backoff(settings: &SessionSettings, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(31);
    let ceiling = settings
        .backoff_initial()
        .saturating_mul(1 << doublings)
        .min(settings.backoff_max());
    ceiling.mul_f64(fastrand::f64())
}

impl Stream for WebSocketSession {
    type Item = Result<SessionMessage, ProxyError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_message(cx)
    }
}

/// Where the messages written since the last flush stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// None waits for a flush.
    Flushed,
    /// Written to the live connection.
    Pending,
    /// One was written to a connection lost before it was flushed.
    Lost,
}

impl WebSocketSession {
    /// Keeps the writer's waker, for the reader to wake when the connection changes (or a
    /// ping took the write wake-up); a new waker (another send) gets a deadline of its own.
    fn keep_sender(&mut self, cx: &Context<'_>) {
        match &self.sender {
            Some(kept) if kept.will_wake(cx.waker()) => {}
            _ => {
                self.sender = Some(cx.waker().clone());
                self.send_deadline = None;
            }
        }
    }

    /// The result of a flush (or close) that `flushed` what the live connection had:
    /// an error when a message went to a connection lost before it was flushed.
    fn written(&mut self, flushed: Result<(), ProxyError>) -> Result<(), ProxyError> {
        let write = std::mem::replace(&mut self.write, Write::Flushed);
        if write == Write::Lost {
            return Err(ProxyError::new(K::NotConnected).detail(
                "the connection was lost before the message was flushed: it may not have been sent",
            ));
        }
        flushed
    }
}

impl Sink<Message> for WebSocketSession {
    type Error = ProxyError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        let this = self.get_mut();
        this.keep_sender(cx);
        match &mut this.state {
            State::Live(live) => {
                let ready = live.ws.poll_ready_unpin(cx).map_err(broke);
                if ready.is_ready() {
                    this.sender = None;
                }
                ready
            }
            State::Ended => {
                this.sender = None;
                Poll::Ready(Err(
                    ProxyError::new(K::NotConnected).detail("the session ended")
                ))
            }
            State::Connecting(_) => {
                let timeout = this.ctx.dialer.timeout();
                let deadline = this
                    .send_deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if deadline.as_mut().poll(cx).is_ready() {
                    this.send_deadline = None;
                    this.sender = None;
                    return Poll::Ready(Err(this.ctx.dialer.attach(
                        ProxyError::new(K::NotConnected).detail(format!(
                            "no connection within the route's timeout ({timeout:?}): the message was not sent"
                        )),
                        None,
                    )));
                }
                // The reader's progress wakes it.
                Poll::Pending
            }
        }
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), ProxyError> {
        let this = self.get_mut();
        match &mut this.state {
            State::Live(live) => {
                live.ws.start_send_unpin(message).map_err(broke)?;
                if this.write == Write::Flushed {
                    this.write = Write::Pending;
                }
                Ok(())
            }
            State::Connecting(_) | State::Ended => Err(ProxyError::new(K::NotConnected)
                .detail("the connection was lost before the message could be sent")),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        let this = self.get_mut();
        this.keep_sender(cx);
        let flushed = match &mut this.state {
            State::Live(live) => ready!(live.ws.poll_flush_unpin(cx)).map_err(broke),
            State::Connecting(_) | State::Ended => Ok(()),
        };
        this.sender = None;
        Poll::Ready(this.written(flushed))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
        let this = self.get_mut();
        this.rotation = None;
        let closed = match &mut this.state {
            State::Live(live) => ready!(live.ws.poll_close_unpin(cx)).map_err(broke),
            State::Connecting(_) | State::Ended => Ok(()),
        };
        this.state = State::Ended;
        Poll::Ready(this.written(closed))
    }
}

impl Dialer {
    /// A resilient WebSocket session on this route (see [`WebSocketSession`]): `request` is
    /// a URL or an `http::Request`, as for [`connect_websocket`](Self::connect_websocket);
    /// the knobs are this route's `websocket_session` settings.
    pub fn websocket_session(&self, request: impl IntoClientRequest) -> WebSocketSessionBuilder {
        WebSocketSessionBuilder::new(self.clone(), client_request(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_s_move_is_due_at_its_drawn_moment_once() {
        let t0 = Instant::now();
        let mut moving = Move {
            generation: 3,
            at: None,
        };
        assert!(!moving.due(3, t0, 0.0), "no reload: no move");
        assert!(!moving.due(4, t0, 0.5), "drawn half the spread away");
        assert_eq!(moving.at, Some(t0 + RELOAD_SPREAD / 2));
        let half = t0 + RELOAD_SPREAD / 2;
        assert!(!moving.due(4, half - Duration::from_millis(1), 0.0));
        assert!(
            !moving.due(5, half - Duration::from_millis(1), 0.0),
            "drawn once"
        );
        assert!(moving.due(5, half, 0.0), "due at its moment");
        assert!(!moving.due(5, half, 0.0), "once");
        // Another reload noticed later: drawn from then.
        assert!(moving.due(6, half, 0.0), "a draw of 0 is due at once");
        assert!(!moving.due(6, half + RELOAD_SPREAD, 1.0));
    }

    #[test]
    fn backoff_draws_below_a_ceiling_that_doubles_up_to_the_max() {
        let settings = SessionSettings::new()
            .with_backoff(Duration::from_millis(100), Duration::from_millis(1000));
        for attempt in 1..=40 {
            let ceiling = Duration::from_millis(100 * (1 << (attempt - 1).min(4)))
                .min(Duration::from_millis(1000));
            for _ in 0..50 {
                assert!(backoff(&settings, attempt) <= ceiling, "attempt {attempt}");
            }
        }
        // Full jitter: the draws spread over the whole range.
        let draws: Vec<Duration> = (0..200).map(|_| backoff(&settings, 5)).collect();
        assert!(draws.iter().any(|d| *d < Duration::from_millis(300)));
        assert!(draws.iter().any(|d| *d > Duration::from_millis(700)));
        assert!(backoff(&settings, u32::MAX) <= Duration::from_millis(1000));
    }

    #[test]
    fn digests_are_a_multiset() {
        let a = digest(&Message::text("tick 1"));
        let b = digest(&Message::text("tick 2"));
        assert_ne!(a, b);
        assert_ne!(
            a,
            digest(&Message::binary(&b"tick 1"[..])),
            "the kind counts"
        );
        let mut seen = Digests::default();
        assert!(!seen.contains(a));
        seen.add(a);
        seen.add(a);
        seen.add(b);
        assert!(seen.contains(a) && seen.contains(b));
        seen.remove(a);
        assert!(seen.contains(a), "added twice, removed once");
        seen.remove(a);
        assert!(!seen.contains(a));
        seen.remove(a);
        assert!(!seen.contains(a) && seen.contains(b));
        // Only text and binary messages are data.
        assert!(is_data(&Message::text("x")) && is_data(&Message::binary(&b"x"[..])));
        assert!(!is_data(&Message::Ping(PING_PAYLOAD.into())));
        assert!(!is_data(&Message::Pong(PING_PAYLOAD.into())));
        assert!(!is_data(&Message::Close(None)));
    }

    #[test]
    fn what_no_retry_fixes_is_permanent_and_the_rest_is_not() {
        for kind in [
            K::Settings,
            K::InvalidExchange,
            K::InvalidTarget,
            K::InvalidRequest,
        ] {
            assert!(is_permanent(&ProxyError::new(kind.clone())), "{kind:?}");
        }
        for kind in [
            K::ProxyUnreachable,
            K::Timeout(crate::error::Phase::Connect),
            K::AuthFailed,
            K::Disconnected,
            K::Hook,
            K::Tls,
            K::WebSocket,
        ] {
            assert!(!is_permanent(&ProxyError::new(kind.clone())), "{kind:?}");
        }
        let refused = |status: u16| {
            let response = http::Response::builder().status(status).body(None).unwrap();
            ProxyError::new(K::WebSocket).source(tungstenite::Error::Http(Box::new(response)))
        };
        assert!(is_permanent(&refused(404)));
        assert!(is_permanent(&refused(401)));
        // Refusals of one address, which another exit or a later try may not meet.
        assert!(!is_permanent(&refused(403)));
        assert!(!is_permanent(&refused(418)));
        assert!(!is_permanent(&refused(429)));
        assert!(!is_permanent(&refused(408)));
        assert!(!is_permanent(&refused(503)));
        // The target's certificate refused: every exit would see the same.
        let certificate = ProxyError::new(K::Tls).source(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        ));
        assert!(is_permanent(&certificate));
        let all = ProxyError::new(K::AllMembersFailed).members(vec![refused(404), refused(401)]);
        assert!(is_permanent(&all));
        let mixed = ProxyError::new(K::AllMembersFailed).members(vec![refused(404), refused(503)]);
        assert!(!is_permanent(&mixed));
        assert!(!is_permanent(&ProxyError::new(K::AllMembersFailed)));
    }

    /// One connection's messages in a rotation's model: ticks numbered from `from` on,
    /// a server ping after every fifth, and for the new connection, an acknowledgement
    /// first (data without a number).
    fn feed(from: u64, ack: bool) -> impl Iterator<Item = Message> {
        let ack = ack.then(|| Message::text("subscribed"));
        ack.into_iter().chain((from..).flat_map(|n| {
            let tick = Message::text(format!("tick {n}"));
            let ping = (n % 5 == 0).then(|| Message::Ping(Vec::new().into()));
            std::iter::once(tick).chain(ping)
        }))
    }

    fn tick(message: &Message) -> Option<u64> {
        message.to_text().ok()?.strip_prefix("tick ")?.parse().ok()
    }

    /// Runs a rotation's overlap the way the session does: the reader has had the ticks
    /// before `old_from`; the old and the new connection deliver in the order `order`
    /// says (`true`: the old one) until the overlap shows, then the new connection goes on
    /// alone through the catch-up. Returns the ticks the reader got, or `None` when
    /// `order` ran out before the overlap showed.
    fn rotate(old_from: u64, new_from: u64, order: &[bool], numbered: bool) -> Option<Vec<u64>> {
        let sequence: Option<SequenceFn> = numbered.then(|| Arc::new(tick) as SequenceFn);
        let sequence = sequence.as_ref();
        let mut old = feed(old_from, false);
        let mut new = feed(new_from, true);
        let mut log = OverlapLog::default();
        let mut reader: Vec<Message> = Vec::new();
        let mut switch = None;
        for &from_old in order {
            if from_old {
                let message = old.next()?;
                reader.push(message.clone());
                switch = log.note_old(sequence, &message);
            } else {
                switch = log.note_new(sequence, new.next()?);
            }
            if switch.is_some() {
                break;
            }
        }
        let Switch { from, mut catchup } = switch?;
        reader.extend(log.delivered(from, sequence));
        for message in new.take(100) {
            if let Some(owed) = &mut catchup {
                let mut done = false;
                let drop = owed.drops(&message, sequence, &mut done);
                if done {
                    catchup = None;
                }
                if drop {
                    continue;
                }
            }
            reader.push(message);
        }
        Some(reader.iter().filter_map(tick).collect())
    }

    proptest::proptest! {
        /// Whatever the two connections' lag, in either direction, and whether the overlap
        /// is found by bytes or by sequence numbers: once it shows, the reader gets every
        /// tick once, in order.
        #[test]
        fn once_the_overlap_shows_no_tick_is_lost_or_repeated(
            new_from in 0u64..40,
            order in proptest::collection::vec(proptest::bool::ANY, 0..120),
            numbered: bool,
        ) {
            if let Some(ticks) = rotate(10, new_from, &order, numbered) {
                let want: Vec<u64> = (10..10 + ticks.len() as u64).collect();
                proptest::prop_assert_eq!(ticks, want);
            }
        }
    }

    #[test]
    fn the_overlap_shows_when_the_new_connection_is_behind_or_ahead() {
        for numbered in [false, true] {
            // Behind: the old connection delivers 10..=15 first (and two pings), then the
            // new one starts again at 12 (it owes 13, 14 and 15, which are dropped).
            let order = [[true; 8].as_slice(), &[false; 4]].concat();
            let ticks = rotate(10, 12, &order, numbered).expect("the overlap shows");
            assert_eq!(ticks, (10..10 + ticks.len() as u64).collect::<Vec<_>>());
            assert!(ticks.len() > 20, "{ticks:?}");
            // Ahead: the new connection delivers 13..=16 before the old one reaches 13
            // (the old one's ping after 10 is a fifth message).
            let order = [[false; 6].as_slice(), &[true; 5]].concat();
            let ticks = rotate(10, 13, &order, numbered).expect("the overlap shows");
            assert_eq!(ticks, (10..10 + ticks.len() as u64).collect::<Vec<_>>());
            // Far apart: the old connection never reaches what the new one holds.
            assert!(
                rotate(
                    10,
                    30,
                    &[[false; 3].as_slice(), &[true; 8]].concat(),
                    numbered
                )
                .is_none()
            );
        }
    }

    #[test]
    fn the_catch_up_lets_through_what_is_not_owed() {
        let ping = Message::Ping(Vec::new().into());
        let mut owed = Catchup::Messages(VecDeque::from([Message::text("a"), Message::text("b")]));
        let mut done = false;
        assert!(
            !owed.drops(&ping, None, &mut done) && !done,
            "control frames pass"
        );
        assert!(owed.drops(&Message::text("a"), None, &mut done) && !done);
        assert!(
            !owed.drops(&Message::text("c"), None, &mut done) && done,
            "past what it owed"
        );
        let mut owed = Catchup::Messages(VecDeque::from([Message::text("a")]));
        let mut done = false;
        assert!(
            owed.drops(&Message::text("a"), None, &mut done) && done,
            "all it owed came"
        );

        let sequence: SequenceFn = Arc::new(tick);
        let mut owed = Catchup::Through(12);
        let mut done = false;
        assert!(!owed.drops(&Message::text("subscribed"), Some(&sequence), &mut done) && !done);
        assert!(owed.drops(&Message::text("tick 12"), Some(&sequence), &mut done) && !done);
        assert!(!owed.drops(&Message::text("tick 13"), Some(&sequence), &mut done) && done);
    }

    #[test]
    fn with_a_sequence_hook_held_control_frames_and_unnumbered_data_are_delivered() {
        let sequence: SequenceFn =
            Arc::new(|m: &Message| tick(m).or(Some(0)).filter(|_| m.is_text()));
        let mut log = OverlapLog::default();
        for message in [
            Message::text("subscribed"),
            Message::Ping(Vec::new().into()),
            Message::text("tick 11"),
            Message::text("tick 12"),
        ] {
            let _ = log.note_new(Some(&sequence), message);
        }
        assert!(
            log.note_old(Some(&sequence), &Message::text("tick 11"))
                .is_some()
        );
        let delivered: Vec<Message> = log.delivered(0, Some(&sequence)).collect();
        assert_eq!(
            delivered,
            [Message::Ping(Vec::new().into()), Message::text("tick 12")],
            "the acknowledgement numbered 0 is the old connection's past; the ping is not data"
        );
    }

    #[test]
    fn the_old_connections_recent_messages_are_bounded() {
        let mut log = OverlapLog::default();
        for n in 0..RECENT_OLD + 10 {
            assert!(
                log.note_old(None, &Message::text(format!("tick {n}")))
                    .is_none()
            );
        }
        assert_eq!(log.recent.len(), RECENT_OLD);
        assert!(!log.recent_seen.contains(digest(&Message::text("tick 9"))));
        // The oldest kept one is still found, so the overlap shows from it.
        let switch = log.note_new(None, Message::text("tick 10")).expect("kept");
        assert_eq!(switch.from, 1);
        assert!(
            matches!(switch.catchup, Some(Catchup::Messages(owed)) if owed.len() == RECENT_OLD - 1)
        );
    }
}
