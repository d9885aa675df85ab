//! Source `passthrough`: the pod's service account token itself as the password, for
//! registries that accept Kubernetes tokens (Harbor with OIDC, a registry behind an OIDC
//! proxy). It never touches the cache (the token must not reach a file); the kubelet keeps
//! the answer under the token's hash for about the token's life (`app` says how long), and
//! drops an answer whose password is the service account token unless the provider's
//! `cacheType` is `Token`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{MintRequest, Options, Source, SourceError, Spec, Workloads};
use crate::credential::Credential;
use crate::env::Env;
use crate::workload::Inputs;

kinds! {
    name: "passthrough",
    options: PassthroughOptions,
    build: from_options,
    builtin: &[],
    workloads: Workloads::Required,
}

/// The username Docker's clients send with an identity token.
pub const DEFAULT_USERNAME: &str = "<token>";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PassthroughOptions {
    username: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassthroughSource {
    pub username: String,
}

fn from_options(options: &Options<'_>) -> Result<PassthroughSource, super::OptionError> {
    let o: PassthroughOptions = options.parse()?;
    let username = o.username.unwrap_or_else(|| DEFAULT_USERNAME.into());
    if username.is_empty() || username.contains(char::is_control) {
        return Err(super::OptionError::at(
            "username",
            "username must be a non-empty line",
        ));
    }
    Ok(PassthroughSource { username })
}

impl Spec for PassthroughSource {
    fn same_for_every_host(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self) -> String {
        format!("username={}", self.username)
    }

    fn cache_identity(&self, _env: &Env) -> String {
        format!("passthrough {}", self.username)
    }

    fn workload_inputs(
        &self,
        _annotations: &BTreeMap<String, String>,
        _env: &Env,
    ) -> Result<Inputs, crate::workload::InputError> {
        Ok(Inputs::new())
    }

    fn cacheable(&self) -> bool {
        false
    }
}

impl Source for PassthroughSource {
    fn mint(&self, req: &MintRequest<'_>) -> Result<Credential, SourceError> {
        let workload = req.workload.ok_or_else(|| {
            SourceError::local(
                "passthrough answers with a service account token, and the request has none".into(),
            )
        })?;
        Ok(Credential {
            username: self.username.clone(),
            password: workload.account.token.clone(),
            expires_at: Some(workload.account.expires_at),
            refresh_at: None,
        })
    }
}
