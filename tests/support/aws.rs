//! The AWS peer: `moto` in server mode on loopback (ECR and STS), shared by the tests of one
//! run, with a recording tap in front of it per test so each test sees only its own calls
//! and can make "AWS" fail on purpose. ECR Public has no moto backend: `fake_ecr_public`
//! answers it, following the documented awsJson1.1 wire format.

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::http::{FakeHttp, Reply};
use super::require_tool;

/// moto's default account, which its `GetAuthorizationToken` answers for when no registry
/// ids are given; the password it mints is `<account>-auth-token`.
pub const MOTO_ACCOUNT: &str = "123456789012";

/// moto's tokens expire at 2015-01-01T00:00:00 (local time of the server, which is started
/// in UTC). Tests that want a living token move pullcred's clock to before that.
pub const MOTO_EXPIRY: u64 = 1_420_070_400;

/// The address of the one moto server of this test run, started on first use. It runs on a
/// thread that lives as long as the test process, and dies with it (parent-death signal).
pub fn moto() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        require_tool("moto_server");
        // moto_server cannot be handed a bound socket: a free port is picked and bound by
        // the child later, so another process may take it first. The child then exits:
        // start again on another port.
        for _ in 0..5 {
            let port = super::registry::free_port();
            let (exited_tx, exited) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut cmd = Command::new("moto_server");
                cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                    .env("TZ", "UTC")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                // SAFETY: only an async-signal-safe prctl between fork and exec.
                unsafe {
                    use std::os::unix::process::CommandExt;
                    cmd.pre_exec(|| {
                        rustix::process::set_parent_process_death_signal(Some(
                            rustix::process::Signal::KILL,
                        ))
                        .map_err(std::io::Error::from)
                    });
                }
                let mut child = cmd.spawn().expect("start moto_server");
                // Keep this thread (the parent of moto, for the death signal) alive.
                let _ = child.wait();
                let _ = exited_tx.send(());
            });
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let start = Instant::now();
            loop {
                if TcpStream::connect(addr).is_ok() {
                    return addr;
                }
                if exited.try_recv().is_ok() {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "moto_server did not start"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("moto_server exited at start five times");
    })
}

/// A recording tap in front of moto: the endpoint a test points pullcred at.
pub fn moto_tap() -> FakeHttp {
    let moto = moto();
    FakeHttp::start(move |_| Reply::Forward(moto))
}

/// ECR Public's `GetAuthorizationToken` (awsJson1.1, `SpencerFrontendService`), answered
/// with `AWS:<password>` in base64 and an `expiresAt` in epoch seconds, as the API
/// reference documents. No real test peer implements ECR Public.
pub fn fake_ecr_public(password: &'static str, valid_for: Duration) -> FakeHttp {
    FakeHttp::start(ecr_public_answer(password, valid_for))
}

/// The handler of [`fake_ecr_public`], to install on a server of a test's own.
pub fn ecr_public_answer(
    password: &'static str,
    valid_for: Duration,
) -> impl Fn(&super::http::Request) -> Reply + Send + Sync + 'static {
    use base64::Engine;
    move |req| {
        if req.header("x-amz-target") != Some("SpencerFrontendService.GetAuthorizationToken") {
            return super::http::aws_json_error(400, "UnknownOperationException", "no");
        }
        let token = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"));
        let expires = (SystemTime::now() + valid_for)
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        Reply::Respond {
            status: 200,
            headers: vec![("content-type", "application/x-amz-json-1.1".into())],
            body: format!(
                r#"{{"authorizationData":{{"authorizationToken":"{token}","expiresAt":{expires}}}}}"#
            ),
        }
    }
}

/// Seconds to shift pullcred's clock so that it is `before` ahead of moto's token expiry.
pub fn clock_before_moto_expiry(before: Duration) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!("-{}", now - (MOTO_EXPIRY - before.as_secs()))
}

/// Seconds to shift pullcred's clock so that moto's tokens expired `ago`.
pub fn clock_after_moto_expiry(ago: Duration) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!("-{}", now - (MOTO_EXPIRY + ago.as_secs()))
}

/// One call to moto's Secrets Manager (awsJson1.1, `secretsmanager.<operation>`), made the
/// way the test sets a store up: moto routes by the credential scope and checks no
/// signature, so the request carries a scope and nothing else of SigV4.
pub fn secrets_manager(operation: &str, body: serde_json::Value) -> serde_json::Value {
    use std::io::{Read, Write};
    let addr = moto();
    let body = body.to_string();
    let mut stream = TcpStream::connect(addr).expect("connect moto");
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Target: secretsmanager.{operation}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=AKIDTEST/20250101/us-west-2/secretsmanager/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, json) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(
        head.split_whitespace().nth(1) == Some("200"),
        "{operation}: {answer}"
    );
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{operation}: {e}: {answer}"))
}
