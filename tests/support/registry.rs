//! A real registry peer: Debian's `docker-registry` (distribution) on loopback with htpasswd
//! (bcrypt) auth, an image pushed into it with `skopeo`, and `skopeo` as the client that must
//! accept or refuse the credentials pullcred hands out.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::require_tool;

pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`
    pub host: String,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether the server `child` answers at `host`; `false` if it exited first (its port
/// taken by another process since it was picked).
pub fn wait_ready(child: &mut Child, host: &str) -> bool {
    let start = Instant::now();
    while TcpStream::connect(host).is_err() {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{host}: the server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    /// Starts a registry that accepts `user`/`password` (bcrypt in an htpasswd file) and
    /// holds one small image at `repository:tag`.
    pub fn start(user: &str, password: &str, repository: &str, tag: &str) -> Self {
        for tool in ["docker-registry", "htpasswd", "skopeo", "umoci"] {
            require_tool(tool);
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        ok(
            Command::new("htpasswd")
                .args(["-Bbc"])
                .arg(d.join("htpasswd"))
                .args([user, password])
                .output()
                .unwrap(),
            "htpasswd",
        );
        // docker-registry cannot be handed a bound socket: a free port is picked and bound
        // by the child later, so another process may take it first. The child then exits
        // (the address is in use): start again on another port.
        let mut attempts = 0;
        let registry = loop {
            attempts += 1;
            let host = format!("127.0.0.1:{}", free_port());
            fs::write(
                d.join("config.yml"),
                format!(
                    "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {root}/data\nhttp:\n  addr: {host}\nauth:\n  htpasswd:\n    realm: pullcred-test\n    path: {root}/htpasswd\n",
                    root = d.display()
                ),
            )
            .unwrap();
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(d.join("config.yml"))
                .stdout(Stdio::null())
                .stderr(fs::File::create(d.join("registry.log")).unwrap())
                .spawn()
                .expect("start docker-registry");
            let mut child = child;
            if wait_ready(&mut child, &host) {
                break Registry {
                    child,
                    host,
                    _dir: dir,
                };
            }
            assert!(
                attempts < 5,
                "docker-registry exited at start: {}",
                fs::read_to_string(d.join("registry.log")).unwrap_or_default()
            );
        };
        registry.push_image(user, password, repository, tag);
        registry
    }

    /// Builds a one-layer OCI image locally (no network) and pushes it.
    fn push_image(&self, user: &str, password: &str, repository: &str, tag: &str) {
        let work = tempfile::tempdir().unwrap();
        let layout = work.path().join("oci");
        let image = format!("{}:{tag}", layout.display());
        let umoci = |args: &[&str]| {
            ok(
                Command::new("umoci").args(args).output().unwrap(),
                &format!("umoci {args:?}"),
            );
        };
        umoci(&["init", "--layout", layout.to_str().unwrap()]);
        umoci(&["new", "--image", &image]);
        let file = work.path().join("hello.txt");
        fs::write(&file, "hello from pullcred's test image\n").unwrap();
        umoci(&[
            "insert",
            "--image",
            &image,
            file.to_str().unwrap(),
            "/hello.txt",
        ]);
        ok(
            Command::new("skopeo")
                .args([
                    "--insecure-policy",
                    "copy",
                    "--dest-tls-verify=false",
                    "--dest-creds",
                ])
                .arg(format!("{user}:{password}"))
                .arg(format!("oci:{image}"))
                .arg(format!("docker://{}/{repository}:{tag}", self.host))
                .output()
                .unwrap(),
            "skopeo copy",
        );
    }

    /// `skopeo inspect` of the image with these credentials (None: anonymous).
    pub fn inspect(&self, reference: &str, creds: Option<(&str, &str)>) -> Output {
        let mut cmd = Command::new("skopeo");
        cmd.args(["--insecure-policy", "inspect", "--tls-verify=false"]);
        match creds {
            Some((u, p)) => cmd.arg("--creds").arg(format!("{u}:{p}")),
            None => cmd.arg("--no-creds"),
        };
        cmd.arg(format!("docker://{reference}"));
        // skopeo reads auth files from the environment; keep it to what is passed here.
        cmd.env("REGISTRY_AUTH_FILE", Path::new("/nonexistent/auth.json"));
        cmd.output().unwrap()
    }
}
