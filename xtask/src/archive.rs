//! Reproducible archives: a tree of files written as a sorted tar owned by root, with one
//! time for every entry, gzip without a time or a name; `ar` for the .deb; `SHA256SUMS`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Files by their path in an archive (`/`-separated, relative), with their modes; and
/// symbolic links, by their path, with their targets.
#[derive(Clone, Default)]
pub struct Tree {
    files: BTreeMap<String, (u32, Vec<u8>)>,
    links: BTreeMap<String, String>,
}

impl Tree {
    pub fn file(&mut self, path: &str, mode: u32, bytes: Vec<u8>) {
        self.files.insert(path.to_string(), (mode, bytes));
    }

    /// A symbolic link at `path` to `target` (relative to the link's directory).
    pub fn link(&mut self, path: &str, target: &str) {
        self.links.insert(path.to_string(), target.to_string());
    }

    pub fn links(&self) -> impl Iterator<Item = (&String, &String)> {
        self.links.iter()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &(u32, Vec<u8>))> {
        self.files.iter()
    }

    /// The same files under `prefix/`.
    pub fn under(&self, prefix: &str) -> Tree {
        Tree {
            files: self
                .files
                .iter()
                .map(|(p, f)| (format!("{prefix}/{p}"), f.clone()))
                .collect(),
            links: self
                .links
                .iter()
                .map(|(p, t)| (format!("{prefix}/{p}"), t.clone()))
                .collect(),
        }
    }

    /// Every directory that holds a file, parents first.
    fn dirs(&self) -> BTreeSet<String> {
        let mut dirs = BTreeSet::new();
        for path in self.files.keys().chain(self.links.keys()) {
            let mut at = path.as_str();
            while let Some((parent, _)) = at.rsplit_once('/') {
                dirs.insert(parent.to_string());
                at = parent;
            }
        }
        dirs
    }

    /// A tar of the tree: directories (0755) and files in path order, all root's, all of
    /// time `epoch`. With `dot`, paths start `./` and the root itself is an entry (as
    /// dpkg's own archives are).
    pub fn tar(&self, epoch: u64, dot: bool) -> Result<Vec<u8>, String> {
        type Entry<'a> = (String, Kind<'a>);
        let mut entries: Vec<Entry> = self
            .dirs()
            .into_iter()
            .map(|d| (format!("{d}/"), Kind::Dir))
            .chain(self.files.iter().map(|(p, f)| (p.clone(), Kind::File(f))))
            .chain(self.links.iter().map(|(p, t)| (p.clone(), Kind::Link(t))))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = tar::Builder::new(Vec::new());
        out.mode(tar::HeaderMode::Deterministic);
        let mut append = |path: &str, kind: Kind| {
            let mut header = tar::Header::new_gnu();
            let (mode, bytes, entry_type): (u32, &[u8], _) = match kind {
                Kind::File((mode, bytes)) => (*mode, bytes, tar::EntryType::Regular),
                Kind::Dir => (0o755, &[], tar::EntryType::Directory),
                Kind::Link(_) => (0o777, &[], tar::EntryType::Symlink),
            };
            header.set_entry_type(entry_type);
            if let Kind::Link(target) = kind {
                header.set_link_name(target).map_err(|e| e.to_string())?;
            }
            header.set_mode(mode);
            header.set_uid(0);
            header.set_gid(0);
            header
                .set_username("root")
                .and_then(|()| header.set_groupname("root"))
                .map_err(|e| e.to_string())?;
            header.set_mtime(epoch);
            header.set_size(bytes.len() as u64);
            out.append_data(&mut header, path, bytes)
                .map_err(|e| format!("{path}: {e}"))
        };
        if dot {
            append("./", Kind::Dir)?;
        }
        for (path, kind) in entries {
            let path = if dot { format!("./{path}") } else { path };
            append(&path, kind)?;
        }
        out.into_inner().map_err(|e| e.to_string())
    }

    pub fn tar_gz(&self, epoch: u64) -> Result<Vec<u8>, String> {
        gzip(&self.tar(epoch, false)?)
    }
}

/// What a tar entry is.
#[derive(Clone, Copy)]
enum Kind<'a> {
    Dir,
    File(&'a (u32, Vec<u8>)),
    Link(&'a String),
}

/// gzip with no time and no file name in its header: the same bytes from the same input.
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::new(9));
    out.write_all(bytes).map_err(|e| e.to_string())?;
    out.finish().map_err(|e| e.to_string())
}

/// An `ar` archive of `members` (the .deb's container), each of time `epoch`, root's, 0644.
pub fn ar(members: &[(&str, &[u8])], epoch: u64) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, bytes) in members {
        let header = format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            name,
            epoch,
            0,
            0,
            "100644",
            bytes.len()
        );
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(bytes);
        if bytes.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

/// Every file under `dir`, sorted.
pub fn walk(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `sha256sum`'s format for every file under `dir`, paths relative to it, sorted.
pub fn sha256sums(dir: &Path) -> Result<Vec<u8>, String> {
    let mut out = String::new();
    for path in walk(dir)? {
        let relative = path.strip_prefix(dir).map_err(|e| e.to_string())?;
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        out.push_str(&format!("{}  {}\n", sha256_hex(&bytes), relative.display()));
    }
    Ok(out.into_bytes())
}
