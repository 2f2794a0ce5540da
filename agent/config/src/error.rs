//! Config errors: every problem names the file, the line and column where the
//! text has them, and the dotted key (`dhcp.link[1].range`).

use crate::locate::Locator;
use std::fmt;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// 1-based line, if known.
    pub line: Option<usize>,
    /// 1-based column, if known.
    pub column: Option<usize>,
    /// Dotted key, e.g. `dhcp.link[1].range`.
    pub key: String,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// Everything wrong with a config file; displays one
/// `file:line:column: key: message` line per problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file.
    pub origin: String,
    /// The problems, in file order.
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.origin)?;
            if let Some(l) = issue.line {
                write!(f, ":{l}")?;
                if let Some(c) = issue.column {
                    write!(f, ":{c}")?;
                }
            }
            if issue.key.is_empty() {
                write!(f, ": {}", issue.message)?;
            } else {
                write!(f, ": {}: {}", issue.key, issue.message)?;
            }
        }
        Ok(())
    }
}

impl ConfigError {
    /// An error about the whole file (it cannot be read, say).
    pub fn whole_file(origin: &str, message: String) -> ConfigError {
        ConfigError {
            origin: origin.into(),
            issues: vec![ConfigIssue {
                line: None,
                column: None,
                key: String::new(),
                message,
            }],
        }
    }

    /// The error of toml's own deserializer (syntax, unknown key, wrong type),
    /// located through `loc` at the key its span falls in.
    pub fn from_toml(e: &toml::de::Error, loc: &Locator<'_>, origin: &str) -> ConfigError {
        let mut iss = Issues::new(loc);
        iss.report_toml(e);
        iss.into_error(origin)
    }
}

/// Collects (key, message) problems and locates each in the text, so that a
/// file's every problem is reported at once.
pub struct Issues<'a> {
    loc: &'a Locator<'a>,
    issues: Vec<ConfigIssue>,
}

impl<'a> Issues<'a> {
    /// An empty collection over the text `loc` was made from.
    pub fn new(loc: &'a Locator<'a>) -> Self {
        Issues {
            loc,
            issues: Vec::new(),
        }
    }

    /// Records a problem with `key` (its line and column are looked up).
    pub fn report(&mut self, key: &str, message: String) {
        let at = self.loc.span_of(key).map(|s| self.loc.line_col(s.start));
        self.issues.push(ConfigIssue {
            line: at.map(|(l, _)| l),
            column: at.map(|(_, c)| c),
            key: key.into(),
            message,
        });
    }

    /// The value, or `None` after recording the error under `key`.
    pub fn take<T>(&mut self, key: &str, r: Result<T, String>) -> Option<T> {
        r.map_err(|m| self.report(key, m)).ok()
    }

    /// Parses an optional value, or takes the default when it is absent or
    /// wrong (a wrong value is recorded, so the result is never used).
    pub fn or_default<T>(
        &mut self,
        key: &str,
        raw: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, String>,
        default: impl FnOnce() -> T,
    ) -> T {
        match raw {
            Some(s) => match parse(s) {
                Ok(v) => v,
                Err(m) => {
                    self.report(key, m);
                    default()
                }
            },
            None => default(),
        }
    }

    /// Records an error of toml's deserializer, at the key its span falls in.
    pub fn report_toml(&mut self, e: &toml::de::Error) {
        let at = e.span().map(|s| self.loc.line_col(s.start));
        self.issues.push(ConfigIssue {
            line: at.map(|(l, _)| l),
            column: at.map(|(_, c)| c),
            key: e
                .span()
                .and_then(|s| self.loc.key_at(s.start))
                .unwrap_or_default(),
            message: e.message().trim().to_string(),
        });
    }

    /// How many problems were recorded.
    pub fn len(&self) -> usize {
        self.issues.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.issues.is_empty()
    }

    /// The error with every problem in file order.
    pub fn into_error(mut self, origin: &str) -> ConfigError {
        self.issues.sort_by_key(|i| i.line.unwrap_or(usize::MAX));
        ConfigError {
            origin: origin.into(),
            issues: self.issues,
        }
    }
}
