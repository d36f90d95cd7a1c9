//! Compile-fail and compile-pass tests of the proxy-derive macros, run with trybuild.
//!
//! The cases live in `tests/ui` (each `.rs` with the `.stderr` the compiler must print)
//! and `tests/pass`. The snapshots depend on the pinned toolchain; re-bless them with
//! `TRYBUILD=overwrite cargo test -p proxy-trybuild` and read the diff before committing.
