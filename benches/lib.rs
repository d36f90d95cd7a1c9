//! Benchmarks of proxy-runtime (`cargo bench -p proxy-benches`): `load_settings.rs`
//! (loading the settings of 100 exchanges) and `build_client.rs` (building a `#[proxied]`
//! client against a struct built by hand). Each bench is its own program with its own
//! harness; this library holds nothing yet.
