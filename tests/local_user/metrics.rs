//! The metrics textfile dir, which node_exporter's user usually owns: whatever that user
//! plants there (links at the lock's and the temp files' names, a FIFO as the lock, a link,
//! FIFO or huge file at the textfile's own name, the dir itself as a link), root's mint
//! changes nothing outside the dir, creates nothing elsewhere, reads nothing it links to, and
//! answers promptly. A dir anyone may write (no sticky bit) is refused outright.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use super::{OTHER_UID, Victim, give_to_other, plant_fifo, plant_file, plant_symlink};
use crate::metrics::{StaticNode, parse};
use crate::support::single_auth;

/// Well within the config's 10 s deadline: what a mint takes, plus the metrics' short wait.
const PROMPT: Duration = Duration::from_secs(3);
const IMAGE: &str = "registry.example.com/app:1";
const LOCK: &str = ".pullcred.prom.lock";

/// A node whose textfile dir is the other user's, mode 0755: the usual set-up.
fn usual_node() -> StaticNode {
    let node = StaticNode::new("");
    fs::create_dir(node.dir()).unwrap();
    fs::set_permissions(node.dir(), fs::Permissions::from_mode(0o755)).unwrap();
    give_to_other(&node.dir());
    node
}

/// A root-only file outside the textfile dir, and a root-owned dir in which nothing may
/// appear; both in a root-only dir the other user cannot otherwise reach.
fn targets(node: &StaticNode) -> (Victim, std::path::PathBuf) {
    let private = node.fx.path("private");
    fs::create_dir(&private).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    let victim = Victim::new(
        &private.join("victim"),
        "pullcred_mints_total{source=\"static\",registry=\"s3cret-victim\"} 7\nroot only\n",
    );
    let etc = node.fx.path("etc");
    fs::create_dir(&etc).unwrap();
    fs::set_permissions(&etc, fs::Permissions::from_mode(0o755)).unwrap();
    (victim, etc)
}

fn assert_empty(dir: &Path) {
    let names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(names.is_empty(), "created in {}: {names:?}", dir.display());
}

/// A mint answered with the fixture's credential, promptly.
fn answered(node: &StaticNode) -> String {
    let (out, took) = node.exec(IMAGE);
    assert_eq!(single_auth(&out.response()).2, "s3cret-static-pw");
    assert!(took < PROMPT, "took {took:?}: {out:#?}");
    out.stderr
}

/// The textfile is root's regular 0644 file, counting the mints, with nothing of `victim`.
fn written(node: &StaticNode, mints: u32) {
    let meta = fs::symlink_metadata(node.textfile()).unwrap();
    assert!(meta.is_file(), "{meta:?}");
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o644));
    let rows = parse(&node.textfile());
    let want = format!(
        "counter pullcred_mints_total{{registry=registry.example.com,source=static}} {mints}"
    );
    assert!(rows.contains(&want), "want {want:?} in {rows:#?}");
    assert!(
        !fs::read_to_string(node.textfile())
            .unwrap()
            .contains("s3cret-victim"),
        "the victim's lines were read into the textfile"
    );
}

/// The pids the next processes will likely get (the next few thousand, wrapping).
fn next_pids(count: u32) -> Vec<u32> {
    let read = |p: &str| -> u32 { fs::read_to_string(p).unwrap().trim().parse().unwrap() };
    let last = read("/proc/sys/kernel/ns_last_pid");
    let max = read("/proc/sys/kernel/pid_max");
    (1..=count)
        .map(|i| {
            let pid = last + i;
            if pid >= max { pid - max + 300 } else { pid }
        })
        .collect()
}

#[test]
fn links_at_the_temp_names_for_the_next_pids_change_and_create_nothing() {
    let node = usual_node();
    let (victim, etc) = targets(&node);
    // First every temp name points at the root-only file, then into the root-owned dir.
    for round in 0..2 {
        for pid in next_pids(3000) {
            let link = node.dir().join(format!(".pullcred.prom.{pid}.tmp"));
            let _ = fs::remove_file(&link);
            let target = match round {
                0 => victim.path().to_path_buf(),
                _ => etc.join(format!("created-{pid}")),
            };
            plant_symlink(&target, &link);
        }
        let stderr = answered(&node);
        assert!(!stderr.contains("metrics"), "{stderr}");
        victim.check();
        assert_empty(&etc);
        written(&node, round + 1);
        // The next mint is another process: let it mint again.
        fs::remove_dir_all(node.fx.path("cache")).unwrap();
    }
}

#[test]
fn a_link_as_the_lock_skips_the_write_and_creates_nothing() {
    let node = usual_node();
    let (victim, etc) = targets(&node);
    for target in [etc.join("lock"), victim.path().to_path_buf()] {
        let lock = node.dir().join(LOCK);
        let _ = fs::remove_file(&lock);
        plant_symlink(&target, &lock);
        let stderr = answered(&node);
        victim.check();
        assert_empty(&etc);
        assert!(
            stderr.contains("metrics") && stderr.contains(LOCK),
            "one warning naming the lock: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!node.textfile().exists(), "this write is skipped");
        fs::remove_dir_all(node.fx.path("cache")).unwrap();
    }
}

#[test]
fn a_fifo_or_a_held_lock_skips_the_write_without_delaying_the_answer() {
    let node = usual_node();
    plant_fifo(&node.dir().join(LOCK));
    let stderr = answered(&node);
    assert!(stderr.contains("metrics"), "{stderr}");
    assert!(!node.textfile().exists());

    // The lock as a regular file the other user holds locked.
    fs::remove_file(node.dir().join(LOCK)).unwrap();
    plant_file(&node.dir().join(LOCK), "", 0o644);
    let held = fs::File::open(node.dir().join(LOCK)).unwrap();
    held.lock().unwrap();
    fs::remove_dir_all(node.fx.path("cache")).unwrap();
    let stderr = answered(&node);
    assert!(
        stderr.contains("metrics") && stderr.contains("busy"),
        "{stderr}"
    );
    assert!(!node.textfile().exists());
    drop(held);
    // Released: the next mint writes.
    fs::remove_dir_all(node.fx.path("cache")).unwrap();
    answered(&node);
    written(&node, 1);
}

#[test]
fn a_link_fifo_or_foreign_or_huge_file_at_the_textfile_is_replaced_never_read() {
    let node = usual_node();
    let (victim, etc) = targets(&node);
    type Plant = fn(&StaticNode, &Victim, &Path);
    let cases: [(&str, Plant); 5] = [
        ("a link to a root-only file", |n, v, _| {
            plant_symlink(v.path(), &n.textfile())
        }),
        ("a dangling link into a root dir", |n, _, etc| {
            plant_symlink(&etc.join("pullcred.prom"), &n.textfile())
        }),
        ("a FIFO", |n, _, _| plant_fifo(&n.textfile())),
        ("the other user's file", |n, _, _| {
            plant_file(
                &n.textfile(),
                "pullcred_mints_total{source=\"static\",registry=\"registry.example.com\"} 41\n",
                0o644,
            )
        }),
        ("a huge file of root's", |n, _, _| {
            let line =
                "pullcred_mints_total{source=\"static\",registry=\"registry.example.com\"} 41\n";
            fs::write(n.textfile(), line.repeat(20 * 1024 * 1024 / line.len())).unwrap();
        }),
    ];
    for (what, plant) in cases {
        let _ = fs::remove_file(node.textfile());
        plant(&node, &victim, &etc);
        let stderr = answered(&node);
        victim.check();
        assert_empty(&etc);
        // Counts start over: nothing of what was there is carried.
        written(&node, 1);
        assert!(stderr.lines().count() <= 1, "{what}: {stderr}");
        fs::remove_dir_all(node.fx.path("cache")).unwrap();
    }
}

#[test]
fn a_textfile_dir_that_is_a_link_is_refused() {
    let node = StaticNode::new("");
    let (victim, etc) = targets(&node);
    plant_symlink(&etc, &node.dir());
    let stderr = answered(&node);
    assert_empty(&etc);
    victim.check();
    assert!(
        stderr.contains("metrics") && stderr.contains("symlink"),
        "{stderr}"
    );
}

#[test]
fn the_textfile_dir_may_be_another_users_but_not_writable_by_all_without_the_sticky_bit() {
    // node_exporter's own dir, 0755: written, root's file in it.
    let node = usual_node();
    assert_eq!(fs::metadata(node.dir()).unwrap().uid(), OTHER_UID);
    let stderr = answered(&node);
    assert!(stderr.is_empty(), "{stderr}");
    written(&node, 1);

    // Writable by anyone, sticky (as /tmp): written.
    let node = usual_node();
    fs::set_permissions(node.dir(), fs::Permissions::from_mode(0o1777)).unwrap();
    assert!(answered(&node).is_empty());
    written(&node, 1);

    // Writable by group or others without the sticky bit: one warning, nothing written.
    for mode in [0o777, 0o775] {
        let node = usual_node();
        fs::set_permissions(node.dir(), fs::Permissions::from_mode(mode)).unwrap();
        let stderr = answered(&node);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("metrics") && stderr.contains("sticky"),
            "{mode:o}: {stderr}"
        );
        assert_empty(&node.dir());
    }
}
