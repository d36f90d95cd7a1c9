//! The rules that both halves of proxy-runtime must apply identically: what a name made of
//! words may look like (exchange ids, settings field names), and which valid name a
//! misspelled one most likely meant.
//!
//! `proxy-derive` checks names at compile time and `proxy-runtime` checks them at load
//! time; a name one accepts and the other rejects would be a deploy-time surprise, so the
//! rule is written once, here. This crate has no dependencies and no I/O. It is an
//! implementation detail of proxy-runtime: depend on `proxy-runtime`, not on it.

#![forbid(unsafe_code)]

/// The rule, as messages state it.
pub const WORDS_RULE: &str = "lowercase ASCII letters and digits in words joined by single `_`";

/// Why a text is not lowercase words joined by single underscores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flaw {
    /// The text is empty.
    Empty,
    /// The text would be valid in lower case (it has ASCII capitals and nothing else wrong).
    Uppercase,
    /// The text would be valid with `_` for every `-`.
    Dash,
    /// Two or more `_` in a row (they separate levels in variable names).
    DoubleUnderscore,
    /// A `_` at the start or the end.
    EdgeUnderscore,
    /// A character other than an ASCII letter, digit or `_`.
    Character,
}

impl Flaw {
    /// A short reason, to follow the name of what was checked ("an exchange id ...").
    pub fn reason(self) -> &'static str {
        match self {
            Flaw::Empty => "must not be empty",
            Flaw::Uppercase => "must be written in lower case",
            Flaw::Dash => "must not contain `-` (write `_`)",
            Flaw::DoubleUnderscore => {
                "must not contain `__` (it separates levels in variable names)"
            }
            Flaw::EdgeUnderscore => "must not start or end with `_`",
            Flaw::Character => {
                "may contain only ASCII letters, digits and `_` (no `-`, spaces or other characters)"
            }
        }
    }
}

/// Checks that `text` is lowercase ASCII letters and digits in words joined by single
/// underscores (`binance`, `binance_futures`, `okx2`, `1inch`), the shape that an
/// environment variable name split on `__` and matched case-insensitively can express.
///
/// When several things are wrong, the flaw reported is the one whose fix is most useful:
/// [`Flaw::Uppercase`] and [`Flaw::Dash`] only when fixing them would make the text valid.
pub fn check_words(text: &str) -> Result<(), Flaw> {
    if text.is_empty() {
        return Err(Flaw::Empty);
    }
    if is_words(text) {
        return Ok(());
    }
    let lower = text.to_ascii_lowercase();
    if is_words(&lower) {
        return Err(Flaw::Uppercase);
    }
    if text.contains('-') && is_words(&lower.replace('-', "_")) {
        return Err(Flaw::Dash);
    }
    if !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(Flaw::Character);
    }
    if text.starts_with('_') || text.ends_with('_') {
        return Err(Flaw::EdgeUnderscore);
    }
    Err(Flaw::DoubleUnderscore)
}

fn is_words(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.starts_with('_')
        && !s.ends_with('_')
        && !s.contains("__")
}

/// The candidate closest to `given` (compared in ASCII lower case), if it is close enough
/// to be what was meant: within two edits, or a third of the length for long names, or a
/// prefix either way.
///
/// ```
/// let fields = ["url", "timeout_seconds"];
/// assert_eq!(proxy_rules::closest("timeout", fields), Some("timeout_seconds"));
/// assert_eq!(proxy_rules::closest("URI", fields), Some("url"));
/// assert_eq!(proxy_rules::closest("zzzzzz", fields), None);
/// ```
pub fn closest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let given = given.to_ascii_lowercase();
    if given.is_empty() {
        return None;
    }
    candidates
        .into_iter()
        .map(|c| (edit_distance(&given, c), c))
        .filter(|(d, c)| {
            *d <= 2.max(given.len() / 3) || c.starts_with(given.as_str()) || given.starts_with(c)
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over bytes: insertions, deletions and substitutions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = Vec::with_capacity(b.len() + 1);
    for (i, ca) in a.bytes().enumerate() {
        cur.clear();
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur.push(substitute.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_words() {
        for ok in ["binance", "binance_futures", "okx2", "1inch", "a_b_c", "x"] {
            assert_eq!(check_words(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn each_flaw() {
        let cases = [
            ("", Flaw::Empty),
            ("Binance", Flaw::Uppercase),
            ("BINANCE_FUTURES", Flaw::Uppercase),
            ("binance-futures", Flaw::Dash),
            ("Binance-Futures", Flaw::Dash),
            ("a__b", Flaw::DoubleUnderscore),
            ("_a", Flaw::EdgeUnderscore),
            ("a_", Flaw::EdgeUnderscore),
            ("bin ance", Flaw::Character),
            ("bìnance", Flaw::Character),
            ("a.b", Flaw::Character),
            ("-a", Flaw::Character),
        ];
        for (text, flaw) in cases {
            assert_eq!(check_words(text), Err(flaw), "{text:?}");
            assert!(!flaw.reason().is_empty());
        }
    }

    #[test]
    fn suggestions() {
        let names = ["enabled", "default", "exchanges"];
        assert_eq!(closest("enable", names), Some("enabled"));
        assert_eq!(closest("exchange", names), Some("exchanges"));
        assert_eq!(closest("defualt", names), Some("default"));
        assert_eq!(closest("DEFAULT", names), Some("default"));
        assert_eq!(closest("zzzzzzzz", names), None);
        assert_eq!(closest("", names), None);
        assert_eq!(closest("exchnage", ["exchange"]), Some("exchange"));
        assert_eq!(closest("timeout", ["exchange"]), None);
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
        assert_eq!(edit_distance("ab", "ba"), 2);
    }
}
