//! The rule keys of `ecr`, validated into an [`EcrSource`].

use serde::Deserialize;

use crate::identity::aws::partition::{is_account_id, valid_region};
use super::{EcrSource, ROLE_ANNOTATION};
use crate::identity::aws::{AwsIdentity, Keys};
use crate::sources::{OptionError, Options};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EcrOptions {
    region: Option<String>,
    registry_ids: Option<Vec<String>>,
    endpoint: Option<String>,
    role_annotation: Option<String>,
}

pub(super) fn from_options(options: &Options<'_>) -> Result<EcrSource, OptionError> {
    let (rest, keys) = options.split::<Keys>()?;
    let o: EcrOptions = rest.parse()?;
    if let Some(r) = &o.region
        && !valid_region(r)
    {
        return Err(OptionError::at(
            "region",
            format!("region {r:?} is not an AWS region name"),
        ));
    }
    let identity = AwsIdentity::from_keys(keys, options)?;
    if identity.pod_identity.is_some() && o.role_annotation.is_some() {
        return Err(OptionError::at(
            "role_annotation",
            "a pod identity association names the role: `role_annotation` does not apply with pod_identity_cluster",
        ));
    }
    let registry_ids = o.registry_ids.unwrap_or_default();
    if let Some(bad) = registry_ids.iter().find(|id| !is_account_id(id)) {
        return Err(OptionError::at(
            "registry_ids",
            format!("registry id {bad:?} is not a 12-digit account id"),
        ));
    }
    if let Some(v) = &o.endpoint {
        // The SDK signs every request it sends there.
        crate::http::endpoint_signed(v)
            .map_err(|why| OptionError::at("endpoint", why.to_string()))?;
    }
    let role_annotation =
        options.annotation_key("role_annotation", o.role_annotation, ROLE_ANNOTATION)?;
    Ok(EcrSource {
        region: o.region,
        identity,
        registry_ids,
        endpoint: o.endpoint,
        role_annotation,
    })
}

impl EcrSource {
    /// The options in effect, for `config check`.
    pub(super) fn describe_options(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = &self.region {
            parts.push(format!("region={r}"));
        }
        self.identity.describe(&mut parts);
        let mut opt = |key: &str, v: Option<&str>| {
            if let Some(v) = v {
                parts.push(format!("{key}={v}"));
            }
        };
        let ids = self.registry_ids.join(",");
        opt("registry_ids", (!ids.is_empty()).then_some(ids.as_str()));
        opt("endpoint", self.endpoint.as_deref());
        if self.role_annotation != ROLE_ANNOTATION {
            opt("role_annotation", Some(&self.role_annotation));
        }
        if parts.is_empty() {
            "(region from the host, default AWS credentials)".into()
        } else {
            parts.join(" ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(keys: &str) -> Result<EcrSource, OptionError> {
        let table: toml::Table = toml::from_str(keys).unwrap();
        from_options(&Options {
            table,
            spans: Default::default(),
            base: std::path::Path::new(""),
            identity: Default::default(),
        })
    }

    #[test]
    fn every_key_lands_in_the_source() {
        let e = build(
            "region = \"eu-west-1\"\nprofile = \"ci\"\nrole_arn = \"arn:aws:iam::111111111111:role/pull\"\nexternal_id = \"x\"\nregistry_ids = [\"111111111111\"]\nendpoint = \"https://vpce.example\"\n",
        )
        .unwrap();
        assert_eq!(e.region.as_deref(), Some("eu-west-1"));
        assert_eq!(e.identity.profile.as_deref(), Some("ci"));
        let role = e.identity.assume_role.as_ref().unwrap();
        assert_eq!(role.session_name, crate::identity::aws::DEFAULT_SESSION_NAME);
        assert_eq!(role.external_id.as_deref(), Some("x"));
        assert_eq!(e.registry_ids, ["111111111111"]);
        assert_eq!(e.endpoint.as_deref(), Some("https://vpce.example"));
        assert_eq!(
            build("").unwrap(),
            EcrSource {
                role_annotation: ROLE_ANNOTATION.into(),
                ..EcrSource::default()
            }
        );
    }

    #[test]
    fn errors_name_their_key() {
        for (keys, key) in [
            ("region = \"eu-west\"\n", "region"),
            ("external_id = \"x\"\n", "external_id"),
            ("registry_ids = [\"1\"]\n", "registry_ids"),
            ("registry_ids = \"111111111111\"\n", "registry_ids"),
            ("endpoint = \"ftp://x\"\n", "endpoint"),
            ("path = \"/x\"\n", "path"),
        ] {
            let e = build(keys).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{keys}: {e:?}");
        }
    }
}
