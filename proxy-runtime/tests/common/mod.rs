//! Helpers shared by the settings tests. Variables are always injected; no test reads or
//! writes the process environment.

#![allow(dead_code)]

use proxy_runtime::{LoadError, ProxySettings};

pub(crate) fn load_env(vars: &[(&str, &str)]) -> Result<ProxySettings, LoadError> {
    ProxySettings::loader()
        .env_vars(vars.iter().copied())
        .load()
}

pub(crate) fn load_yaml(yaml: &str, vars: &[(&str, &str)]) -> Result<ProxySettings, LoadError> {
    ProxySettings::loader()
        .yaml_str("config.yaml", yaml)
        .env_vars(vars.iter().copied())
        .load()
}

/// The messages of a failed load, one string per error (`source: message`).
pub(crate) fn errors(result: Result<ProxySettings, LoadError>) -> Vec<String> {
    match result {
        Ok(s) => panic!("expected errors, loaded {s:?}"),
        Err(e) => e.errors().iter().map(ToString::to_string).collect(),
    }
}

/// The only error of a failed load.
pub(crate) fn one_error(result: Result<ProxySettings, LoadError>) -> String {
    let mut all = errors(result);
    assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
    all.remove(0)
}
