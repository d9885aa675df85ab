//! The kubelet's `CredentialProviderConfig` as typed data: every field any supported kubelet
//! version reads, decoded strictly (as the kubelet decodes it) and written back in the order
//! the kubelet's documentation writes it. Which of them a given kubelet version reads is
//! `KubeletVersion`'s to say, and `validate`'s to check.

use serde::{Deserialize, Serialize};

use crate::fields::fields_of;

/// The file's `apiVersion`. All three are read by every supported kubelet; only `v1` has
/// `tokenAttributes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigApi {
    #[serde(rename = "kubelet.config.k8s.io/v1")]
    V1,
    #[serde(rename = "kubelet.config.k8s.io/v1beta1")]
    V1beta1,
    #[serde(rename = "kubelet.config.k8s.io/v1alpha1")]
    V1alpha1,
}

impl ConfigApi {
    pub const ALL: [Self; 3] = [Self::V1, Self::V1beta1, Self::V1alpha1];

    pub fn name(self) -> &'static str {
        match self {
            Self::V1 => "kubelet.config.k8s.io/v1",
            Self::V1beta1 => "kubelet.config.k8s.io/v1beta1",
            Self::V1alpha1 => "kubelet.config.k8s.io/v1alpha1",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == text)
    }

    /// Whether a provider in a file of this version may have `tokenAttributes` (the older
    /// versions are decoded strictly, so there it stops the kubelet).
    pub fn has_token_attributes(self) -> bool {
        self == Self::V1
    }
}

/// A provider's `apiVersion`: the version of the request and response it speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProviderApi {
    #[serde(rename = "credentialprovider.kubelet.k8s.io/v1")]
    V1,
    #[serde(rename = "credentialprovider.kubelet.k8s.io/v1beta1")]
    V1beta1,
    #[serde(rename = "credentialprovider.kubelet.k8s.io/v1alpha1")]
    V1alpha1,
}

impl ProviderApi {
    pub const ALL: [Self; 3] = [Self::V1, Self::V1beta1, Self::V1alpha1];

    pub fn name(self) -> &'static str {
        match self {
            Self::V1 => "credentialprovider.kubelet.k8s.io/v1",
            Self::V1beta1 => "credentialprovider.kubelet.k8s.io/v1beta1",
            Self::V1alpha1 => "credentialprovider.kubelet.k8s.io/v1alpha1",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == text)
    }
}

/// The only `kind` of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    CredentialProviderConfig,
}

impl Kind {
    pub fn name(self) -> &'static str {
        "CredentialProviderConfig"
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigFile {
    pub api_version: ConfigApi,
    pub kind: Kind,
    pub providers: Vec<Provider>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Provider {
    pub name: String,
    pub api_version: ProviderApi,
    pub match_images: Vec<String>,
    pub default_cache_duration: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_attributes: Option<TokenAttributes>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    /// The kubelet takes a missing value as empty; kept missing when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenAttributes {
    pub service_account_token_audience: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_type: Option<CacheType>,
    pub require_service_account: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_service_account_annotation_keys: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional_service_account_annotation_keys: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CacheType {
    Token,
    ServiceAccount,
}

impl CacheType {
    pub const ALL: [Self; 2] = [Self::Token, Self::ServiceAccount];

    pub fn name(self) -> &'static str {
        match self {
            Self::Token => "Token",
            Self::ServiceAccount => "ServiceAccount",
        }
    }
}

/// The keys of each mapping, from the types above.
pub fn config_fields() -> &'static [&'static str] {
    fields_of::<ConfigFile>()
}

pub fn provider_fields() -> &'static [&'static str] {
    fields_of::<Provider>()
}

pub fn env_fields() -> &'static [&'static str] {
    fields_of::<EnvVar>()
}

pub fn token_attributes_fields() -> &'static [&'static str] {
    fields_of::<TokenAttributes>()
}

impl ConfigFile {
    /// A file of `providers`, of `apiVersion` v1: every supported kubelet reads it, and only
    /// it has `tokenAttributes`.
    pub fn of(providers: Vec<Provider>) -> Self {
        ConfigFile {
            api_version: ConfigApi::V1,
            kind: Kind::CredentialProviderConfig,
            providers,
        }
    }

    /// As YAML, block style, strings quoted only where YAML needs it.
    pub fn to_yaml(&self) -> Result<String, serde_saphyr::ser_error::Error> {
        let options = serde_saphyr::ser_options! {
            compact_list_indent: false,
            prefer_block_scalars: false,
        };
        serde_saphyr::to_string_with_options(self, options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in ConfigApi::ALL {
            assert_eq!(ConfigApi::parse(a.name()), Some(a));
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.name()));
        }
        for a in ProviderApi::ALL {
            assert_eq!(ProviderApi::parse(a.name()), Some(a));
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.name()));
        }
    }

    #[test]
    fn fields_are_the_kubelets() {
        assert_eq!(config_fields(), ["apiVersion", "kind", "providers"]);
        assert_eq!(
            provider_fields(),
            [
                "name",
                "apiVersion",
                "matchImages",
                "defaultCacheDuration",
                "args",
                "env",
                "tokenAttributes"
            ]
        );
        assert_eq!(env_fields(), ["name", "value"]);
        assert_eq!(
            token_attributes_fields(),
            [
                "serviceAccountTokenAudience",
                "cacheType",
                "requireServiceAccount",
                "requiredServiceAccountAnnotationKeys",
                "optionalServiceAccountAnnotationKeys"
            ]
        );
    }
}
