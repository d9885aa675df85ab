//! The rule keys of `acr`, validated into an [`AcrSource`].

use serde::Deserialize;

use super::imds::Identity;
use super::{AcrSource, RuleIdentity, ServicePrincipal, SpProof, WorkloadIds};
use crate::http::endpoint_allowed;
use crate::sources::{OptionError, Options};
use crate::workload::IdentityMode;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AcrOptions {
    tenant_id: Option<String>,
    client_id: Option<String>,
    client_secret_file: Option<String>,
    client_certificate_file: Option<String>,
    identity_resource_id: Option<String>,
    azure_json: Option<String>,
    authority_host: Option<String>,
    imds_endpoint: Option<String>,
    endpoint: Option<String>,
    #[serde(default)]
    suffixes: Vec<String>,
    client_id_annotation: Option<String>,
    tenant_id_annotation: Option<String>,
}

pub(super) fn from_options(options: &Options<'_>) -> Result<AcrSource, OptionError> {
    let mut o: AcrOptions = options.parse()?;
    if let Some(t) = &o.tenant_id {
        is_id(t).map_err(|why| OptionError::at("tenant_id", format!("tenant_id {t:?} {why}")))?;
    }
    if let Some(c) = &o.client_id {
        is_id(c).map_err(|why| OptionError::at("client_id", format!("client_id {c:?} {why}")))?;
    }
    if let Some(r) = &o.identity_resource_id
        && !is_resource_id(r)
    {
        return Err(OptionError::at(
            "identity_resource_id",
            format!("identity_resource_id {r:?} is not a resource ID (/subscriptions/…)"),
        ));
    }
    let proof = match (&o.client_secret_file, &o.client_certificate_file) {
        (Some(_), Some(_)) => {
            return Err(OptionError::at(
                "client_certificate_file",
                "set one of client_secret_file and client_certificate_file",
            ));
        }
        (Some(f), None) => Some(SpProof::SecretFile(options.path(f))),
        (None, Some(f)) => Some(SpProof::CertificateFile(options.path(f))),
        (None, None) => None,
    };
    // With a workload identity, a tenant and client without a proof are the workloads'
    // defaults (their annotations win), and the node's identity is the chain's; with a
    // proof they are a service principal's, which workloads default to as well.
    let (workload_tenant_id, workload_client_id) =
        if options.identity != IdentityMode::Node && proof.is_none() {
            (o.tenant_id.take(), o.client_id.take())
        } else if proof.is_some() {
            (o.tenant_id.clone(), o.client_id.clone())
        } else {
            (None, None)
        };
    let identity = match (o.tenant_id, o.client_id, proof, o.identity_resource_id) {
        (Some(tenant_id), Some(client_id), Some(proof), None) => {
            RuleIdentity::ServicePrincipal(ServicePrincipal {
                tenant_id,
                client_id,
                proof,
            })
        }
        (None, None, None, None) => RuleIdentity::Chain,
        (None, Some(id), None, None) => RuleIdentity::ManagedIdentity(Identity::ClientId(id)),
        (None, None, None, Some(id)) => RuleIdentity::ManagedIdentity(Identity::ResourceId(id)),
        (None, Some(_), None, Some(_)) => {
            return Err(OptionError::at(
                "identity_resource_id",
                "a managed identity is named by one of client_id and identity_resource_id",
            ));
        }
        (_, _, Some(_), Some(_)) => {
            return Err(OptionError::at(
                "identity_resource_id",
                "identity_resource_id names a managed identity; a service principal has none",
            ));
        }
        (Some(_), _, None, _) => {
            return Err(OptionError::at(
                "tenant_id",
                "a service principal needs tenant_id, client_id and one of client_secret_file \
                 and client_certificate_file",
            ));
        }
        (_, _, Some(_), _) => {
            return Err(OptionError::rule(
                "a service principal needs tenant_id, client_id and one of client_secret_file \
                 and client_certificate_file",
            ));
        }
    };
    for (key, url) in [
        ("authority_host", &o.authority_host),
        ("endpoint", &o.endpoint),
    ] {
        if let Some(url) = url {
            endpoint_allowed(url).map_err(|why| OptionError::at(key, why.to_string()))?;
        }
    }
    if let Some(url) = &o.imds_endpoint {
        super::imds::endpoint_allowed(url).map_err(|why| OptionError::at("imds_endpoint", why.to_string()))?;
    }
    let mut suffixes = Vec::new();
    for s in o.suffixes {
        let s = s.trim_start_matches('.').to_ascii_lowercase();
        is_suffix(&s).map_err(|why| OptionError::at("suffixes", format!("suffix {s:?} {why}")))?;
        suffixes.push(s);
    }
    let client_id_annotation = options.annotation_key(
        "client_id_annotation",
        o.client_id_annotation,
        super::CLIENT_ID_ANNOTATION,
    )?;
    let tenant_id_annotation = options.annotation_key(
        "tenant_id_annotation",
        o.tenant_id_annotation,
        super::TENANT_ID_ANNOTATION,
    )?;
    Ok(AcrSource {
        workload: WorkloadIds {
            tenant_id: workload_tenant_id,
            client_id: workload_client_id,
            tenant_id_annotation,
            client_id_annotation,
        },
        identity,
        azure_json: o.azure_json.as_deref().map(|f| options.path(f)),
        authority_host: o.authority_host,
        imds_endpoint: o.imds_endpoint,
        endpoint: o.endpoint,
        suffixes,
    })
}

/// A tenant or client ID as it goes into a URL path or a form: a GUID, or (tenants) a
/// domain name such as `contoso.onmicrosoft.com`.
pub(super) fn is_id(s: &str) -> Result<(), &'static str> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !s.starts_with('.')
        && !s.contains("..");
    ok.then_some(())
        .ok_or("is not a GUID or domain name (letters, digits, '-' and '.')")
}

/// An Azure resource ID of a user-assigned identity: a path under `/subscriptions/`.
pub(super) fn is_resource_id(s: &str) -> bool {
    s.to_ascii_lowercase().starts_with("/subscriptions/")
        && s.len() <= 1024
        && !s.contains(|c: char| c.is_whitespace() || c.is_control() || "?#&%".contains(c))
}

/// A login server suffix: a DNS name of two labels or more, no wildcards.
fn is_suffix(s: &str) -> Result<(), &'static str> {
    let labels: Vec<&str> = s.split('.').collect();
    let ok = labels.len() >= 2
        && s.len() <= 200
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    ok.then_some(())
        .ok_or("is not a DNS suffix of two labels or more (like azurecr.example)")
}
