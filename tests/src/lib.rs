//! Integration tests of proxy-runtime that span crates and documents: see `tests/`.
//! `run` beside this crate is the project's test command.
