//! Why a source, or the cloud identity it mints with, produced no credential: one error
//! type whose kind says who must act, and the search along a credential chain. Below
//! `sources` and `identity`, which both fail with it.

use std::fmt;

/// Why a source produced no credential. Whatever the variant, a still-valid cached
/// credential is answered instead (stale-while-error: it keeps working until it expires).
/// The variant says who must act: `Transient` may heal by itself (and was already retried
/// within the request); the others need an operator.
#[derive(Debug)]
pub struct SourceError {
    kind: ErrorKind,
    message: String,
    /// What failed underneath, when it is an error of its own (a secret file's check, a
    /// token call): kept as the error's `source()`, so the chain is there to walk.
    cause: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Who must act on a [`SourceError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Configuration or files on the node are wrong (missing, insecure, malformed).
    Local,
    /// The source has no credential for this host (a docker config without an entry).
    NotFound,
    /// The rule itself excludes this host (an account outside its `registry_ids`).
    OutOfScope,
    /// The upstream refused (no permission, unknown principal, bad request); asking again
    /// will not help until someone changes IAM or the config.
    Denied,
    /// Something upstream failed or timed out (a credential helper, a cloud API).
    Transient,
}

impl SourceError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        SourceError {
            kind,
            message: message.into(),
            cause: None,
        }
    }

    pub fn local(message: String) -> Self {
        Self::new(ErrorKind::Local, message)
    }

    pub fn not_found(message: String) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn out_of_scope(message: String) -> Self {
        Self::new(ErrorKind::OutOfScope, message)
    }

    pub fn denied(message: String) -> Self {
        Self::new(ErrorKind::Denied, message)
    }

    pub fn transient(message: String) -> Self {
        Self::new(ErrorKind::Transient, message)
    }

    /// A `Local` error: `context` (what was being read or set up), then `cause`, which is
    /// kept as its source.
    pub fn local_because(
        context: impl fmt::Display,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::local(format!("{context}: {cause}")).caused_by(cause)
    }

    /// The same error, with what failed underneath kept as its source.
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Box::new(cause));
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

/// A search along a credential chain (the shape of aws-config's `CredentialsProviderChain`):
/// a link that is not set up is noted and passed over; the first link that is set up
/// decides, and its failure ends the search (falling through to another identity would hide
/// the fault); when only the last link is left and fails, the error names every link and
/// why, of the kind of that last failure.
pub struct Chain {
    /// Whose credentials: "Google", "Azure".
    whose: &'static str,
    tried: Vec<String>,
}

impl Chain {
    pub fn new(whose: &'static str) -> Self {
        Chain {
            whose,
            tried: Vec::new(),
        }
    }

    /// Notes a link that is not set up (`why`, naming the link), and moves on.
    pub fn not_loaded(&mut self, why: impl Into<String>) {
        self.tried.push(why.into());
    }

    /// The error when the last link (`link`) fails too.
    pub fn exhausted(mut self, link: &str, last: SourceError) -> SourceError {
        self.tried.push(format!("{link}: {last}"));
        let text = format!(
            "no {} credentials (tried {})",
            self.whose,
            self.tried.join("; ")
        );
        let kind = match last.kind() {
            k @ (ErrorKind::Transient | ErrorKind::Denied) => k,
            _ => ErrorKind::Local,
        };
        SourceError::new(kind, text).caused_by(last)
    }
}

impl From<crate::http::ClientError> for SourceError {
    fn from(e: crate::http::ClientError) -> Self {
        SourceError::local(e.to_string()).caused_by(e)
    }
}

impl From<crate::workload::MissingInput> for SourceError {
    fn from(e: crate::workload::MissingInput) -> Self {
        SourceError::local(e.to_string()).caused_by(e)
    }
}

impl From<crate::http::CallError> for SourceError {
    fn from(e: crate::http::CallError) -> Self {
        let kind = match &e {
            crate::http::CallError::Refused(_) => ErrorKind::Denied,
            crate::http::CallError::Absent(_) => ErrorKind::NotFound,
            crate::http::CallError::Failed(_) => ErrorKind::Transient,
        };
        SourceError::new(kind, e.to_string()).caused_by(e)
    }
}

impl From<crate::secret_file::SecretFileError> for SourceError {
    fn from(e: crate::secret_file::SecretFileError) -> Self {
        SourceError::local(e.to_string())
    }
}
