//! `cargo xtask dist`: pullcred's release, built the same way on any machine with cargo and
//! the crates in `Cargo.lock`, into `target/dist/`: the archive, the .deb and .rpm, the
//! CycloneDX SBOM and `SHA256SUMS`. Byte for byte reproducible from one commit: every time
//! is the commit's (or `SOURCE_DATE_EPOCH`'s), archive entries are sorted, owned by root
//! with fixed modes, and compressed without a time or a name in their headers.
//!
//!   cargo xtask dist              build the release binaries, then package them
//!   cargo xtask dist --no-build   package the binaries already built (CI builds once)

mod archive;
mod oci;
mod packages;
mod sbom;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use archive::Tree;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let build = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["dist"] => true,
        ["dist", "--no-build"] => false,
        _ => {
            eprintln!("usage: cargo xtask dist [--no-build]");
            return ExitCode::from(2);
        }
    };
    match dist(build) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What a release is made of, read from the workspace.
pub struct Release {
    pub root: PathBuf,
    pub version: String,
    /// The Rust target triple the binaries are built for (`.cargo/config.toml`'s, the one
    /// place it is named).
    pub target: String,
    /// Seconds since the epoch that every file of the release carries.
    pub epoch: u64,
}

impl Release {
    fn arch(&self) -> &str {
        self.target.split('-').next().unwrap_or("")
    }

    /// The architecture as Debian names it.
    pub fn deb_arch(&self) -> Result<&'static str, String> {
        match self.arch() {
            "x86_64" => Ok("amd64"),
            "aarch64" => Ok("arm64"),
            other => Err(format!("no Debian name for the architecture {other}")),
        }
    }

    pub fn rpm_arch(&self) -> &str {
        self.arch()
    }

    fn binary(&self, name: &str) -> PathBuf {
        self.root
            .join("target")
            .join(&self.target)
            .join("release")
            .join(name)
    }

    pub fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        std::fs::read(self.root.join(path)).map_err(|e| format!("{path}: {e}"))
    }
}

fn dist(build: bool) -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace root")?
        .to_path_buf();
    let metadata = sbom::metadata(&root, None)?;
    let version = metadata["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "pullcred"))
        .and_then(|p| p["version"].as_str())
        .ok_or("no pullcred package in cargo metadata")?
        .to_string();
    let release = Release {
        target: target(&root)?,
        epoch: epoch(&root)?,
        version,
        root,
    };
    if build {
        run(Command::new(cargo()).current_dir(&release.root).args([
            "build",
            "--release",
            "--locked",
            "--package",
            "pullcred",
        ]))?;
    }
    let dist = release.root.join("target/dist");
    if dist.exists() {
        std::fs::remove_dir_all(&dist).map_err(|e| format!("{}: {e}", dist.display()))?;
    }
    std::fs::create_dir_all(&dist).map_err(|e| format!("{}: {e}", dist.display()))?;

    let files = release_files(&release)?;
    let v = &release.version;
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dist.join(name), bytes).map_err(|e| format!("{name}: {e}"))
    };
    let top = format!("pullcred-{v}");
    write(
        &format!("pullcred-{v}-{}-linux.tar.gz", release.arch()),
        &files.under(&top).tar_gz(release.epoch)?,
    )?;
    write(
        &format!("pullcred_{v}_{}.deb", release.deb_arch()?),
        &packages::deb(&release, &files)?,
    )?;
    write(
        &format!("pullcred-{v}.{}.rpm", release.rpm_arch()),
        &packages::rpm(&release, &files)?,
    )?;
    write(
        &format!("pullcred-{v}.cdx.json"),
        &sbom::cyclonedx(&release)?,
    )?;
    oci::layout(&release, &oci::rootfs(&release, &files)?, &dist.join("oci"))?;
    write("SHA256SUMS", &archive::sha256sums(&dist)?)?;
    for entry in std::fs::read_dir(&dist).map_err(|e| e.to_string())? {
        println!("{}", entry.map_err(|e| e.to_string())?.path().display());
    }
    Ok(())
}

/// What every artifact ships, by its path in the archive: the two binaries, the installer,
/// the examples, the README and the licence.
fn release_files(release: &Release) -> Result<Tree, String> {
    let mut tree = Tree::default();
    for name in ["pullcred", "pullcred-mint"] {
        let path = release.binary(name);
        let bytes = std::fs::read(&path)
            .map_err(|e| format!("{}: {e} (build it, or drop --no-build)", path.display()))?;
        tree.file(name, 0o755, bytes);
    }
    // The front under a docker credential helper's name, for node tools.
    tree.link("docker-credential-pullcred", "pullcred");
    for name in ["install.sh", "uninstall.sh"] {
        tree.file(name, 0o755, release.read(&format!("install/{name}"))?);
    }
    tree.file("README.md", 0o644, release.read("README.md")?);
    tree.file("LICENSE", 0o644, release.read("LICENSE")?);
    let examples = release.root.join("config-examples");
    for path in archive::walk(&examples)? {
        let relative = path
            .strip_prefix(&release.root)
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        tree.file(&relative, 0o644, release.read(&relative)?);
    }
    Ok(tree)
}

/// The target triple `.cargo/config.toml` builds for.
fn target(root: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(root.join(".cargo/config.toml"))
        .map_err(|e| format!(".cargo/config.toml: {e}"))?;
    let config: toml::Table =
        toml::from_str(&text).map_err(|e| format!(".cargo/config.toml: {e}"))?;
    config
        .get("build")
        .and_then(|b| b.get("target"))
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or_else(|| ".cargo/config.toml names no [build] target".into())
}

/// `SOURCE_DATE_EPOCH`, else the commit's time.
fn epoch(root: &Path) -> Result<u64, String> {
    if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
        return v
            .parse()
            .map_err(|_| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"));
    }
    let out = Command::new("git")
        .current_dir(root)
        .args(["log", "-1", "--format=%ct"])
        .output()
        .map_err(|e| format!("git: {e} (or set SOURCE_DATE_EPOCH)"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| "no commit time from git (set SOURCE_DATE_EPOCH)".into())
}

pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

pub fn run(cmd: &mut Command) -> Result<Vec<u8>, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{:?} failed ({}): {}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}
