//! The unprivileged local user against the binaries: what another account on the node can
//! plant (symlinks, FIFOs, hard links in every directory pullcred writes; files it owns in
//! every place pullcred reads; a process named `kubelet`; crafted URLs) and what must never
//! follow from it: nothing outside pullcred's own directories changes, nothing of theirs
//! runs, no secret is printed, and every exec ends within its deadline. One submodule per
//! surface; the helpers here are the attacker's moves.

// Each submodule uses the moves it needs.
#![allow(dead_code)]

mod aws;
mod config;
mod docker_config;
mod doctor;
mod helpers;
mod install;
mod kubelet;
mod metrics;
mod secrets;
mod urls;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// The account that plays the attacker: an ordinary user, never root.
pub const OTHER_UID: u32 = 1000;

/// Makes `path` (file or directory, not followed if a link) the other user's.
pub fn give_to_other(path: &Path) {
    std::os::unix::fs::lchown(path, Some(OTHER_UID), Some(OTHER_UID))
        .unwrap_or_else(|e| panic!("lchown {}: {e} (the tests run as root)", path.display()));
}

/// A file the other user wrote: owned by it, with `mode`.
pub fn plant_file(path: &Path, text: &str, mode: u32) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    give_to_other(path);
}

/// A symlink the other user planted at `link`, pointing at `target`.
pub fn plant_symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
    give_to_other(link);
}

/// A FIFO the other user planted at `path` (opening it for reading would block).
pub fn plant_fifo(path: &Path) {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o666),
    )
    .unwrap();
    give_to_other(path);
}

/// A root-only file that must come out of every test as it went in: its bytes, owner and
/// mode. `check` asserts that.
pub struct Victim {
    path: std::path::PathBuf,
    bytes: Vec<u8>,
    uid: u32,
    mode: u32,
}

impl Victim {
    pub fn new(path: &Path, text: &str) -> Self {
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
        let meta = fs::metadata(path).unwrap();
        Victim {
            path: path.into(),
            bytes: text.as_bytes().to_vec(),
            uid: meta.uid(),
            mode: meta.mode() & 0o7777,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn check(&self) {
        let meta = fs::symlink_metadata(&self.path).unwrap();
        assert!(
            meta.is_file(),
            "{} is no longer a file",
            self.path.display()
        );
        assert_eq!(
            meta.uid(),
            self.uid,
            "{}: owner changed",
            self.path.display()
        );
        assert_eq!(
            meta.mode() & 0o7777,
            self.mode,
            "{}: mode changed",
            self.path.display()
        );
        assert_eq!(
            fs::read(&self.path).unwrap(),
            self.bytes,
            "{}: changed",
            self.path.display()
        );
    }
}
