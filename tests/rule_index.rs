//! The rule index a cache hit reads instead of the whole config: never stale, whatever the
//! edit, and never trusted unless only pullcred could have written it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{Run, V1, pullcred, request, run, single_auth};

/// The size from which a config is indexed (4 KiB: docs/architecture.md).
const INDEXED_SIZE: usize = 4096;

/// A node with a config of `static` rules, each answering its own username.
struct Node {
    home: tempfile::TempDir,
}

impl Node {
    fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        fs::write(home.path().join("pw"), "index-pw\n").unwrap();
        fs::set_permissions(home.path().join("pw"), fs::Permissions::from_mode(0o600)).unwrap();
        Node { home }
    }

    fn config_path(&self) -> PathBuf {
        self.home.path().join("config.toml")
    }

    /// A config text: one rule per (pattern, username), after a comment that makes it as
    /// large as a config of many rules (a small one is read whole, never indexed).
    fn text(&self, rules: &[(&str, &str)]) -> String {
        let padding = format!("# {}\n", "-".repeat(INDEXED_SIZE));
        let rules: String = rules
            .iter()
            .map(|(pattern, user)| {
                format!(
                    "[[registry]]\nmatch = [\"{pattern}\"]\nsource = \"static\"\nusername = \"{user}\"\npassword_file = \"{}\"\n",
                    self.home.path().join("pw").display()
                )
            })
            .collect();
        padding + &rules
    }

    fn write(&self, text: &str) {
        fs::write(self.config_path(), text).unwrap();
        fs::set_permissions(self.config_path(), fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// Waits until the config's last change is old enough to be indexed, and pulls once so
    /// that the index is written.
    fn settle(&self, image: &str) {
        std::thread::sleep(Duration::from_millis(1100));
        self.pull(image).response();
        assert!(self.index().is_some(), "an index once the config settled");
    }

    fn pull(&self, image: &str) -> Run {
        run(
            pullcred(self.home.path()).env("PULLCRED_CONFIG", self.config_path()),
            &request(V1, image),
        )
    }

    fn user(&self, image: &str) -> String {
        single_auth(&self.pull(image).response()).1
    }

    fn index(&self) -> Option<PathBuf> {
        fs::read_dir(self.home.path().join("cache"))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "index"))
    }
}

fn mtime(path: &Path) -> std::time::SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

fn set_mtime(path: &Path, t: std::time::SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// Each edit is seen by the very next exec, however little it leaves changed: the same size
/// and mtime within the second the index was written, a file renamed over it, an edit that
/// breaks the config (refused exactly as before: one line naming the file and line).
#[test]
fn every_edit_is_seen_by_the_next_exec() {
    let node = Node::new();
    let hosts = [("r1.example.com", "aaaa"), ("r2.example.com", "bbbb")];
    node.write(&node.text(&hosts));
    node.settle("r1.example.com/app");
    assert_eq!(node.user("r1.example.com/app"), "aaaa");

    // Same size, mtime put back: only the ctime (and the content) differ.
    let before = mtime(&node.config_path());
    node.write(&node.text(&[("r1.example.com", "cccc"), hosts[1]]));
    set_mtime(&node.config_path(), before);
    assert_eq!(node.user("r1.example.com/app"), "cccc");

    // Replaced by rename, with the same size and mtime.
    node.settle("r1.example.com/app");
    let before = mtime(&node.config_path());
    let next = node.home.path().join("next.toml");
    fs::write(&next, node.text(&[("r1.example.com", "dddd"), hosts[1]])).unwrap();
    fs::set_permissions(&next, fs::Permissions::from_mode(0o600)).unwrap();
    set_mtime(&next, before);
    fs::rename(&next, node.config_path()).unwrap();
    assert_eq!(node.user("r1.example.com/app"), "dddd");

    // Broken by the edit, same size: refused as a config read whole is.
    node.settle("r1.example.com/app");
    let good = fs::read_to_string(node.config_path()).unwrap();
    let broken = good.replacen("source = \"static\"", "source = \"static'", 1);
    assert_eq!(broken.len(), good.len());
    node.write(&broken);
    let out = node.pull("r1.example.com/app");
    out.assert_error(&format!(
        "config: {}: line 4: ",
        node.config_path().display()
    ));

    // And a rule added for a host no rule had: the next exec follows it.
    node.write(&node.text(&[("r1.example.com", "dddd"), ("r3.example.com", "eeee")]));
    assert_eq!(node.user("r3.example.com/app"), "eeee");
}

/// A config of a few rules is read whole: parsing it costs less than an index would.
#[test]
fn a_small_config_is_never_indexed() {
    let node = Node::new();
    let small: String = node
        .text(&[("r1.example.com", "aaaa")])
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(small.len() < INDEXED_SIZE);
    node.write(&small);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(node.user("r1.example.com/app"), "aaaa");
    assert_eq!(node.user("r1.example.com/app"), "aaaa");
    assert_eq!(node.index(), None);
}

/// The index is a cache dir file like an entry: trusted only when only pullcred (root) could
/// have written it. One that is corrupt, of another version, writable by others, someone
/// else's, a link or a FIFO is ignored (the config is read whole) and written anew.
#[test]
fn an_index_anyone_else_could_have_written_is_ignored_and_rebuilt() {
    let node = Node::new();
    node.write(&node.text(&[("r1.example.com", "aaaa"), ("r2.example.com", "bbbb")]));
    node.settle("r2.example.com/app");
    assert_eq!(node.user("r1.example.com/app"), "aaaa");
    assert_eq!(node.user("r2.example.com/app"), "bbbb");
    let index = node.index().unwrap();
    let good = fs::read_to_string(&index).unwrap();

    // What a planted index would do: file r1's image under a rule that answers r2's
    // cached credentials.
    let mut lines: Vec<String> = good.lines().map(str::to_string).collect();
    let r1 = lines
        .iter()
        .position(|l| l.starts_with("r1.example.com\t"))
        .unwrap();
    let poisoned_rule = format!(
        "match = [\"r1.example.com\"]\npassword_file = \"{}\"\nregistry = \"r2.example.com\"\nsource = \"static\"\nusername = \"bbbb\"\n",
        node.home.path().join("pw").display()
    );
    lines[r1] = format!(
        "r1.example.com\t{}",
        serde_json::json!([[1, poisoned_rule]])
    );
    // The header states the length of what follows it: a cut file is not an index.
    let body: usize = lines[1..].iter().map(|l| l.len() + 1).sum();
    let mut header: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    header["body"] = body.into();
    lines[0] = header.to_string();
    let poisoned = lines.join("\n") + "\n";
    let plant = |text: &str, mode: u32| {
        let _ = fs::remove_file(&index);
        fs::write(&index, text).unwrap();
        fs::set_permissions(&index, fs::Permissions::from_mode(mode)).unwrap();
    };

    // Root's own and private: it is what the hit reads (as a cache entry would be).
    plant(&poisoned, 0o600);
    assert_eq!(node.user("r1.example.com/app"), "bbbb");

    let elsewhere = node.home.path().join("planted.index");
    fs::write(&elsewhere, &poisoned).unwrap();
    fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o600)).unwrap();
    let other_version = poisoned.replacen(
        &format!("\"version\":\"{} ", env!("CARGO_PKG_VERSION")),
        "\"version\":\"0.0.0 ",
        1,
    );
    assert_ne!(other_version, poisoned);
    type Plant<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Plant)> = vec![
        ("writable by others", Box::new(|| plant(&poisoned, 0o666))),
        (
            "writable by the group",
            Box::new(|| plant(&poisoned, 0o620)),
        ),
        (
            "someone else's",
            Box::new(|| {
                plant(&poisoned, 0o600);
                std::os::unix::fs::chown(&index, Some(65534), None).unwrap();
            }),
        ),
        (
            "of another version",
            Box::new(|| plant(&other_version, 0o600)),
        ),
        (
            "corrupt",
            Box::new(|| plant("{not an index\n\u{1}\t[[", 0o600)),
        ),
        (
            "cut short",
            Box::new(|| plant(&poisoned[..poisoned.len() - 10], 0o600)),
        ),
        (
            "a link",
            Box::new(|| {
                let _ = fs::remove_file(&index);
                std::os::unix::fs::symlink(&elsewhere, &index).unwrap();
            }),
        ),
        (
            "a FIFO",
            Box::new(|| {
                let _ = fs::remove_file(&index);
                let made = std::process::Command::new("mkfifo")
                    .arg(&index)
                    .status()
                    .unwrap();
                assert!(made.success());
            }),
        ),
    ];
    for (what, plant) in cases {
        plant();
        assert_eq!(node.user("r1.example.com/app"), "aaaa", "an index {what}");
        let meta = fs::symlink_metadata(&index).unwrap();
        assert!(meta.file_type().is_file(), "{what}: written anew");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{what}");
        assert_eq!(fs::read_to_string(&index).unwrap(), good, "{what}");
    }
}
