//! The shared store as `proxy-check --shared` (and `--probe`) shows it: whether it
//! answers and how fast, and what it holds for each exit of every exchange reported:
//! the weight held of the exit's budget (leased or spent in the window), how long it
//! still cools, and the places of its connection budget taken.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::Report;
use crate::model::key::{ConnectionKind, RouteKey};
use crate::model::proxy_settings::ProxySettings;
use crate::route::dialer::exit_id;
use crate::route::shared::Store;

/// What the store holds for one exit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExitState {
    /// The exchange, or the default.
    #[serde(serialize_with = "super::render::route_key")]
    pub exchange: RouteKey,
    /// The exit as the store names it: the proxy's host and port, a source address, a
    /// member's `exit`, or `direct`.
    pub exit: String,
    /// The exit's weight budget, when the exchange has one.
    pub weight_budget: Option<u32>,
    /// The weight held in the window (leased and spent), when the store answered.
    pub weight_held: Option<u32>,
    /// How long the exit still cools after a 429 or 418, in ms.
    pub cooling_ms: Option<u64>,
    /// The places of its connection budget taken in the window, when the exchange's
    /// WebSocket sessions have a budget and the store answered.
    pub connect_places: Option<u32>,
}

/// The store's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedState {
    /// The store's URL, its password shown as `***`.
    pub store: String,
    /// How long the store took to answer, in ms; or why it did not.
    #[serde(serialize_with = "answered")]
    pub answered: Result<u64, String>,
    /// Every exit of the exchanges reported, HTTP routes' first.
    pub exits: Vec<ExitState>,
}

impl SharedState {
    /// Whether the store answered.
    pub fn failed(&self) -> bool {
        self.answered.is_err()
    }
}

fn answered<S: serde::Serializer>(value: &Result<u64, String>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Shown<'a> {
        ok: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        ms: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a str>,
    }
    Shown {
        ok: value.is_ok(),
        ms: value.as_ref().ok().copied(),
        error: value.as_ref().err().map(String::as_str),
    }
    .serialize(s)
}

/// Reads the store the settings name for every exit of the exchanges in `report`; `None`
/// when they name none (or this build has no Redis client).
pub async fn shared_state(settings: &ProxySettings, report: &Report) -> Option<SharedState> {
    let store = Store::new(settings.shared())?;
    let started = Instant::now();
    let answered = store
        .ping()
        .await
        .map(|()| u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX))
        .map_err(|e| e.to_string());
    let mut exits = Vec::new();
    for routes in &report.routes {
        let key = &routes.exchange;
        let exchange = key.exchange().map_or("default", |id| id.as_str());
        let weight_budget = settings.budget_for(key).weight_budget().map(|(w, _)| w);
        let connects = settings.session_for(key).connect_budget().is_some();
        let mut seen = Vec::new();
        for kind in ConnectionKind::ALL {
            let ids: Vec<String> = match settings.route_for(key, kind) {
                // `direct://` alone is a member named `direct`, as its dialer names it.
                Some((_, config)) => config.members().iter().map(exit_id).collect(),
                None if settings.system_proxies().is_some() => vec!["system".to_owned()],
                None => vec!["direct".to_owned()],
            };
            for id in ids {
                if seen.contains(&id) {
                    continue;
                }
                seen.push(id.clone());
                let keys = store.keys(exchange, &id);
                let read = match &answered {
                    Ok(_) => store.exit_state(&keys).await.ok(),
                    Err(_) => None,
                };
                exits.push(ExitState {
                    exchange: key.clone(),
                    exit: id,
                    weight_budget,
                    weight_held: read.map(|r| r.0),
                    cooling_ms: read
                        .and_then(|r| r.1)
                        .map(|d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                    connect_places: read.filter(|_| connects).map(|r| r.2),
                });
            }
        }
    }
    Some(SharedState {
        store: settings
            .shared()
            .url()
            .map(ToString::to_string)
            .unwrap_or_default(),
        answered,
        exits,
    })
}
