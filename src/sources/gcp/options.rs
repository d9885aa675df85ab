//! The rule keys of `gcp`: the shared Google identity's only.

use serde::Deserialize;

use super::GcpSource;
use crate::identity::google::{Google, Keys};
use crate::sources::{OptionError, Options};

/// `gcp` has no keys beyond its identity's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GcpOptions {}

pub(super) fn from_options(options: &Options<'_>) -> Result<GcpSource, OptionError> {
    let (rest, keys) = options.split::<Keys>()?;
    let _: GcpOptions = rest.parse()?;
    Ok(GcpSource {
        google: Google::from_keys(keys, options)?,
    })
}
