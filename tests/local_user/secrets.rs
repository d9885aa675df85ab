//! Secret files: not only the file but its path. A directory the other user controls on the
//! way, a link they own, a link into `/proc` or `/sys`, anything but a regular file: refused
//! before the file is read (or, for devices and FIFOs, opened).

use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::{Victim, give_to_other, plant_symlink};
use crate::support::Fixture;

#[test]
fn a_password_file_through_a_directory_the_other_user_controls_is_refused() {
    let fx = Fixture::new("static");
    let theirs = fx.path("theirs");
    fs::create_dir(&theirs).unwrap();
    fs::rename(fx.path("password"), theirs.join("password")).unwrap();
    fs::rename(theirs.join("password"), fx.path("password.real")).unwrap();
    crate::support::secret_file(&theirs.join("password"), "s3cret-static-pw\n");
    let config = fs::read_to_string(fx.path("config.toml")).unwrap().replace(
        &fx.path("password").display().to_string(),
        &theirs.join("password").display().to_string(),
    );
    fs::write(fx.path("config.toml"), config).unwrap();
    // Owned by the other user; then root's but writable by all (not sticky).
    give_to_other(&theirs);
    fx.plugin("registry.example.com/a").assert_error(&format!(
        "in the directory {}, owned by uid 1000",
        theirs.display()
    ));
    std::os::unix::fs::lchown(&theirs, Some(0), Some(0)).unwrap();
    fs::set_permissions(&theirs, fs::Permissions::from_mode(0o777)).unwrap();
    fx.plugin("registry.example.com/a")
        .assert_error("writable by group or others (mode 0777)");
    // Sticky and root's, as /tmp: fine.
    fs::set_permissions(&theirs, fs::Permissions::from_mode(0o1777)).unwrap();
    assert_eq!(
        crate::support::single_auth(&fx.plugin("registry.example.com/a").response()).2,
        "s3cret-static-pw"
    );
}

#[test]
fn links_the_other_user_owns_or_into_the_kernel_are_refused() {
    let fx = Fixture::new("static");
    let victim = Victim::new(
        &fx.path("shadow"),
        "root:$6$s3cret-shadow-hash:19000:0:99999:7:::\n",
    );
    // The other user's link, in root's directory, to a root-only file.
    fs::remove_file(fx.path("password")).unwrap();
    plant_symlink(victim.path(), &fx.path("password"));
    fx.plugin("registry.example.com/a")
        .assert_error("through the link");
    // Root's links into /proc and /sys (the caller's environment, kernel settings).
    for target in [
        "/proc/self/environ",
        "/sys/kernel/address_bits",
        "/proc/self/cmdline",
    ] {
        fs::remove_file(fx.path("password")).unwrap();
        std::os::unix::fs::symlink(target, fx.path("password")).unwrap();
        let out = fx.plugin("registry.example.com/a");
        out.assert_error("file system");
        assert!(!out.stderr.contains("PATH="), "{}", out.stderr);
    }
    victim.check();
}

#[test]
fn root_owned_link_chains_as_kubernetes_mounts_them_still_work() {
    // A projected volume: password -> ..data/password, ..data -> ..2026_12_04/.
    let fx = Fixture::new("static");
    let real = fx.path("..2026_12_04");
    fs::create_dir(&real).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o755)).unwrap();
    fs::rename(fx.path("password"), real.join("password")).unwrap();
    std::os::unix::fs::symlink("..2026_12_04", fx.path("..data")).unwrap();
    std::os::unix::fs::symlink("..data/password", fx.path("password")).unwrap();
    assert_eq!(
        crate::support::single_auth(&fx.plugin("registry.example.com/a").response()).2,
        "s3cret-static-pw"
    );
}

#[test]
fn a_device_in_a_secrets_place_is_never_opened() {
    crate::support::require_tool("strace");
    let fx = Fixture::new("static");
    fs::remove_file(fx.path("password")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", fx.path("password")).unwrap();
    let trace = fx.path("trace");
    let mut cmd = std::process::Command::new("strace");
    cmd.args(["-f", "-qq", "-e", "trace=open,openat", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_pullcred-mint"))
        .arg("--config")
        .arg(fx.path("config.toml"))
        .env("HOME", fx.dir.path())
        .env("PULLCRED_CACHE_DIR", fx.path("cache"));
    crate::support::run(
        &mut cmd,
        &crate::support::request(crate::support::V1, "registry.example.com/a"),
    )
    .assert_error("not a regular file");
    // Looked at (O_PATH), never opened for reading: opening a device can act on it.
    let trace = fs::read_to_string(trace).unwrap();
    let opened: Vec<&str> = trace
        .lines()
        .filter(|l| l.contains("password\"") || l.contains("/dev/zero"))
        .filter(|l| !l.contains("O_PATH"))
        .collect();
    assert!(opened.is_empty(), "opened for reading: {opened:?}");
}

/// In a sticky directory (as `/tmp`) others may add names, hard links to root's files
/// included (where `fs.protected_hardlinks` is off): a linked file there is refused.
#[test]
fn a_hard_link_in_a_sticky_directory_is_refused() {
    let fx = Fixture::new("static");
    let sticky = fx.path("sticky");
    fs::create_dir(&sticky).unwrap();
    fs::set_permissions(&sticky, fs::Permissions::from_mode(0o1777)).unwrap();
    fs::hard_link(fx.path("password"), sticky.join("password")).unwrap();
    let config = fs::read_to_string(fx.path("config.toml")).unwrap().replace(
        &fx.path("password").display().to_string(),
        &sticky.join("password").display().to_string(),
    );
    fs::write(fx.path("config.toml"), config).unwrap();
    fx.plugin("registry.example.com/a")
        .assert_error("hard-linked (2 links) in the sticky directory");
    // The file alone in it is fine.
    fs::remove_file(fx.path("password")).unwrap();
    assert_eq!(
        crate::support::single_auth(&fx.plugin("registry.example.com/a").response()).2,
        "s3cret-static-pw"
    );
}
