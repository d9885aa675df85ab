//! The node-installer image as an OCI image layout (`target/dist/oci/`), made without a
//! container engine: one gzip layer (the two binaries, the installer scripts and their
//! entrypoint, the examples, and a static BusyBox for the shell and tools `install.sh`
//! uses), its config, a manifest, and `index.json` tagging it with the version, as the OCI
//! image and layout specifications lay them out. Every blob is named by its SHA-256 and
//! made from the commit alone (times from the release's epoch).

use std::path::Path;
use std::process::Command;

use crate::Release;
use crate::archive::{Tree, gzip, sha256_hex};

/// Where Debian's busybox-static installs its one static binary.
const BUSYBOX: &str = "/bin/busybox";
const BIN_DIR: &str = "usr/libexec/kubelet-credential-providers";
const SCRIPTS: &str = "usr/share/pullcred";

/// The image's root filesystem.
pub fn rootfs(release: &Release, files: &Tree) -> Result<Tree, String> {
    let busybox = std::fs::read(BUSYBOX)
        .map_err(|e| format!("{BUSYBOX}: {e} (apt-get install busybox-static)"))?;
    if !is_static_elf(&busybox) {
        return Err(format!(
            "{BUSYBOX} is not a static executable (Debian's busybox-static, not busybox, has one)"
        ));
    }
    let mut tree = Tree::default();
    tree.file("bin/busybox", 0o755, busybox);
    // Every applet under its name, as `busybox --install -s` would link them.
    let out = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .map_err(|e| format!("{BUSYBOX} --list: {e}"))?;
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let applet = applet.trim();
        if !applet.is_empty() && applet != "busybox" && !applet.contains('/') {
            tree.link(&format!("bin/{applet}"), "busybox");
        }
    }
    for (path, (mode, bytes)) in files.iter() {
        let target = match path.as_str() {
            "pullcred" | "pullcred-mint" => format!("{BIN_DIR}/{path}"),
            "install.sh" | "uninstall.sh" => format!("{SCRIPTS}/{path}"),
            p if p.starts_with("config-examples/") => {
                format!(
                    "usr/share/doc/pullcred/examples/{}",
                    &p["config-examples/".len()..]
                )
            }
            _ => continue,
        };
        tree.file(&target, *mode, bytes.clone());
    }
    tree.link(&format!("{BIN_DIR}/docker-credential-pullcred"), "pullcred");
    tree.file(
        &format!("{SCRIPTS}/entrypoint.sh"),
        0o755,
        release.read("deploy/entrypoint.sh")?,
    );
    // The mount points and the scratch dir the scripts use.
    for dir in ["host", "config", "tmp"] {
        tree.file(&format!("{dir}/.keep"), 0o644, Vec::new());
    }
    Ok(tree)
}

/// Writes the layout of `rootfs` under `dir`, tagged `release.version`.
pub fn layout(release: &Release, rootfs: &Tree, dir: &Path) -> Result<(), String> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| format!("{}: {e}", blobs.display()))?;
    let put = |bytes: &[u8]| -> Result<(String, usize), String> {
        let digest = sha256_hex(bytes);
        std::fs::write(blobs.join(&digest), bytes).map_err(|e| format!("blob {digest}: {e}"))?;
        Ok((format!("sha256:{digest}"), bytes.len()))
    };
    let tar = rootfs.tar(release.epoch, false)?;
    let diff_id = format!("sha256:{}", sha256_hex(&tar));
    let (layer, layer_size) = put(&gzip(&tar)?)?;
    let created = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(release.epoch),
    )
    .to_string();
    let v = &release.version;
    let config = serde_json::json!({
        "created": created,
        "architecture": release.deb_arch()?,
        "os": "linux",
        "config": {
            "Entrypoint": ["/bin/sh", format!("/{SCRIPTS}/entrypoint.sh")],
            "Env": [format!("PATH=/{BIN_DIR}:/bin")],
            "WorkingDir": "/",
            "Labels": {
                "org.opencontainers.image.title": "pullcred node installer",
                "org.opencontainers.image.version": v,
                "org.opencontainers.image.licenses": "Apache-2.0",
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "cargo xtask dist"}],
    });
    let (config_digest, config_size) =
        put(&serde_json::to_vec(&config).map_err(|e| e.to_string())?)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer,
            "size": layer_size,
        }],
        "annotations": {
            "org.opencontainers.image.version": v,
            "org.opencontainers.image.created": created,
        },
    });
    let (manifest_digest, manifest_size) =
        put(&serde_json::to_vec(&manifest).map_err(|e| e.to_string())?)?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "platform": {"architecture": release.deb_arch()?, "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": v},
        }],
    });
    let write = |name: &str, value: &serde_json::Value| {
        std::fs::write(
            dir.join(name),
            serde_json::to_vec(value).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("{name}: {e}"))
    };
    write("index.json", &index)?;
    write(
        "oci-layout",
        &serde_json::json!({"imageLayoutVersion": "1.0.0"}),
    )
}

/// Whether `elf` is a 64-bit little-endian executable with no interpreter (`PT_INTERP`):
/// one that runs in an image with no shared libraries.
fn is_static_elf(elf: &[u8]) -> bool {
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum as usize).all(|i| {
        let at = phoff as usize + i * phentsize as usize;
        u32_at(at).is_some_and(|kind| kind != 3)
    })
}
