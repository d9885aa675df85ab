//! A small HTTP/1.1 server for the tests, one request per connection: it records every
//! request and answers by a handler's choice, forwarding to a real peer (a tap in front of
//! moto), answering itself (faults, and fakes of APIs that have no real test peer), or
//! hanging. It also serves as a forward proxy: absolute-form requests and `CONNECT` lines are
//! recorded like any other. With a [`Tls`] identity it speaks HTTPS, for upstreams that are
//! only ever reached over https (a registry's own exchange endpoint).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request-target as sent: a path, an absolute URL (via a proxy) or `host:port`.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The AWS operation: `X-Amz-Target` (JSON protocols) or `Action=` (query protocol).
    pub fn aws_operation(&self) -> String {
        if let Some(t) = self.header("x-amz-target") {
            return t.rsplit('.').next().unwrap_or(t).to_string();
        }
        let body = String::from_utf8_lossy(&self.body);
        body.split('&')
            .find_map(|kv| kv.strip_prefix("Action="))
            .unwrap_or("")
            .to_string()
    }
}

pub enum Reply {
    /// Pass the request to this peer and its answer back.
    Forward(SocketAddr),
    Respond {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Accept, read, never answer.
    Hang,
    /// Headers promising `declared` bytes, then `body` (shorter), then the connection closes.
    Truncated { declared: usize, body: String },
    /// 200 with a body of `bytes` bytes of filler, streamed until the client stops reading;
    /// with `declared`, announced by Content-Length, else read until close.
    Huge { bytes: u64, declared: bool },
    /// This reply, after a pause (bounded by the server's stop).
    Delayed(Duration, Box<Reply>),
}

type Handler = Box<dyn Fn(&Request) -> Reply + Send + Sync>;

/// A connection: plain TCP, or TLS over it.
trait Conn: Read + Write {}
impl<T: Read + Write> Conn for T {}

/// A test certificate authority and a server certificate it issued for some names. Clients
/// trust it through `SSL_CERT_FILE` (the verifier reads the system's roots from there).
pub struct Tls {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    config: Arc<rustls::ServerConfig>,
    /// The server name (SNI) each handshake asked for (`None`: it sent none).
    pub server_names: Arc<Mutex<Vec<Option<String>>>>,
}

/// Answers every handshake with the one certificate, noting the name it was asked for.
#[derive(Debug)]
struct NoteServerName {
    key: Arc<rustls::sign::CertifiedKey>,
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl rustls::server::ResolvesServerCert for NoteServerName {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.seen
            .lock()
            .unwrap()
            .push(hello.server_name().map(str::to_string));
        Some(self.key.clone())
    }
}

impl Tls {
    pub fn for_names(names: &[&str]) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pullcred test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let certified =
            rustls::sign::CertifiedKey::from_der(vec![cert.der().clone()], key_der, &provider)
                .unwrap();
        let server_names = Arc::new(Mutex::new(Vec::new()));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(NoteServerName {
                key: Arc::new(certified),
                seen: server_names.clone(),
            }));
        Tls {
            ca_pem: ca.pem(),
            config: Arc::new(config),
            server_names,
        }
    }
}

pub struct FakeHttp {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Request>>>,
    handler: Arc<Mutex<Handler>>,
    stop: Arc<AtomicBool>,
}

impl FakeHttp {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_at("127.0.0.1:0".parse().unwrap(), None, handler)
    }

    /// A server on `addr` (a fixed port, e.g. 443 on a loopback address of its own, needs
    /// root), speaking HTTPS when given `tls`.
    pub fn start_at(
        addr: SocketAddr,
        tls: Option<&Tls>,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        let tls = tls.map(|t| t.config.clone());
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Mutex<Handler>> = Arc::new(Mutex::new(Box::new(handler)));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, h, s) = (log.clone(), handler.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (l, h, s) = (l.clone(), h.clone(), s.clone());
                let tls = tls.clone();
                std::thread::spawn(move || {
                    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
                    match tls {
                        None => serve(&mut &conn, &l, &h, &s),
                        Some(config) => {
                            let Ok(session) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            let mut stream = rustls::StreamOwned::new(session, conn);
                            serve(&mut stream, &l, &h, &s);
                            stream.conn.send_close_notify();
                            let _ = stream.flush();
                        }
                    }
                });
            }
        });
        FakeHttp {
            addr,
            log,
            handler,
            stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes how later requests are answered.
    pub fn set(&self, handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) {
        *self.handler.lock().unwrap() = Box::new(handler);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    /// The AWS operations seen so far, in order.
    pub fn operations(&self) -> Vec<String> {
        self.requests().iter().map(Request::aws_operation).collect()
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(
    conn: &mut dyn Conn,
    log: &Mutex<Vec<Request>>,
    handler: &Mutex<Handler>,
    stop: &AtomicBool,
) {
    let Some(req) = read_request(conn) else {
        return;
    };
    log.lock().unwrap().push(req.clone());
    let reply = (handler.lock().unwrap())(&req);
    answer(reply, &req, conn, stop);
}

fn answer(reply: Reply, req: &Request, out: &mut dyn Conn, stop: &AtomicBool) {
    let pause = |d: Duration| {
        let until = std::time::Instant::now() + d;
        while std::time::Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    match reply {
        Reply::Respond {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            let _ = out.write_all(format!("{head}\r\n{body}").as_bytes());
        }
        Reply::Hang => pause(Duration::from_secs(60)),
        Reply::Truncated { declared, body } => {
            let _ = out.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {declared}\r\nconnection: close\r\n\r\n{body}"
                )
                .as_bytes(),
            );
        }
        Reply::Huge { bytes, declared } => {
            let length = if declared {
                format!("content-length: {bytes}\r\n")
            } else {
                String::new()
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\n{length}connection: close\r\n\r\n{{\"authorizationData\":[{{\"authorizationToken\":\""
            );
            if out.write_all(head.as_bytes()).is_err() {
                return;
            }
            let chunk = vec![b'A'; 64 * 1024];
            let mut sent = 0;
            while sent < bytes && !stop.load(Ordering::SeqCst) {
                if out.write_all(&chunk).is_err() {
                    break;
                }
                sent += chunk.len() as u64;
            }
        }
        Reply::Delayed(d, then) => {
            pause(d);
            answer(*then, req, out, stop);
        }
        Reply::Forward(peer) => {
            let Ok(mut upstream) = TcpStream::connect(peer) else {
                return;
            };
            // Origin-form for the peer, and one request per connection both ways.
            let path = match req.target.find("://") {
                Some(i) => {
                    let rest = &req.target[i + 3..];
                    rest.find('/').map_or("/", |p| &rest[p..]).to_string()
                }
                None => req.target.clone(),
            };
            let mut head = format!("{} {path} HTTP/1.1\r\n", req.method);
            for (k, v) in &req.headers {
                if !k.eq_ignore_ascii_case("connection") {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
            }
            head.push_str("connection: close\r\n\r\n");
            let _ = upstream.write_all(head.as_bytes());
            let _ = upstream.write_all(&req.body);
            let mut answer = Vec::new();
            let _ = upstream.read_to_end(&mut answer);
            let _ = out.write_all(&close_connection(&answer));
        }
    }
}

/// The peer's answer with its `Connection` header replaced by `close`, so the client does
/// not try to reuse a connection this server is about to drop.
fn close_connection(answer: &[u8]) -> Vec<u8> {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return answer.to_vec();
    };
    let head = String::from_utf8_lossy(&answer[..end]);
    let mut lines: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("connection: close");
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(&answer[end..]);
    out
}

fn read_request(conn: &mut dyn Conn) -> Option<Request> {
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

/// An AWS JSON-protocol error answer (`__type` names the error, as ECR sends it).
pub fn aws_json_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::Respond {
        status,
        headers: vec![
            ("content-type", "application/x-amz-json-1.1".into()),
            ("x-amzn-errortype", code.into()),
        ],
        body: format!(r#"{{"__type":"{code}","message":"{message}"}}"#),
    }
}

/// A JSON answer with extra headers.
pub fn json(status: u16, body: serde_json::Value, extra: Vec<(&'static str, String)>) -> Reply {
    let mut headers = vec![("content-type", "application/json".to_string())];
    headers.extend(extra);
    Reply::Respond {
        status,
        headers,
        body: body.to_string(),
    }
}

/// The fields of a form body (`application/x-www-form-urlencoded`) or a query string.
pub fn form(body: &[u8]) -> std::collections::BTreeMap<String, String> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let mut out = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}
