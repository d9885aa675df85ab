//! The `Source` trait: how a rule's credentials are minted. One module per source; no source
//! depends on another.

pub mod docker_config;
pub mod ecr;
pub mod static_file;

use std::time::{Duration, Instant};

use crate::credential::Credential;
use crate::env::Env;

/// What a source is asked to mint for.
pub struct MintRequest<'a> {
    /// The registry host (with port) the credential must be valid for: the image's host, or
    /// the rule's `registry` for mirrors.
    pub registry: &'a str,
    pub env: &'a Env,
    /// The request's hard deadline; sources bound their own waits by it.
    pub deadline: Instant,
}

pub trait Source {
    /// The source's name as written in the config (`static`, `docker-config`, …).
    fn name(&self) -> &'static str;

    /// Everything about this source that changes the credential it mints, as resolved on
    /// this node (e.g. the docker config path actually read), for the cache key. Never a
    /// secret.
    fn cache_identity(&self, env: &Env) -> String;

    /// Refuses a registry this source can never mint for, before the cache is touched (no
    /// lock file, no entry for a host that is not ours).
    fn check(&self, _registry: &str) -> Result<(), SourceError> {
        Ok(())
    }

    /// The longest one mint may take: how long a request waits for another process minting
    /// the same key before it stops waiting.
    fn max_mint_time(&self) -> Duration {
        Duration::from_secs(1)
    }

    /// Mints (or reads) a credential for `req.registry`.
    fn mint(&self, req: &MintRequest<'_>) -> Result<Credential, SourceError>;
}

/// Why a source produced no credential. Whatever the variant, a still-valid cached
/// credential is answered instead (stale-while-error: it keeps working until it expires).
/// The variant says who must act: `Transient` may heal by itself (and was already retried
/// within the request); the others need an operator.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Configuration or files on the node are wrong (missing, insecure, malformed).
    #[error("{0}")]
    Local(String),
    /// The source has no credential for this registry.
    #[error("{0}")]
    NotFound(String),
    /// The upstream refused (no permission, unknown principal, bad request); asking again
    /// will not help until someone changes IAM or the config.
    #[error("{0}")]
    Denied(String),
    /// Something upstream failed or timed out (a credential helper, a cloud API).
    #[error("{0}")]
    Transient(String),
}

impl From<crate::secret_file::SecretFileError> for SourceError {
    fn from(e: crate::secret_file::SecretFileError) -> Self {
        SourceError::Local(e.to_string())
    }
}
