//! Source `static`: a username (inline or from a file) and a password from a root-only file.

use std::path::PathBuf;

use serde::Deserialize;

use super::{MintRequest, OptionError, Options, Source, SourceError, Spec};
use crate::credential::{Credential, Secret};
use crate::secret_file;

kinds! {
    name: "static",
    options: StaticOptions,
    build: StaticSource::from_options,
    builtin: &[],
    workloads: super::Workloads::NodeOnly,
}

/// The rule keys of `static`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticOptions {
    username: Option<String>,
    username_file: Option<String>,
    password_file: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Username {
    Inline(String),
    File(PathBuf),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticSource {
    pub username: Username,
    pub password_file: PathBuf,
}

impl StaticSource {
    fn from_options(options: &Options<'_>) -> Result<Self, OptionError> {
        let o: StaticOptions = options.parse()?;
        let username = match (o.username, o.username_file) {
            (Some(u), None) => Username::Inline(u),
            (None, Some(f)) => Username::File(options.path(&f)),
            _ => {
                return Err(OptionError::rule(
                    "source \"static\" needs exactly one of `username`, `username_file`",
                ));
            }
        };
        let password_file = o
            .password_file
            .ok_or_else(|| OptionError::rule("source \"static\" needs `password_file`"))?;
        Ok(StaticSource {
            username,
            password_file: options.path(&password_file),
        })
    }
}

impl Spec for StaticSource {
    fn same_for_every_host(&self) -> bool {
        true
    }

    fn files(&self) -> Vec<(&'static str, PathBuf)> {
        let mut files = vec![("password_file", self.password_file.clone())];
        if let Username::File(f) = &self.username {
            files.push(("username_file", f.clone()));
        }
        files
    }

    fn name(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self) -> String {
        let user = match &self.username {
            Username::Inline(u) => format!("username={u}"),
            Username::File(p) => format!("username_file={}", p.display()),
        };
        format!("{user} password_file={}", self.password_file.display())
    }

    fn cache_identity(&self, _env: &crate::env::Env) -> String {
        format!(
            "static {:?} {}",
            self.username,
            self.password_file.display()
        )
    }
}

impl Source for StaticSource {
    fn mint(&self, req: &MintRequest<'_>) -> Result<Credential, SourceError> {
        let uid = req.env.uid();
        let username = match &self.username {
            Username::Inline(u) => u.clone(),
            // The username is not secret, but a writable one lets others redirect the login.
            Username::File(path) => {
                let text = secret_file::read(path, uid)?;
                secret_file::trim_newline(&text).to_string()
            }
        };
        let text = secret_file::read(&self.password_file, uid)?;
        let password = secret_file::trim_newline(&text);
        if password.is_empty() {
            return Err(SourceError::local(format!(
                "{}: empty password",
                self.password_file.display()
            )));
        }
        if username.is_empty() {
            return Err(SourceError::local("empty username".into()));
        }
        Ok(Credential {
            username,
            password: Secret::new(password),
            expires_at: None,
            refresh_at: None,
        })
    }
}
