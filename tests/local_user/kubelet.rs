//! The kubelet-config readers (`kubelet-config --merge FILE`, `config check --kubelet FILE|DIR`)
//! take what they are pointed at: a FIFO or a device there is refused without blocking or
//! reading without end.

use std::time::{Duration, Instant};

use super::plant_fifo;
use crate::support::{Fixture, run};

#[test]
fn unbounded_and_blocking_files_are_refused_at_once() {
    let fx = Fixture::new("static");
    let start = Instant::now();
    run(
        fx.cmd().args(["kubelet-config", "--merge", "/dev/zero"]),
        b"",
    )
    .assert_error("/dev/zero: not a regular file");
    let fifo = fx.path("fifo.yaml");
    plant_fifo(&fifo);
    run(fx.cmd().args(["kubelet-config", "--merge"]).arg(&fifo), b"")
        .assert_error("fifo.yaml: not a regular file");
    let dir = fx.path("kubelet.d");
    std::fs::create_dir(&dir).unwrap();
    plant_fifo(&dir.join("a.yaml"));
    let out = run(
        fx.cmd()
            .args(["config", "check", "--no-files", "--kubelet"])
            .arg(&dir),
        b"",
    );
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(
        out.stdout.contains("a.yaml: not a regular file"),
        "{}",
        out.stdout
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}
