//! Source `static`: a username (inline or from a file) and a password from a root-only file.

use std::path::PathBuf;

use super::{MintRequest, Source, SourceError};
use crate::credential::{Credential, Secret};
use crate::secret_file;

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

impl Source for StaticSource {
    fn name(&self) -> &'static str {
        "static"
    }

    fn cache_identity(&self, _env: &crate::env::Env) -> String {
        format!(
            "static {:?} {}",
            self.username,
            self.password_file.display()
        )
    }

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
            return Err(SourceError::Local(format!(
                "{}: empty password",
                self.password_file.display()
            )));
        }
        if username.is_empty() {
            return Err(SourceError::Local("empty username".into()));
        }
        Ok(Credential {
            username,
            password: Secret::new(password),
            expires_at: None,
        })
    }
}
