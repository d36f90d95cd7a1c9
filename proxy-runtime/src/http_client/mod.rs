//! The HTTP client of one exchange: hyper 1 with hyper-util's pooled client (HTTP/1.1 and,
//! by ALPN, HTTP/2), connecting through the route's dialer, with reqwest's shapes.
//!
//! [`client`] sends ([`HttpClient`](client::HttpClient)), [`builder`] builds
//! ([`RequestBuilder`](builder::RequestBuilder)) a [`Request`](request::Request), [`response`] reads
//! ([`Response`](response::Response)), [`body`] bounds and decodes bodies, and
//! [`connector`] is the route as hyper-util's connector.

pub(crate) mod body;
pub(crate) mod builder;
pub(crate) mod client;
pub(crate) mod connector;
pub(crate) mod request;
pub(crate) mod response;
