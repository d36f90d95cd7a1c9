//! One member of a route (a proxy, or `direct://`, from a source address or not) and its
//! metric handles, made once per member at its first connection attempt, with the
//! recorder in force then.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::{Counter, Histogram, Label};

use crate::error::{Phase, ProxyErrorKind};
use crate::model::key::{ConnectionKind, RouteKey};
use crate::model::member::PoolMember;
use crate::model::proxy_url::ProxyUrl;
use crate::transport::tls::ExitTls;

/// One member of a route.
pub(crate) struct Member {
    /// Where it connects through (a proxy, or `direct://`: straight to the target), and
    /// how its sockets leave this host. Shared with the tags of its connections, which
    /// find the member by it in the pool in force after a reload.
    pub(crate) config: Arc<PoolMember>,
    /// The member as errors, logs and metrics show it: the redacted URL (`direct` for
    /// `direct://`), its source address or interface, and `#N` (its place) when another
    /// member of the route shows the same (they differ by their CONNECT headers).
    pub(crate) shown: String,
    /// Its TLS, with a session cache of its own: a ticket issued through one exit is
    /// never presented through another, where it would link the two.
    pub(crate) tls: ExitTls,
    /// Its labels: the route's, and `member`.
    labels: Vec<Label>,
    meters: OnceLock<Meters>,
}

/// A member's metric handles.
struct Meters {
    ok: Counter,
    /// One per label of [`ProxyErrorKind::METRIC_LABELS`], in its order.
    failed: Vec<Counter>,
    /// One per phase of [`Phase::CONNECTION`], in its order.
    phases: Vec<Histogram>,
}

impl Member {
    /// The member `config` of `key`'s route for `kind`, shown as `shown` (see
    /// [`shown`]), with its TLS.
    pub(crate) fn new(
        config: PoolMember,
        shown: String,
        key: &RouteKey,
        kind: ConnectionKind,
        tls: ExitTls,
    ) -> Self {
        let mut labels = route_labels(key, kind);
        labels.push(Label::new("member", shown.clone()));
        Self {
            config: Arc::new(config),
            shown,
            tls,
            labels,
            meters: OnceLock::new(),
        }
    }

    /// Makes its metric handles now, from the recorder in force, unless they are made.
    pub(crate) fn meter(&self) {
        self.meters();
    }

    /// The metric handles, made on first use.
    fn meters(&self) -> &Meters {
        self.meters.get_or_init(|| {
            let labels = |extra: &[(&'static str, &'static str)]| {
                let mut labels = self.labels.clone();
                labels.extend(extra.iter().map(|(k, v)| Label::new(*k, *v)));
                labels
            };
            Meters {
                ok: metrics::counter!("proxy_connect_attempts_total", labels(&[("outcome", "ok")])),
                failed: ProxyErrorKind::METRIC_LABELS
                    .iter()
                    .map(|kind| {
                        let labels = labels(&[("outcome", "error"), ("error_kind", kind)]);
                        metrics::counter!("proxy_connect_attempts_total", labels)
                    })
                    .collect(),
                phases: Phase::CONNECTION
                    .iter()
                    .map(|phase| {
                        let labels = labels(&[("phase", phase.metric_label())]);
                        metrics::histogram!("proxy_connect_phase_seconds", labels)
                    })
                    .collect(),
            }
        })
    }

    /// Counts a connection made through it.
    pub(crate) fn count_success(&self) {
        self.meters().ok.increment(1);
    }

    /// Counts a connection attempt through it that failed with `kind`.
    pub(crate) fn count_failure(&self, kind: &ProxyErrorKind) {
        let label = kind.metric_label();
        let i = ProxyErrorKind::METRIC_LABELS
            .iter()
            .position(|l| *l == label);
        if let Some(counter) = i.and_then(|i| self.meters().failed.get(i)) {
            counter.increment(1);
        }
    }

    /// Times phase `phase` of a connection through it; a phase that is not one of
    /// establishing a connection ([`Phase::CONNECTION`]) is not recorded.
    pub(crate) fn time_phase(&self, phase: Phase, took: Duration) {
        let i = Phase::CONNECTION.iter().position(|p| *p == phase);
        if let Some(histogram) = i.and_then(|i| self.meters().phases.get(i)) {
            histogram.record(took.as_secs_f64());
        }
    }
}

/// How each of `members` is shown: its redacted URL (`direct` for `direct://`) with
/// ` from ADDRESS` or ` on INTERFACE`, and ` #N` (its place, from 1) when another member
/// shows the same, so that every member has a label of its own.
pub(crate) fn shown(members: &[PoolMember]) -> Vec<String> {
    let plain: Vec<String> = members
        .iter()
        .map(|member| {
            let mut shown = match (member.url().endpoint(), member.source()) {
                (None, None) => "direct".to_owned(),
                (None, Some(source)) => ProxyUrl::DirectFrom(source).to_string(),
                (Some(endpoint), None) => endpoint.to_string(),
                (Some(endpoint), Some(source)) => format!("{endpoint} from {source}"),
            };
            if let Some(interface) = member.interface() {
                shown.push_str(&format!(" on {interface}"));
            }
            shown
        })
        .collect();
    plain
        .iter()
        .enumerate()
        .map(|(i, shown)| {
            if plain.iter().filter(|other| *other == shown).count() > 1 {
                format!("{shown} #{}", i + 1)
            } else {
                shown.clone()
            }
        })
        .collect()
}

/// The labels every metric of `key`'s route for `kind` carries: `exchange` (`*` for the
/// default) and `kind`.
pub(crate) fn route_labels(key: &RouteKey, kind: ConnectionKind) -> Vec<Label> {
    vec![
        Label::new("exchange", key.as_str().to_owned()),
        Label::new("kind", kind.as_str()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(url: &str) -> PoolMember {
        PoolMember::new(url.parse().unwrap())
    }

    #[test]
    fn each_member_is_shown_by_its_exit_and_told_apart_by_its_place_when_alike() {
        let with_header = |value: &str| {
            member("http://u:pw@gw.example:8000")
                .with_connect_header("x-session", value)
                .unwrap()
        };
        let members = [
            member("direct://"),
            member("direct://127.0.0.2"),
            member("direct://")
                .with_source("::1".parse().unwrap())
                .unwrap(),
            member("socks5h://p:1080")
                .with_source("10.0.0.1".parse().unwrap())
                .unwrap(),
            member("socks5h://p:1080").with_interface("eth1").unwrap(),
            with_header("one"),
            with_header("two"),
        ];
        assert_eq!(
            shown(&members),
            [
                "direct",
                "direct://127.0.0.2",
                "direct://[::1]",
                "socks5h://p:1080 from 10.0.0.1",
                "socks5h://p:1080 on eth1",
                "http://u:***@gw.example:8000 #6",
                "http://u:***@gw.example:8000 #7",
            ]
        );
    }
}
