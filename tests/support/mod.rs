//! Test support: running the real binary the way the kubelet does, fixture folders, and the
//! peers (a real registry) the tests talk to.

pub mod aws;
pub mod azure;
pub mod google;
pub mod http;
pub mod kube;
pub mod node;
pub mod registry;
pub mod stores;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// Every secret a fixture holds. No run may print one on stderr; `run` checks each time.
/// The config's default `deadline` (a restatement of pullcred's documented default, as a
/// kubelet operator reads it): what an exec with no `deadline` set is bounded by.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(20);

/// The most an exec may take past a limit it was given (its deadline, a helper's timeout):
/// process start-up on a loaded machine.
pub const SLACK: Duration = Duration::from_millis(900);

/// Asserts that what `took` ended within `limit`, a bound pullcred was configured with
/// (never a figure of the test's own), plus [`SLACK`].
#[track_caller]
pub fn assert_within(took: Duration, limit: Duration, what: &str) {
    assert!(
        took < limit + SLACK,
        "{what}: took {took:?}, past its limit of {limit:?}"
    );
}

pub const FIXTURE_SECRETS: &[&str] = &[
    "s3cret-static-pw",
    "s3cret-team-a-pw",
    "s3cret-hub-pw",
    "s3cret-mirror-pw",
    "s3cret-helper-pw",
    "s3cret-store-pw",
    "s3cret-identity-token",
    "s3cret-leaky-helper-pw",
    "s3cret-user-pw",
    "s3cret-basic-pw",
    "s3cret-registry-pw",
    "s3cret-ecr-public-pw",
    "s3cret-node-secret-key",
    "s3cret-process-secret-key",
    "s3cret-imds-secret-key",
    "s3cret-imds-session",
    "s3cret-panic-payload",
    "s3cret-straggler-pw",
    "s3cret-corpus-pw",
    // moto's ECR passwords are `<account>-auth-token`.
    "-auth-token",
    // Session tokens: moto's STS (every one starts so), the fake IMDSv2's, and the web
    // identity token the IRSA test hands to STS.
    "FQoGZXIvYXdzEBYaD",
    "imds-session-token",
    "eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl",
    // Google: access tokens, user credentials, the key, and a signed assertion's header.
    "s3cret-gcp-",
    "BEGIN PRIVATE KEY",
    "eyJhbGciOiJSUzI1NiIsImtpZCI6",
    // A certificate credential's client assertion (its header, as pullcred writes it).
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsIng1dCNTMjU2Ijoi",
    // Kubernetes service account tokens (their signature part).
    "s3cret-sa-signature",
    // Azure: Entra access tokens, ACR refresh tokens, client secrets and federated tokens.
    "s3cret-aad-",
    "s3cret-acr-",
    "s3cret-azure-",
    // EKS Pod Identity's role keys.
    "s3cret-pod-",
    // Vault's login tokens, and AppRole secret ids.
    "s3cret-vault-",
];

pub const V1: &str = "credentialprovider.kubelet.k8s.io/v1";

/// The outcome of one exec.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The response, asserting a clean success: exit 0, one JSON document on stdout.
    pub fn response(&self) -> Value {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }

    /// Asserts a failure the way the kubelet needs it: exit 1, nothing on stdout, one line on
    /// stderr starting with `pullcred: ` and containing `want`.
    pub fn assert_error(&self, want: &str) {
        assert_eq!(self.code, Some(1), "expected exit 1: {self:#?}");
        assert_eq!(
            self.stdout, "",
            "stdout must stay empty on failure: {self:#?}"
        );
        let last = self.stderr.lines().last().unwrap_or("");
        assert!(last.starts_with("pullcred: "), "stderr: {:?}", self.stderr);
        assert!(last.contains(want), "want {want:?} in {:?}", self.stderr);
        let errors = self
            .stderr
            .lines()
            .filter(|l| !l.starts_with("pullcred: warning:"))
            .count();
        assert_eq!(errors, 1, "one error line: {:?}", self.stderr);
    }
}

/// A command for the built binary with a neutral environment: no config, no docker config,
/// no log level from the developer's shell, and a cache under `home`.
pub fn pullcred(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pullcred"));
    for var in [
        "PULLCRED_CONFIG",
        "PULLCRED_LOG",
        "DOCKER_CONFIG",
        "PULLCRED_TEST_CLOCK_OFFSET",
    ] {
        cmd.env_remove(var);
    }
    // Nor the developer's AWS setup or proxies: each test names what pullcred may see.
    for (var, _) in std::env::vars_os() {
        let name = var.to_string_lossy().to_ascii_uppercase();
        if name.starts_with("AWS_") || name.ends_with("_PROXY") {
            cmd.env_remove(var);
        }
    }
    cmd.env("HOME", home);
    cmd.env("PULLCRED_CACHE_DIR", home.join("cache"));
    cmd
}

/// Seconds in a Go duration string of the forms pullcred emits (`1h2m3s`, `45s`, `0s`).
pub fn go_seconds(d: &Value) -> u64 {
    let s = d.as_str().expect("duration string");
    let mut total = 0;
    let mut num = String::new();
    for c in s.chars() {
        match c {
            '0'..='9' => num.push(c),
            'h' | 'm' | 's' => {
                let n: u64 = num.parse().unwrap_or_else(|_| panic!("bad duration {s}"));
                total += n * match c {
                    'h' => 3600,
                    'm' => 60,
                    _ => 1,
                };
                num.clear();
            }
            _ => panic!("unexpected duration {s}"),
        }
    }
    assert!(num.is_empty(), "bad duration {s}");
    total
}

/// Runs `cmd` with `stdin` and checks that no fixture secret reached stderr.
pub fn run(cmd: &mut Command, stdin: &[u8]) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pullcred");
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    // Write on a thread: pullcred may stop reading early (over-long stdin) and exit.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait pullcred");
    let _ = writer.join();
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for secret in FIXTURE_SECRETS {
        assert!(
            !run.stderr.contains(secret),
            "secret {secret:?} leaked to stderr: {run:#?}"
        );
    }
    let cache_dir = cmd
        .get_envs()
        .find(|(k, _)| *k == "PULLCRED_CACHE_DIR")
        .and_then(|(_, v)| v.map(PathBuf::from));
    if let Some(dir) = cache_dir {
        scan_cache_dir(&dir);
    }
    run
}

/// No fixture secret in the cache dir but the credential an entry holds: lock and temp files
/// hold none, and an entry holds none outside its `password` (no AWS key, no session token).
pub fn scan_cache_dir(dir: &Path) {
    let Ok(items) = fs::read_dir(dir) else {
        return;
    };
    for item in items.flatten() {
        let path = item.path();
        if !item.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let Ok(bytes) = fs::read(&path) else { continue };
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        // An entry, or one being written (`<key>.tmp.<pid>.<nanos>`, seen while another
        // process of a concurrent test is mid-write): all but its password.
        let name = item.file_name().to_string_lossy().into_owned();
        if path.extension().is_some_and(|e| e == "json") || name.contains(".tmp.") {
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(mut entry)) => {
                    entry.remove("password");
                    text = Value::Object(entry).to_string();
                }
                _ => {
                    if let Some(start) = text.find("\"password\":\"") {
                        let value = start + "\"password\":\"".len();
                        let end = text[value..].find('"').map_or(text.len(), |e| value + e);
                        text.replace_range(value..end, "");
                    }
                }
            }
        }
        for secret in FIXTURE_SECRETS {
            assert!(
                !text.contains(secret),
                "secret {secret:?} in {}: {text}",
                path.display()
            );
        }
    }
}

pub fn request(api_version: &str, image: &str) -> Vec<u8> {
    serde_json::json!({
        "apiVersion": api_version,
        "kind": "CredentialProviderRequest",
        "image": image,
    })
    .to_string()
    .into_bytes()
}

/// Writes a secret file as pullcred accepts one: 0600, the caller's.
/// A group no test's caller is in (the tests' other account's).
pub const FOREIGN_GID: u32 = 1000;

/// Sets `path`'s mode (not followed if a link). A group-writable mode comes with a group the
/// caller is not in, since pullcred rightly trusts a group of the caller's own (see
/// `secret_file::private_group`): the test means "another account may write it".
pub fn chmod(path: &Path, mode: u32) {
    if mode & 0o020 != 0 {
        std::os::unix::fs::lchown(path, None, Some(FOREIGN_GID)).unwrap();
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn secret_file(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// A fixture folder from tests/fixtures/NAME, copied into a temporary directory: `@DIR@` in
/// its text files becomes that directory, files become 0600 (git keeps no modes) and files
/// under `bin/` 0700.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new(name: &str) -> Self {
        Self::with_vars(name, &[])
    }

    /// Like `new`, also replacing each `(placeholder, value)` in text files.
    pub fn with_vars(name: &str, vars: &[(&str, &str)]) -> Self {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        copy_tree(&src, dir.path(), dir.path(), vars);
        Fixture { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A pullcred command using this fixture's `config.toml`, with `bin/` first on PATH.
    pub fn cmd(&self) -> Command {
        let mut cmd = pullcred(self.dir.path());
        cmd.arg("--config").arg(self.path("config.toml"));
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{path}", self.path("bin").display()));
        cmd
    }

    /// Plugin mode: a v1 request for `image` on stdin.
    pub fn plugin(&self, image: &str) -> Run {
        run(&mut self.cmd(), &request(V1, image))
    }

    /// Puts `toml` (top-level keys or a `[cache]` table) before the fixture's config.
    pub fn prepend_config(&self, toml: &str) {
        let path = self.path("config.toml");
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, format!("{toml}\n{text}")).unwrap();
    }

    /// Sets `rel`'s mode; a group-writable one with a group the caller is not in.
    pub fn chmod(&self, rel: &str, mode: u32) {
        chmod(&self.path(rel), mode);
    }
}

fn copy_tree(src: &Path, dst: &Path, root: &Path, vars: &[(&str, &str)]) {
    for entry in fs::read_dir(src).unwrap_or_else(|e| panic!("{}: {e}", src.display())) {
        let entry = entry.unwrap();
        let target = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            fs::create_dir(&target).unwrap();
            fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).unwrap();
            copy_tree(&entry.path(), &target, root, vars);
            continue;
        }
        let mut text = fs::read_to_string(entry.path()).unwrap();
        text = text.replace("@DIR@", root.to_str().unwrap());
        for (k, v) in vars {
            text = text.replace(k, v);
        }
        fs::write(&target, text).unwrap();
        let exec = src.file_name().is_some_and(|n| n == "bin");
        fs::set_permissions(
            &target,
            fs::Permissions::from_mode(if exec { 0o700 } else { 0o600 }),
        )
        .unwrap();
    }
}

/// The one `auth` entry of a response, as (key, username, password).
pub fn single_auth(resp: &Value) -> (String, String, String) {
    let auth = resp["auth"].as_object().expect("auth map");
    assert_eq!(auth.len(), 1, "one auth entry: {resp}");
    let (key, entry) = auth.iter().next().unwrap();
    (
        key.clone(),
        entry["username"].as_str().unwrap().to_string(),
        entry["password"].as_str().unwrap().to_string(),
    )
}

/// Fails with a clear message when a test peer is missing: tests/run.sh installs them, and
/// a CI run must not pass by skipping the tests that need them.
pub fn require_tool(name: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not installed; run tests/run.sh, which installs the test peers"
    );
}
