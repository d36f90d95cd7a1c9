//! The environment a load reads: the variables it was given, or the process's. Handed to
//! [`Settings::complete`](crate::Settings::complete) for what no field describes.

use std::fmt;

/// The variables of one load, by exact name (`HTTP_PROXY` and `http_proxy` are two).
pub struct Environment<'a> {
    source: Source<'a>,
}

enum Source<'a> {
    /// No environment: the load was given none.
    None,
    /// The variables given to the loader.
    Vars(&'a [(String, String)]),
    /// The process's.
    Process,
}

impl<'a> Environment<'a> {
    pub(crate) fn none() -> Self {
        Self {
            source: Source::None,
        }
    }

    pub(crate) fn vars(vars: &'a [(String, String)]) -> Self {
        Self {
            source: Source::Vars(vars),
        }
    }

    pub(crate) fn process() -> Self {
        Self {
            source: Source::Process,
        }
    }

    /// The value of the variable named exactly `name`, if it is set (a value that is not
    /// UTF-8 is read lossily).
    pub fn var(&self, name: &str) -> Option<String> {
        match &self.source {
            Source::None => None,
            Source::Vars(vars) => vars
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone()),
            Source::Process => std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()),
        }
    }
}

/// Says where the variables come from, never their values.
impl fmt::Debug for Environment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::None => "none".to_owned(),
            Source::Vars(vars) => format!("{} variables", vars.len()),
            Source::Process => "process".to_owned(),
        };
        f.debug_struct("Environment")
            .field("source", &source)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_read_by_exact_name_the_last_one_winning_and_never_shown() {
        let vars = vec![
            ("HTTPS_PROXY".to_owned(), "http://u:s3cret@a:1".to_owned()),
            ("HTTPS_PROXY".to_owned(), "http://b:1".to_owned()),
        ];
        let env = Environment::vars(&vars);
        assert_eq!(env.var("HTTPS_PROXY").as_deref(), Some("http://b:1"));
        assert_eq!(env.var("https_proxy"), None, "names are exact");
        assert_eq!(Environment::none().var("HTTPS_PROXY"), None);
        assert_eq!(
            format!("{env:?}"),
            "Environment { source: \"2 variables\" }"
        );
        assert_eq!(
            format!("{:?}", Environment::none()),
            "Environment { source: \"none\" }"
        );
        assert_eq!(
            format!("{:?}", Environment::process()),
            "Environment { source: \"process\" }"
        );
    }
}
