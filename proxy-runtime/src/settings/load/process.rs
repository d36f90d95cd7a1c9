//! Collecting the process environment: the variables under the prefix, and the one naming
//! the config file. The only place the loader reads the process's variables, and only
//! when asked to ([`super::Loader::process_env`]).

use super::error::{ErrorKind, SettingError};
use super::origin::Origin;

/// The variables whose names start with `prefix` or equal `config_var`, ignoring ASCII
/// case, and those that `near` says are near misses of the prefix (to be reported). A
/// value that is not UTF-8 is an error (it cannot be a setting), not skipped.
pub(crate) fn collect(
    prefix: &str,
    config_var: Option<&str>,
    near: impl Fn(&str) -> bool,
    errors: &mut Vec<SettingError>,
) -> Vec<(String, String)> {
    let upper_prefix = prefix.to_ascii_uppercase();
    let mut out = Vec::new();
    for (name, value) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let upper = name.to_ascii_uppercase();
        let wanted = (!upper_prefix.is_empty() && upper.starts_with(&upper_prefix))
            || config_var.is_some_and(|c| c.eq_ignore_ascii_case(&name))
            || near(&name);
        if !wanted {
            continue;
        }
        match value.into_string() {
            Ok(value) => out.push((name, value)),
            Err(_) => errors.push(SettingError::new(
                Origin::env(&name),
                ErrorKind::Unreadable,
                "value is not valid UTF-8",
            )),
        }
    }
    out
}
