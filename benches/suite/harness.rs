//! Rounds, statistics and reports: each scenario runs this project and its peer in
//! alternation (the order flips every round, so that neither always runs on a warmer or
//! noisier machine), and the report gives the median of the rounds, their spread and the
//! ratio against the peer.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What one round of a side measured.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Figure {
    /// Operations per second: more is better.
    Rate(f64),
    /// The time of one operation (the median of the round's samples): less is better.
    Time(Duration),
    /// Bytes: less is better.
    Bytes(f64),
}

impl Figure {
    fn value(self) -> f64 {
        match self {
            Figure::Rate(r) => r,
            Figure::Time(t) => t.as_secs_f64(),
            Figure::Bytes(b) => b,
        }
    }

    fn more_is_better(self) -> bool {
        matches!(self, Figure::Rate(_))
    }

    fn unit(self) -> &'static str {
        match self {
            Figure::Rate(_) => "/s",
            Figure::Time(_) => "s",
            Figure::Bytes(_) => "B",
        }
    }

    fn with_value(self, value: f64) -> Figure {
        match self {
            Figure::Rate(_) => Figure::Rate(value),
            Figure::Time(_) => Figure::Time(Duration::from_secs_f64(value.max(0.0))),
            Figure::Bytes(_) => Figure::Bytes(value),
        }
    }

    /// The figure with its unit, for people.
    pub(crate) fn show(self) -> String {
        match self {
            Figure::Rate(r) if r >= 1e6 => format!("{:.2} M/s", r / 1e6),
            Figure::Rate(r) => format!("{} /s", thousands(r)),
            Figure::Time(t) if t >= Duration::from_millis(1) => {
                format!("{:.2} ms", t.as_secs_f64() * 1e3)
            }
            Figure::Time(t) if t >= Duration::from_micros(1) => {
                format!("{:.1} us", t.as_secs_f64() * 1e6)
            }
            Figure::Time(t) => format!("{:.1} ns", t.as_secs_f64() * 1e9),
            Figure::Bytes(b) if b >= 1024.0 * 1024.0 => format!("{:.1} MiB", b / 1024.0 / 1024.0),
            Figure::Bytes(b) => format!("{:.1} KiB", b / 1024.0),
        }
    }
}

fn thousands(r: f64) -> String {
    let n = r.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One side of a scenario: runs one round and says what it measured.
pub(crate) type Side<'a> = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = Figure> + 'a>> + 'a>;

/// The median of a side's rounds, and their spread (max - min, relative to the median).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Summary {
    pub(crate) median: Figure,
    pub(crate) spread: f64,
}

fn summarize(rounds: &[Figure]) -> Summary {
    let mut values: Vec<f64> = rounds.iter().map(|f| f.value()).collect();
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    let spread = if median > 0.0 {
        (values[values.len() - 1] - values[0]) / median
    } else {
        0.0
    };
    Summary {
        median: rounds[0].with_value(median),
        spread,
    }
}

/// A scenario's result.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) scenario: String,
    pub(crate) ours: Summary,
    /// The peer's name and result; `None` for a figure with a fixed reference only.
    pub(crate) peer: Option<(String, Summary)>,
    /// A fixed reference (a goal, or a figure measured elsewhere), with its name.
    pub(crate) reference: Option<(String, Figure)>,
    /// Extra figures (a p90, for instance), shown after the row.
    pub(crate) notes: Vec<String>,
}

impl Row {
    /// Ours against the peer, as "how many times as good": above 1 is better than the
    /// peer, for rates and times alike.
    pub(crate) fn ratio(&self) -> Option<f64> {
        let (_, peer) = self.peer.as_ref()?;
        let (o, p) = (self.ours.median.value(), peer.median.value());
        if o == 0.0 || p == 0.0 {
            return None;
        }
        Some(if self.ours.median.more_is_better() {
            o / p
        } else {
            p / o
        })
    }
}

/// Runs `ours` and `peer` for `rounds` rounds in alternation.
pub(crate) async fn compare(
    scenario: &str,
    rounds: usize,
    mut ours: Side<'_>,
    peer_name: &str,
    mut peer: Side<'_>,
) -> Row {
    let mut mine = Vec::new();
    let mut theirs = Vec::new();
    // One warm-up round each, not counted.
    ours().await;
    peer().await;
    for round in 0..rounds {
        if round % 2 == 0 {
            mine.push(ours().await);
            theirs.push(peer().await);
        } else {
            theirs.push(peer().await);
            mine.push(ours().await);
        }
    }
    let row = Row {
        scenario: scenario.to_owned(),
        ours: summarize(&mine),
        peer: Some((peer_name.to_owned(), summarize(&theirs))),
        reference: None,
        notes: Vec::new(),
    };
    eprintln!("  {}", line(&row));
    row
}

/// Runs `ours` alone for `rounds` rounds, against a fixed reference.
pub(crate) async fn against(
    scenario: &str,
    rounds: usize,
    mut ours: Side<'_>,
    reference: (&str, Figure),
) -> Row {
    ours().await;
    let mut mine = Vec::new();
    for _ in 0..rounds {
        mine.push(ours().await);
    }
    let row = Row {
        scenario: scenario.to_owned(),
        ours: summarize(&mine),
        peer: None,
        reference: Some((reference.0.to_owned(), reference.1)),
        notes: Vec::new(),
    };
    eprintln!("  {}", line(&row));
    row
}

fn line(row: &Row) -> String {
    let mut out = format!("{}: {}", row.scenario, row.ours.median.show());
    if let Some((name, peer)) = &row.peer {
        let _ = write!(out, " vs {name} {}", peer.median.show());
    }
    if let Some(ratio) = row.ratio() {
        let _ = write!(out, " ({ratio:.2}x)");
    }
    out
}

/// The report as a Markdown table.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | this project | peer, same run | ratio (>1: better) | spread (ours; peer) |\n|---|---|---|---|---|\n",
    );
    for row in rows {
        let peer = match (&row.peer, &row.reference) {
            (Some((name, s)), _) => format!("{name} {}", s.median.show()),
            (None, Some((name, f))) => format!("{name}: {}", f.show()),
            (None, None) => String::new(),
        };
        let ratio = row.ratio().map_or_else(String::new, |r| format!("{r:.2}"));
        let spread = match &row.peer {
            Some((_, s)) => format!("{:.0}%; {:.0}%", row.ours.spread * 100.0, s.spread * 100.0),
            None => format!("{:.0}%", row.ours.spread * 100.0),
        };
        let mut ours = row.ours.median.show();
        for note in &row.notes {
            let _ = write!(ours, " ({note})");
        }
        let _ = writeln!(
            out,
            "| {} | {ours} | {peer} | {ratio} | {spread} |",
            row.scenario
        );
    }
    out
}

/// The report as JSON, for tools.
pub(crate) fn json(rows: &[Row]) -> serde_json::Value {
    let side = |s: &Summary| {
        serde_json::json!({
            "median": s.median.value(),
            "unit": s.median.unit(),
            "spread": s.spread,
        })
    };
    serde_json::Value::Array(
        rows.iter()
            .map(|row| {
                serde_json::json!({
                    "scenario": row.scenario,
                    "ours": side(&row.ours),
                    "peer": row.peer.as_ref().map(|(name, s)| {
                        let mut v = side(s);
                        v["name"] = serde_json::Value::from(name.as_str());
                        v
                    }),
                    "reference": row.reference.as_ref().map(|(name, f)| serde_json::json!({
                        "name": name, "value": f.value(), "unit": f.unit(),
                    })),
                    "ratio": row.ratio(),
                    "notes": row.notes,
                })
            })
            .collect(),
    )
}

/// The median and the 90th percentile of `samples` (sorted here).
pub(crate) fn median_p90(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort_unstable();
    let n = samples.len();
    (samples[n / 2], samples[(n * 9 / 10).min(n - 1)])
}
