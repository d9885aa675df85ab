//! Against a real registry: the credentials pullcred returns must let `skopeo` in, and the
//! registry must turn away wrong ones.

use crate::support::registry::Registry;
use crate::support::{Fixture, single_auth};

#[test]
fn skopeo_pulls_with_the_credentials_pullcred_returns() {
    let registry = Registry::start("puller", "s3cret-registry-pw", "team/app", "v1");
    let fx = Fixture::with_vars("registry", &[("@HOST@", &registry.host)]);
    let image = format!("{}/team/app:v1", registry.host);

    let (key, user, password) = single_auth(&fx.plugin(&image).response());
    assert_eq!(key, registry.host);

    let ok = registry.inspect(&image, Some((&user, &password)));
    assert!(
        ok.status.success(),
        "skopeo refused pullcred's credentials: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(manifest["Layers"].as_array().map(Vec::len), Some(1));

    // The registry really checks: a wrong password and no credentials are refused.
    let wrong = registry.inspect(&image, Some((&user, "not-the-password")));
    assert!(!wrong.status.success(), "wrong credentials were accepted");
    let anonymous = registry.inspect(&image, None);
    assert!(!anonymous.status.success(), "anonymous pull was accepted");
}
