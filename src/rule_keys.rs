//! A rule's source keys as its kind receives them (with where each stands in the config,
//! for errors at the key's line), and the error that names the key at fault. Below
//! `sources` and `identity`, which both read keys.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::workload::IdentityMode;

/// A rule's source keys as its kind receives them, with where each stands in the config.
pub struct Options<'a> {
    pub table: toml::Table,
    /// Byte ranges of each key's value in the config text, for `OptionError::at`.
    pub spans: BTreeMap<String, Range<usize>>,
    /// The config file's directory: relative paths are relative to it.
    pub base: &'a Path,
    /// The rule's `identity` (a shared key): some options apply only to one of them.
    pub identity: IdentityMode,
}

impl Options<'_> {
    /// No keys at all: the options of a built-in rule.
    pub fn none() -> Options<'static> {
        Options {
            table: toml::Table::new(),
            spans: BTreeMap::new(),
            base: Path::new(""),
            identity: IdentityMode::Node,
        }
    }

    /// The keys as the kind's own options struct (which denies keys it does not know).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, OptionError> {
        Self::parse_table(&self.table)
    }

    /// The keys of one shared struct `I` (a cloud identity's, a stored secret's: see
    /// `kinds!`), parsed; and the options without them, for the kind's own struct or the
    /// next shared one.
    pub fn split<I: DeserializeOwned>(&self) -> Result<(Options<'_>, I), OptionError> {
        let shared = crate::fields::fields_of::<I>();
        let (theirs, own): (toml::Table, toml::Table) = self
            .table
            .clone()
            .into_iter()
            .partition(|(k, _)| shared.contains(&k.as_str()));
        let rest = Options {
            table: own,
            spans: self.spans.clone(),
            base: self.base,
            identity: self.identity,
        };
        Ok((rest, Self::parse_table(&theirs)?))
    }

    fn parse_table<T: DeserializeOwned>(table: &toml::Table) -> Result<T, OptionError> {
        T::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
            // Keys the kind does not take were refused before (see `Kind::keys`).
            let text = e.message().trim().to_string();
            // "invalid type: …\nin `key`" names the key when nested; at the top level, the
            // key is the one that fails on its own. Its line is reported; the first line of
            // the message is kept.
            let key = text
                .rsplit_once("in `")
                .and_then(|(_, k)| k.split_once('`'))
                .map(|(k, _)| k.to_string())
                .or_else(|| {
                    table.iter().find_map(|(k, v)| {
                        let alone = toml::Table::from_iter([(k.clone(), v.clone())]);
                        match T::deserialize(toml::Value::Table(alone)) {
                            Err(e) if !e.message().starts_with("missing field") => Some(k.clone()),
                            _ => None,
                        }
                    })
                });
            let first = text.lines().next().unwrap_or_default().to_string();
            OptionError {
                key,
                message: first,
            }
        })
    }

    /// The annotation key a source reads for a workload: the rule's `key` (valid only when
    /// the rule's `identity` uses service accounts), else `default`.
    pub fn annotation_key(
        &self,
        key: &str,
        value: Option<String>,
        default: &str,
    ) -> Result<String, OptionError> {
        let Some(value) = value else {
            return Ok(default.to_string());
        };
        if self.identity == IdentityMode::Node {
            return Err(OptionError::at(
                key,
                format!(
                    "`{key}` needs identity \"service-account\" or \"service-account-or-node\""
                ),
            ));
        }
        // `[prefix/]name`: a DNS subdomain prefix, a name of letters, digits, `-_.`.
        let (prefix, name) = value.rsplit_once('/').unwrap_or(("", &value));
        let ok = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && prefix.len() <= 253
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
        if !ok {
            return Err(OptionError::at(
                key,
                format!("{key} {value:?} is not an annotation key ([prefix/]name)"),
            ));
        }
        Ok(value)
    }

    /// A path from the config, relative to the config's directory.
    pub fn path(&self, value: &str) -> PathBuf {
        self.base.join(value)
    }
}

/// Why a rule's keys do not make a source: the key at fault (its line is reported), or none
/// (the rule's line).
#[derive(Debug, PartialEq, Eq)]
pub struct OptionError {
    pub key: Option<String>,
    pub message: String,
}

impl OptionError {
    pub fn at(key: &str, message: impl Into<String>) -> Self {
        OptionError {
            key: Some(key.to_string()),
            message: message.into(),
        }
    }

    pub fn rule(message: impl Into<String>) -> Self {
        OptionError {
            key: None,
            message: message.into(),
        }
    }
}
