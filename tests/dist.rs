//! The release (`cargo xtask dist`): each artifact unpacked and checked, installed and
//! removed by the tools a node has (sh, dpkg, rpm), and made twice to the same bytes.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::install::{node, snapshot};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `cargo xtask dist --no-build` on the release binaries tests/run.sh built (the xtask in a
/// target dir of its own: this test's cargo holds the main one's lock); every file made.
fn dist() -> BTreeMap<String, Vec<u8>> {
    let release = repo().join("target/x86_64-unknown-linux-gnu/release/pullcred");
    assert!(
        release.exists(),
        "no release build at {} (tests/run.sh builds it: cargo build --release --locked)",
        release.display()
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    output(
        Command::new(cargo)
            .current_dir(repo())
            .env("CARGO_TARGET_DIR", repo().join("target/xtask"))
            .env_remove("SOURCE_DATE_EPOCH")
            .args(["xtask", "dist", "--no-build"]),
    );
    let dir = repo().join("target/dist");
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.clone()];
    while let Some(d) = pending.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                pending.push(p);
            } else {
                let rel = p.strip_prefix(&dir).unwrap().display().to_string();
                files.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    files
}

/// What a binary says of itself.
fn version_of(binary: &Path) -> String {
    output(Command::new(binary).arg("version"))
}

#[test]
fn the_release_is_complete_installable_and_made_twice_to_the_same_bytes() {
    let first = dist();
    let v = env!("CARGO_PKG_VERSION");
    let archive = format!("pullcred-{v}-x86_64-linux.tar.gz");
    let deb = format!("pullcred_{v}_amd64.deb");
    let rpm = format!("pullcred-{v}.x86_64.rpm");
    let sbom = format!("pullcred-{v}.cdx.json");
    // Everything but the OCI layout's blobs, which are named by their digests.
    let mut names: Vec<&str> = first
        .keys()
        .map(String::as_str)
        .filter(|n| !n.starts_with("oci/blobs/"))
        .collect();
    names.sort();
    let mut want = vec![
        archive.as_str(),
        deb.as_str(),
        rpm.as_str(),
        sbom.as_str(),
        "SHA256SUMS",
        "oci/index.json",
        "oci/oci-layout",
    ];
    want.sort();
    assert_eq!(names, want);

    // Reproducible: the same commit, made again, is the same bytes.
    let second = dist();
    for (name, bytes) in &first {
        assert!(second[name] == *bytes, "{name} differs when made twice");
    }

    let dist_dir = repo().join("target/dist");
    // Every other file is listed, with its checksum, relative to the dir.
    let sums = String::from_utf8(first["SHA256SUMS"].clone()).unwrap();
    assert_eq!(sums.lines().count(), first.len() - 1, "{sums}");
    output(Command::new("sha256sum").current_dir(&dist_dir).args([
        "--check",
        "--strict",
        "SHA256SUMS",
    ]));

    // The archive: sorted entries, root's, the binaries and scripts executable.
    let listing = output(Command::new("tar").arg("tzvf").arg(dist_dir.join(&archive)));
    let paths: Vec<&str> = listing
        .lines()
        .map(|l| l.split_whitespace().nth(5).unwrap())
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "entries in order");
    assert!(
        listing.lines().all(|l| l.contains(" root/root ")),
        "{listing}"
    );
    for (path, mode) in [
        ("pullcred", "-rwxr-xr-x"),
        ("pullcred-mint", "-rwxr-xr-x"),
        ("install.sh", "-rwxr-xr-x"),
        ("uninstall.sh", "-rwxr-xr-x"),
        ("README.md", "-rw-r--r--"),
        ("LICENSE", "-rw-r--r--"),
        ("config-examples/quickstart/config.toml", "-rw-r--r--"),
        ("docker-credential-pullcred -> pullcred", "lrwxrwxrwx"),
    ] {
        let full = format!("pullcred-{v}/{path}");
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with(mode) && l.ends_with(&full)),
            "{full} {mode}:\n{listing}"
        );
    }

    // Unpacked, it installs on a node with no cargo and no source tree, and uninstalls.
    let unpacked = tempfile::tempdir().unwrap();
    output(
        Command::new("tar")
            .arg("xzf")
            .arg(dist_dir.join(&archive))
            .arg("-C")
            .arg(unpacked.path()),
    );
    let top = unpacked.path().join(format!("pullcred-{v}"));
    let built = Path::new(env!("CARGO_BIN_EXE_pullcred"));
    assert_eq!(
        version_of(&top.join("pullcred")),
        version_of(built),
        "the release binaries are this commit's (rebuild them: cargo build --release --locked)"
    );
    install_and_uninstall(&top, &top.join("pullcred"));

    // The .deb: installed into a throwaway root by dpkg, then purged leaving nothing.
    let dpkg_root = tempfile::tempdir().unwrap();
    let admin = dpkg_root.path().join("var/lib/dpkg");
    for d in ["info", "updates", "triggers"] {
        fs::create_dir_all(admin.join(d)).unwrap();
    }
    fs::write(admin.join("status"), "").unwrap();
    fs::write(admin.join("available"), "").unwrap();
    let dpkg = |args: &[&str]| {
        output(
            Command::new("dpkg")
                .arg(format!("--root={}", dpkg_root.path().display()))
                .arg("--log=/dev/null")
                .arg("--force-script-chrootless")
                .args(args),
        )
    };
    dpkg(&["--install", dist_dir.join(&deb).to_str().unwrap()]);
    let bin = dpkg_root
        .path()
        .join("usr/libexec/kubelet-credential-providers");
    assert_eq!(
        fs::read_link(bin.join("docker-credential-pullcred")).unwrap(),
        Path::new("pullcred")
    );
    for name in ["pullcred", "pullcred-mint"] {
        let mode = fs::metadata(bin.join(name)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755, "{name}");
    }
    assert!(
        dpkg_root
            .path()
            .join("usr/share/doc/pullcred/examples/quickstart/config.toml")
            .exists()
    );
    assert!(
        dpkg_root
            .path()
            .join("usr/share/pullcred/install.sh")
            .exists()
    );
    assert!(
        !dpkg_root.path().join("etc").exists(),
        "no kubelet or pullcred config written"
    );
    // The documented one-liner wires a node from the package's own files.
    install_and_uninstall(
        &dpkg_root.path().join("usr/share/pullcred"),
        &bin.join("pullcred"),
    );
    dpkg(&["--purge", "pullcred"]);
    assert_eq!(
        files_outside(dpkg_root.path(), "var/lib/dpkg"),
        Vec::<String>::new()
    );

    // The .rpm: the same payload, installed by rpm into a throwaway root and erased.
    let list = output(
        Command::new("rpm")
            .args(["-qpl", "--nosignature"])
            .arg(dist_dir.join(&rpm)),
    );
    for path in [
        "/usr/libexec/kubelet-credential-providers/pullcred",
        "/usr/libexec/kubelet-credential-providers/pullcred-mint",
        "/usr/libexec/kubelet-credential-providers/docker-credential-pullcred",
        "/usr/share/pullcred/install.sh",
        "/usr/share/doc/pullcred/examples/quickstart/config.toml",
    ] {
        assert!(list.lines().any(|l| l == path), "{path} in\n{list}");
    }
    assert!(!list.lines().any(|l| l.starts_with("/etc")), "{list}");

    // The node-installer image: an OCI layout that skopeo and umoci read, tagged with the
    // version, linux/amd64, its root filesystem the binaries and at most 16 MiB more.
    let layout = format!("{}:{v}", dist_dir.join("oci").display());
    let inspected: serde_json::Value = serde_json::from_str(&output(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{layout}")),
    ))
    .unwrap();
    assert_eq!(inspected["Architecture"], "amd64", "{inspected}");
    assert_eq!(inspected["Os"], "linux", "{inspected}");
    let bundle = tempfile::tempdir().unwrap();
    let unpacked_image = bundle.path().join("bundle");
    output(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image", &layout])
            .arg(&unpacked_image),
    );
    let rootfs = unpacked_image.join("rootfs");
    let bin = rootfs.join("usr/libexec/kubelet-credential-providers");
    assert_eq!(
        version_of(&bin.join("pullcred")),
        version_of(built),
        "the image's binaries are this commit's"
    );
    let size = |dir: &Path| -> u64 {
        let mut total = 0;
        let mut pending = vec![dir.to_path_buf()];
        while let Some(d) = pending.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let meta = e.path().symlink_metadata().unwrap();
                if meta.is_dir() {
                    pending.push(e.path());
                } else if meta.is_file() {
                    total += meta.len();
                }
            }
        }
        total
    };
    let binaries = fs::metadata(bin.join("pullcred")).unwrap().len()
        + fs::metadata(bin.join("pullcred-mint")).unwrap().len();
    let rest = size(&rootfs) - binaries;
    assert!(
        rest <= 16 << 20,
        "the image holds {rest} bytes beside the binaries"
    );
    node_installer(&rootfs);

    // The SBOM: the binaries' runtime crates at their Cargo.lock versions; no dev crate.
    let bom: serde_json::Value = serde_json::from_slice(&first[&sbom]).unwrap();
    assert_eq!(bom["bomFormat"], "CycloneDX");
    let purls: Vec<&str> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["purl"].as_str().unwrap())
        .collect();
    let lock: toml::Table =
        toml::from_str(&fs::read_to_string(repo().join("Cargo.lock")).unwrap()).unwrap();
    let locked = |name: &str| {
        lock["package"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["version"].as_str())
            .unwrap()
            .to_string()
    };
    for runtime in ["serde_json", "toml", "rustix", "aws-sdk-ecr", "reqwest"] {
        let purl = format!("pkg:cargo/{runtime}@{}", locked(runtime));
        assert!(purls.contains(&purl.as_str()), "{purl}");
    }
    for dev_only in ["proptest", "rcgen", "xtask", "rpm"] {
        assert!(
            !purls
                .iter()
                .any(|p| p.starts_with(&format!("pkg:cargo/{dev_only}@"))),
            "{dev_only} is not in the binaries"
        );
    }
}

/// `scripts`' install.sh wires a fake kubeadm node (no cargo on `PATH`) with `front` as its
/// binary and the quickstart example, and its uninstall.sh undoes it to the byte.
fn install_and_uninstall(scripts: &Path, front: &Path) {
    let root = node("kubeadm-debian");
    let before = snapshot(root.path());
    let script = |name: &str, args: &[&str]| {
        output(
            Command::new("sh")
                .arg(scripts.join(name))
                .args(args)
                .env("DESTDIR", root.path())
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .env_remove("PULLCRED_CONFIG"),
        )
    };
    let out = script(
        "install.sh",
        &["--example", "quickstart", "--kubelet-version", "1.35"],
    );
    let bin = root
        .path()
        .join("usr/local/libexec/kubelet-credential-providers");
    assert_eq!(
        fs::read(bin.join("pullcred")).unwrap(),
        fs::read(front).unwrap(),
        "{out}"
    );
    assert!(
        root.path().join("etc/pullcred/config.toml").exists(),
        "{out}"
    );
    // The front again, under the docker credential helper's name.
    assert_eq!(
        fs::read(bin.join("docker-credential-pullcred")).unwrap(),
        fs::read(front).unwrap(),
        "{out}"
    );
    script("uninstall.sh", &[]);
    assert_eq!(
        snapshot(root.path()),
        before,
        "uninstall.sh undid the install"
    );
}

/// The image's entrypoint, run from its unpacked root filesystem with only the image's own
/// BusyBox on `PATH`, against a fake kubeadm node's root as the DaemonSet mounts it: it
/// installs, changes nothing the second time, takes a new config without `--force`, and in
/// uninstall mode leaves the node as it was.
fn node_installer(rootfs: &Path) {
    let host = node("kubeadm-debian");
    let before = snapshot(host.path());
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("config.toml");
    fs::write(
        &config,
        fs::read(repo().join("config-examples/quickstart/config.toml")).unwrap(),
    )
    .unwrap();
    let entrypoint = |mode: &str| {
        let out = Command::new(rootfs.join("bin/sh"))
            .arg(rootfs.join("usr/share/pullcred/entrypoint.sh"))
            .env_clear()
            .env("PATH", rootfs.join("bin"))
            .env("TMPDIR", config_dir.path())
            .env("PULLCRED_HOST", host.path())
            .env("PULLCRED_CONFIG_FILE", &config)
            .env("PULLCRED_MODE", mode)
            .env("PULLCRED_KUBELET_VERSION", "1.35")
            .env("PULLCRED_ONCE", "true")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{mode}: {text}");
        text
    };
    let first = entrypoint("install");
    let installed = host
        .path()
        .join("usr/local/libexec/kubelet-credential-providers/pullcred");
    assert_eq!(
        fs::read(&installed).unwrap(),
        fs::read(rootfs.join("usr/libexec/kubelet-credential-providers/pullcred")).unwrap(),
        "{first}"
    );
    // Every file written is logged.
    assert!(first.contains("wrote /etc/pullcred/config.toml"), "{first}");
    assert!(
        first.contains("pullcred-node-installer: installed"),
        "{first}"
    );
    let again = entrypoint("install");
    assert!(
        !again.contains("  wrote "),
        "a second pass writes nothing: {again}"
    );
    // A changed ConfigMap: the config it wrote is replaced, no --force needed.
    fs::write(&config, "deadline = \"15s\"\n").unwrap();
    let changed = entrypoint("install");
    assert!(
        changed.contains("wrote /etc/pullcred/config.toml"),
        "{changed}"
    );
    assert_eq!(
        fs::read_to_string(host.path().join("etc/pullcred/config.toml")).unwrap(),
        "deadline = \"15s\"\n"
    );
    entrypoint("uninstall");
    assert_eq!(
        snapshot(host.path()),
        before,
        "uninstall mode undid the install"
    );
}

/// Regular files under `root` but below `except`.
fn files_outside(root: &Path, except: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel.starts_with(except) {
                continue;
            }
            if p.is_dir() {
                pending.push(p);
            } else {
                out.push(rel);
            }
        }
    }
    out
}
