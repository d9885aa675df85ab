//! Source `static`: secret files, their trimming and their permission checks.

use std::os::unix::fs::chown;

use crate::support::{Fixture, single_auth};

#[test]
fn trims_line_endings_and_reads_the_username_file() {
    let fx = Fixture::new("static");
    let auth = single_auth(&fx.plugin("registry.example.com/a").response());
    assert_eq!(auth.2, "s3cret-static-pw");
    let auth = single_auth(&fx.plugin("crlf.example.com/a").response());
    assert_eq!(auth.2, "s3cret-team-a-pw");
    let auth = single_auth(&fx.plugin("file-user.example.com/a").response());
    assert_eq!(
        (auth.1.as_str(), auth.2.as_str()),
        ("file-user", "s3cret-user-pw")
    );
}

#[test]
fn refuses_secret_files_others_could_write() {
    for mode in [0o620, 0o602, 0o666] {
        let fx = Fixture::new("static");
        fx.chmod("password", mode);
        let out = fx.plugin("registry.example.com/a");
        out.assert_error(&format!(
            "rule 1 (static) for registry.example.com: {}: refusing a secret file writable by group or others (mode {mode:04o})",
            fx.path("password").display()
        ));
    }
    // The username file too: whoever writes it picks the account we log in as.
    let fx = Fixture::new("static");
    fx.chmod("username", 0o666);
    fx.plugin("file-user.example.com/a")
        .assert_error("username: refusing a secret file writable");
}

#[test]
fn refuses_secret_files_owned_by_someone_else() {
    let fx = Fixture::new("static");
    // The tests run as root (CI does); hand the file to `nobody`.
    chown(fx.path("password"), Some(65534), None).unwrap();
    fx.plugin("registry.example.com/a")
        .assert_error("password: refusing a secret file owned by uid 65534 (want 0)");
}

#[test]
fn warns_when_others_can_read_the_secret() {
    let fx = Fixture::new("static");
    fx.chmod("password", 0o644);
    let out = fx.plugin("registry.example.com/a");
    assert_eq!(single_auth(&out.response()).2, "s3cret-static-pw");
    assert!(
        out.stderr
            .contains("secret file is readable by others (mode 0644)"),
        "{:?}",
        out.stderr
    );
}

#[test]
fn missing_and_empty_secret_files_are_errors() {
    let fx = Fixture::new("static");
    fx.plugin("missing.example.com/a").assert_error(&format!(
        "rule 4 (static) for missing.example.com: {}: No such file or directory",
        fx.path("does-not-exist").display()
    ));
    fx.plugin("empty.example.com/a")
        .assert_error("empty.password: empty password");
}
