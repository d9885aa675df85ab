//! The node's Azure cloud config (`/etc/kubernetes/azure.json` on AKS, as cloud-provider-azure
//! writes and reads it): a managed identity (`useManagedIdentityExtension`, with
//! `userAssignedIdentityID` a client ID or a resource ID) or a service principal
//! (`aadClientId`, `aadClientSecret`), the `tenantId`, and the `cloud` that picks the
//! authority. The file holds a secret, so it gets the secret-file checks; nothing from it
//! reaches an error but key names.

use std::path::Path;

use serde::Deserialize;

use super::entra::PUBLIC_AUTHORITY;
use super::imds::Identity;
use super::{is_id, is_resource_id};
use crate::credential::Secret;
use crate::failure::SourceError;
use crate::secret_file;

/// Where AKS writes the file; a rule's `azure_json` replaces it.
pub const DEFAULT_PATH: &str = "/etc/kubernetes/azure.json";

/// The fields read; the file has many more, which are not this source's business.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CloudConfig {
    #[serde(default)]
    cloud: String,
    #[serde(default)]
    tenant_id: String,
    #[serde(default)]
    aad_client_id: String,
    #[serde(default)]
    aad_client_secret: String,
    #[serde(default)]
    aad_client_cert_path: String,
    #[serde(default)]
    use_managed_identity_extension: bool,
    #[serde(default, rename = "userAssignedIdentityID")]
    user_assigned_identity_id: String,
}

/// What the file says to use.
pub struct NodeIdentity {
    pub tenant: Option<String>,
    pub authority: &'static str,
    pub how: How,
}

pub enum How {
    ManagedIdentity(Identity),
    ServicePrincipal { client_id: String, secret: Secret },
}

/// The authority host of a cloud name, as Azure's SDKs spell them (case-insensitive).
fn authority_of(cloud: &str) -> Option<&'static str> {
    match cloud.to_ascii_lowercase().as_str() {
        "" | "azurepubliccloud" => Some(PUBLIC_AUTHORITY),
        "azurechinacloud" => Some("https://login.chinacloudapi.cn"),
        "azureusgovernmentcloud" => Some("https://login.microsoftonline.us"),
        _ => None,
    }
}

pub fn read(path: &Path, uid: u32) -> Result<NodeIdentity, SourceError> {
    let text = secret_file::read(path, uid)?;
    let local = |why: String| SourceError::local(format!("{}: {why}", path.display()));
    // serde_json's messages can quote values (a secret); only the position is told.
    let c: CloudConfig = serde_json::from_str(&text).map_err(|e| {
        local(format!(
            "not an Azure cloud config (line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    let authority = authority_of(&c.cloud).ok_or_else(|| {
        local(format!(
            "cloud {:?} is not AzurePublicCloud, AzureChinaCloud or AzureUSGovernmentCloud; \
             set authority_host in the rule",
            c.cloud
        ))
    })?;
    let tenant = (!c.tenant_id.is_empty()).then_some(c.tenant_id);
    if let Some(t) = &tenant {
        is_id(t).map_err(|why| local(format!("tenantId {why}")))?;
    }
    let how = if c.use_managed_identity_extension {
        let id = c.user_assigned_identity_id;
        if id.is_empty() {
            How::ManagedIdentity(Identity::System)
        } else if id.to_ascii_lowercase().contains("/subscriptions/") {
            if !is_resource_id(&id) {
                return Err(local("userAssignedIdentityID is not valid".into()));
            }
            How::ManagedIdentity(Identity::ResourceId(id))
        } else {
            is_id(&id).map_err(|why| local(format!("userAssignedIdentityID {why}")))?;
            How::ManagedIdentity(Identity::ClientId(id))
        }
    } else if !c.aad_client_secret.is_empty() {
        if c.aad_client_id.is_empty() {
            return Err(local("aadClientSecret without aadClientId".into()));
        }
        is_id(&c.aad_client_id).map_err(|why| local(format!("aadClientId {why}")))?;
        if tenant.is_none() {
            return Err(local("a service principal needs tenantId".into()));
        }
        How::ServicePrincipal {
            client_id: c.aad_client_id,
            secret: Secret::new(c.aad_client_secret),
        }
    } else if !c.aad_client_cert_path.is_empty() {
        return Err(local(
            "aadClientCertPath (PKCS#12) is not read; put the service principal in a rule \
             with client_certificate_file (PEM)"
                .into(),
        ));
    } else {
        return Err(local(
            "neither useManagedIdentityExtension nor aadClientId/aadClientSecret is set".into(),
        ));
    };
    Ok(NodeIdentity {
        tenant,
        authority,
        how,
    })
}
