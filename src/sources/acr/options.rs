//! The rule keys of `acr`, validated into an [`AcrSource`]; the identity keys are the
//! shared Azure identity's.

use serde::Deserialize;

use super::AcrSource;
use crate::http::endpoint_allowed;
use crate::identity::azure::{Entra, Keys};
use crate::sources::{OptionError, Options};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AcrOptions {
    endpoint: Option<String>,
    #[serde(default)]
    suffixes: Vec<String>,
}

pub(super) fn from_options(options: &Options<'_>) -> Result<AcrSource, OptionError> {
    let (rest, keys) = options.split::<Keys>()?;
    let o: AcrOptions = rest.parse()?;
    let entra = Entra::from_keys(keys, options)?;
    if let Some(url) = &o.endpoint {
        endpoint_allowed(url).map_err(|why| OptionError::at("endpoint", why.to_string()))?;
    }
    let mut suffixes = Vec::new();
    for s in o.suffixes {
        let s = s.trim_start_matches('.').to_ascii_lowercase();
        is_suffix(&s).map_err(|why| OptionError::at("suffixes", format!("suffix {s:?} {why}")))?;
        suffixes.push(s);
    }
    Ok(AcrSource {
        entra,
        endpoint: o.endpoint,
        suffixes,
    })
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
