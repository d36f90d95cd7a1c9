//! The rule of rate limits and bans: a member answered 429 (rate limited) or 418 (banned)
//! cools for the answer's `Retry-After` (seconds, or an HTTP date), a minute without one,
//! at most a day. The pool applies it ([`super::pool::MemberTag::answered`]); nothing is
//! retried, and the answer itself goes to the caller unchanged.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

/// How long a member answered with 429 or 418 cools without `Retry-After`.
pub(crate) const COOL_DEFAULT: Duration = Duration::from_secs(60);

/// The longest a member cools, whatever `Retry-After` says.
pub(crate) const COOL_MAX: Duration = Duration::from_secs(24 * 3600);

/// How long the member that answered `status` with `headers` cools: `None` for a status
/// that is neither 429 nor 418.
pub(crate) fn cooling(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::IM_A_TEAPOT {
        return None;
    }
    let wait = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(retry_after)
        .unwrap_or(COOL_DEFAULT);
    Some(wait)
}

/// `Retry-After` as a wait: delay-seconds, or an HTTP date (a date past is no wait), at
/// most [`COOL_MAX`]; `None` when it is neither.
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(COOL_MAX));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .min(COOL_MAX),
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use http::{HeaderMap, HeaderValue, StatusCode};

    use super::{COOL_DEFAULT, cooling, retry_after};

    #[test]
    fn only_429_and_418_cool_for_retry_after_or_a_minute() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("retry-after", HeaderValue::from_str(value).unwrap());
            headers
        };
        let none = HeaderMap::new();
        assert_eq!(
            cooling(StatusCode::TOO_MANY_REQUESTS, &none),
            Some(COOL_DEFAULT)
        );
        assert_eq!(COOL_DEFAULT, Duration::from_secs(60));
        assert_eq!(
            cooling(StatusCode::IM_A_TEAPOT, &with("7")),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            cooling(StatusCode::TOO_MANY_REQUESTS, &with("soon")),
            Some(COOL_DEFAULT),
            "an unreadable Retry-After is none"
        );
        for status in [200, 403, 419, 420, 428, 430, 451, 503] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(cooling(status, &with("7")), None, "{status}");
        }
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date_bounded() {
        assert_eq!(retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("0"), Some(Duration::ZERO));
        // At most a day.
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(retry_after("86400"), Some(day));
        assert_eq!(retry_after("86401"), Some(day));
        assert_eq!(retry_after("99999999999"), Some(day));
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(90));
        let wait = retry_after(&soon).unwrap();
        assert!(
            wait > Duration::from_secs(85) && wait <= Duration::from_secs(90),
            "{wait:?}"
        );
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(90));
        assert_eq!(retry_after(&past), Some(Duration::ZERO));
        let far = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(90 * 24 * 3600));
        assert_eq!(retry_after(&far), Some(day));
        for bad in ["", "-1", "1.5", "soon", "Wed, 99 Foo 2026 00:00:00 GMT"] {
            assert_eq!(retry_after(bad), None, "{bad:?}");
        }
    }
}
