//! The .deb and the .rpm: the two binaries side by side in the kubelet's usual provider
//! directory, the README, licence and examples as documentation. No maintainer script and
//! no kubelet file: wiring a node stays `install.sh`'s explicit step, so upgrading the
//! package never rewrites an operator's kubelet config.

use crate::Release;
use crate::archive::{self, Tree};

/// Where both packages put the binaries.
pub const BIN_DIR: &str = "usr/libexec/kubelet-credential-providers";
/// Where both packages put the documentation, the examples in `examples/`.
pub const DOC_DIR: &str = "usr/share/doc/pullcred";
/// Where both packages put `install.sh` and `uninstall.sh`, which find the binaries and the
/// examples from there.
pub const SCRIPT_DIR: &str = "usr/share/pullcred";

const SUMMARY: &str =
    "kubelet image credential provider for ECR, Google, Azure and private registries";
const DESCRIPTION: &str = "pullcred answers the kubelet's image credential provider requests \
from its own cache or with credentials minted fresh, so that nodes and namespaces need no \
imagePullSecrets. The package wires nothing: run /usr/share/pullcred/install.sh to wire it \
into the node's kubelet.";

/// The package's payload: binaries, then documentation (the examples under `examples/`).
fn payload(files: &Tree) -> Tree {
    let mut tree = Tree::default();
    for (path, (mode, bytes)) in files.iter() {
        let to = match path.as_str() {
            "pullcred" | "pullcred-mint" => format!("{BIN_DIR}/{path}"),
            "install.sh" | "uninstall.sh" => format!("{SCRIPT_DIR}/{path}"),
            "LICENSE" => format!("{DOC_DIR}/copyright"),
            other => match other.strip_prefix("config-examples/") {
                Some(rest) => format!("{DOC_DIR}/examples/{rest}"),
                None => format!("{DOC_DIR}/{other}"),
            },
        };
        tree.file(&to, *mode, bytes.clone());
    }
    for (path, target) in files.links() {
        tree.link(&format!("{BIN_DIR}/{path}"), target);
    }
    tree
}

pub fn deb(release: &Release, files: &Tree) -> Result<Vec<u8>, String> {
    let data = payload(files);
    let installed_kib: usize = data.iter().map(|(_, (_, b))| b.len().div_ceil(1024)).sum();
    let control = format!(
        "Package: pullcred\nVersion: {}\nArchitecture: {}\nMaintainer: pullcred developers <maintainers@pullcred.invalid>\nInstalled-Size: {installed_kib}\nSection: admin\nPriority: optional\nDescription: {SUMMARY}\n {DESCRIPTION}\n",
        release.version,
        release.deb_arch()?,
    );
    let mut control_tree = Tree::default();
    control_tree.file("control", 0o644, control.into_bytes());
    let control_tar = archive::gzip(&control_tree.tar(release.epoch, true)?)?;
    let data_tar = archive::gzip(&data.tar(release.epoch, true)?)?;
    Ok(archive::ar(
        &[
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", &control_tar),
            ("data.tar.gz", &data_tar),
        ],
        release.epoch,
    ))
}

pub fn rpm(release: &Release, files: &Tree) -> Result<Vec<u8>, String> {
    let mut builder = rpm::PackageBuilder::new(
        "pullcred",
        &release.version,
        "Apache-2.0",
        release.rpm_arch(),
        SUMMARY,
    )
    .description(DESCRIPTION)
    .compression(rpm::CompressionType::Gzip)
    .source_date(release.epoch as u32)
    .build_host("reproducible");
    // The rpm crate reads each file from disk: a staging dir, its files' times set to the
    // release's.
    let stage = std::env::temp_dir().join(format!("pullcred-rpm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&stage);
    let result = (|| {
        for (path, (mode, bytes)) in payload(files).iter() {
            let on_disk = stage.join(path);
            std::fs::create_dir_all(on_disk.parent().ok_or("no parent")?)
                .map_err(|e| e.to_string())?;
            std::fs::write(&on_disk, bytes).map_err(|e| e.to_string())?;
            let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(release.epoch);
            std::fs::File::options()
                .write(true)
                .open(&on_disk)
                .and_then(|f| f.set_modified(time))
                .map_err(|e| e.to_string())?;
            let mut options = rpm::FileOptions::new(format!("/{path}"))
                .mode(rpm::FileMode::regular(*mode as u16))
                .user("root")
                .group("root");
            if path.starts_with(DOC_DIR) {
                options = options.is_doc();
            }
            builder = std::mem::replace(&mut builder, rpm::PackageBuilder::new("", "", "", "", ""))
                .with_file(&on_disk, options)
                .map_err(|e| format!("{path}: {e}"))?;
        }
        let empty = stage.join("empty");
        std::fs::write(&empty, b"").map_err(|e| e.to_string())?;
        std::fs::File::options()
            .write(true)
            .open(&empty)
            .and_then(|f| {
                f.set_modified(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(release.epoch),
                )
            })
            .map_err(|e| e.to_string())?;
        for (path, target) in payload(files).links() {
            let options = rpm::FileOptions::new(format!("/{path}"))
                .symlink(target.as_str())
                .mode(rpm::FileMode::symbolic_link(0o777))
                .user("root")
                .group("root");
            builder = std::mem::replace(&mut builder, rpm::PackageBuilder::new("", "", "", "", ""))
                .with_file(&empty, options)
                .map_err(|e| format!("{path}: {e}"))?;
        }
        let package = builder.build().map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        package.write(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    })();
    let _ = std::fs::remove_dir_all(&stage);
    result
}
