//! Redaction of secrets in text that is shown to people.
//!
//! Owns the one rule for hiding a proxy password in a URL-like value, whether the value is
//! valid or not, so that error messages can show what was given without what is secret.
//! It must never be bypassed by code that prints user-provided values. Only [`Password`]
//! is public: the crate's own types print themselves redacted, so users need no
//! redaction function of their own.

use std::borrow::Cow;
use std::fmt;

/// What a password is replaced with wherever it would be shown.
pub(crate) const MASK: &str = "***";

/// A password: its `Debug` and `Display` print `***`, so no derive can leak it.
///
/// The value is reachable only through [`Password::expose`], which proxy handshakes call.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a (percent-decoded) password.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The password itself, for the proxy handshake only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// Hides the password of one URL-like value, valid or not.
///
/// The value is taken whole: everything between the first `:` after the scheme's `://`
/// (or the start, when there is no scheme) and the *last* `@` is the password. That choice
/// over-masks rather than under-masks malformed input such as an unencoded `@`, `/` or
/// space inside a password (`ftp://u:p@ss@h` is shown `ftp://u:***@h`).
pub(crate) fn redact_value(value: &str) -> Cow<'_, str> {
    // Only a real scheme (letters, digits, `+`, `-`, `.`) ends at `://`; anything else
    // before it may be credentials.
    let start = match value.find("://") {
        Some(i) if is_scheme(&value[..i]) => i + 3,
        _ => 0,
    };
    let rest = &value[start..];
    let (mask_from, mask_to) = match rest.rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => (colon + 1, at),
            None => return Cow::Borrowed(value),
        },
        None => {
            // No `@`: `host:port` is shown, but anything after a `:` that is not a port
            // may be a password whose `@host` went missing.
            // An IPv6 host's colons end at its `]` (which is no colon itself).
            let host_end = if rest.starts_with('[') {
                rest.find(']').unwrap_or(rest.len())
            } else {
                0
            };
            let Some(colon) = rest[host_end..].find(':').map(|c| c + host_end) else {
                return Cow::Borrowed(value);
            };
            let after = &rest[colon + 1..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let tail = &after[digits..];
            if digits > 0 && (tail.is_empty() || tail.starts_with(['/', '?', '#'])) {
                return Cow::Borrowed(value);
            }
            (colon + 1, rest.len())
        }
    };
    let mut out = String::with_capacity(value.len());
    out.push_str(&value[..start + mask_from]);
    out.push_str(MASK);
    out.push_str(&rest[mask_to..]);
    Cow::Owned(out)
}

fn is_scheme(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Hides passwords in free text (for example a parser's message that quotes its input):
/// every whitespace-separated word that contains `@` goes through [`redact_value`], with
/// surrounding quotes kept.
pub(crate) fn redact_text(text: &str) -> Cow<'_, str> {
    if !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut word_start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        if c.is_whitespace() {
            if let Some(s) = word_start.take() {
                out.push_str(&redact_word(&text[s..i]));
            }
            if i < text.len() {
                out.push(c);
            }
        } else if word_start.is_none() {
            word_start = Some(i);
        }
    }
    Cow::Owned(out)
}

fn redact_word(word: &str) -> Cow<'_, str> {
    if !word.contains('@') {
        return Cow::Borrowed(word);
    }
    let quotes: &[char] = &['"', '\'', '`', '(', ')', ',', '{', '}', '[', ']'];
    let inner = word.trim_matches(quotes);
    let lead = word.len() - word.trim_start_matches(quotes).len();
    let mut out = String::with_capacity(word.len());
    out.push_str(&word[..lead]);
    out.push_str(&redact_value(inner));
    out.push_str(&word[lead + inner.len()..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_redaction_covers_malformed_urls() {
        assert_eq!(
            redact_value("socks5://u:s3cret@h:1080"),
            "socks5://u:***@h:1080"
        );
        assert_eq!(redact_value("ftp://u:p@ss@h"), "ftp://u:***@h");
        assert_eq!(redact_value("socks5://h:1080"), "socks5://h:1080");
        assert_eq!(redact_value("socks5://u:pa ss@h:1"), "socks5://u:***@h:1");
        assert_eq!(redact_value("socks5://u:pa/ss@h:1"), "socks5://u:***@h:1");
        assert_eq!(redact_value("u:secret@h:1"), "u:***@h:1");
        assert_eq!(redact_value("socks5://user@h:1"), "socks5://user@h:1");
        assert_eq!(redact_value("direct://"), "direct://");
        // No `@`: what follows a `:` is masked unless it is a port.
        assert_eq!(
            redact_value("socks5://trader:hunter2"),
            "socks5://trader:***"
        );
        assert_eq!(
            redact_value("socks5://trader:hunter2%40proxy.example.com:1080"),
            "socks5://trader:***"
        );
        assert_eq!(redact_value("socks5://p:1080"), "socks5://p:1080");
        assert_eq!(redact_value("socks5://p:1080/"), "socks5://p:1080/");
        assert_eq!(redact_value("socks5://[::1]:1080"), "socks5://[::1]:1080");
        // The colons inside brackets are the address's, even the one before `]`.
        assert_eq!(redact_value("socks5://[::]:1080"), "socks5://[::]:1080");
        assert_eq!(
            redact_value("http://[2001:db8::]:3128"),
            "http://[2001:db8::]:3128"
        );
        assert_eq!(redact_value("http://[::1]:hunter2"), "http://[::1]:***");
        assert_eq!(redact_value("http://[::1"), "http://[::1");
        // A port is digits, then the end or a path, query or fragment.
        assert_eq!(redact_value("socks5://p:1080?x"), "socks5://p:1080?x");
        assert_eq!(redact_value("socks5://p:1080#x"), "socks5://p:1080#x");
        assert_eq!(redact_value("socks5://p:1080x"), "socks5://p:***");
        assert_eq!(redact_value("socks5://p:"), "socks5://p:***");
        assert_eq!(redact_value("socks5://p"), "socks5://p");
        // A "scheme" that is not one may hold credentials.
        assert_eq!(redact_value("trader:hun://ter2@h:1"), "trader:***@h:1");
        assert_eq!(
            redact_value("trader:hunter2@h:1/x://"),
            "trader:***@h:1/x://"
        );
    }

    #[test]
    fn text_redaction_keeps_quotes_and_spacing() {
        assert_eq!(
            redact_text("bad value \"socks5://u:canary@h:1\" here"),
            "bad value \"socks5://u:***@h:1\" here"
        );
        assert_eq!(redact_text("no secrets  here"), "no secrets  here");
        assert_eq!(
            redact_text("at socks5://u:canary@h:1, or (\"http://u:c2@h:2\")"),
            "at socks5://u:***@h:1, or (\"http://u:***@h:2\")"
        );
    }

    #[test]
    fn password_never_prints() {
        let p = Password::new("canary");
        assert_eq!(format!("{p} {p:?} {p:#?}"), "*** *** ***");
        assert_eq!(p.expose(), "canary");
    }
}
