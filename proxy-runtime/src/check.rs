//! The route report of `proxy-check`.
