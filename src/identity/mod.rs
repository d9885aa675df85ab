//! The clouds' identities, shared by every source of a cloud: AWS credentials, Google
//! access tokens, Entra ID tokens. A registry source and a secret-store source of the same
//! cloud use the same chains and read the same rule keys; no source imports another.

pub mod aws;
pub mod azure;
pub mod google;
