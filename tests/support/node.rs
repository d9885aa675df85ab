//! A node's own name-resolution setup for one exec: pullcred runs in a private mount
//! namespace (`unshare -m`) where `/etc/nsswitch.conf`, `/etc/hosts` and `/etc/resolv.conf`
//! are files of the test's, bind-mounted over the real ones, optionally under `strace` to see
//! every file it opens. Needs root, as CI and the developers' machines have.

use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::require_tool;

/// The files to mount over `/etc` for one exec; `None` keeps the machine's own.
#[derive(Default)]
pub struct EtcFiles {
    pub nsswitch: Option<String>,
    pub hosts: Option<String>,
    pub resolv: Option<String>,
}

/// Wraps `cmd` (a pullcred command) so it runs under `files` in a private mount namespace,
/// and under strace writing every `open` to `trace` when given. Returns the wrapped command
/// with `cmd`'s environment.
pub fn in_node(cmd: &Command, dir: &Path, files: &EtcFiles, trace: Option<&Path>) -> Command {
    require_tool("unshare");
    let mut script = String::from("set -e\n");
    for (name, text) in [
        ("nsswitch.conf", &files.nsswitch),
        ("hosts", &files.hosts),
        ("resolv.conf", &files.resolv),
    ] {
        if let Some(text) = text {
            let path = dir.join(format!("etc-{name}"));
            fs::write(&path, text).unwrap();
            script.push_str(&format!("mount --bind '{}' /etc/{name}\n", path.display()));
        }
    }
    let program = cmd.get_program().to_string_lossy().into_owned();
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    match trace {
        Some(log) => {
            require_tool("strace");
            script.push_str(&format!(
                "exec strace -f -qq -e trace=open,openat -o '{}' '{program}' {}\n",
                log.display(),
                args.join(" ")
            ));
        }
        None => script.push_str(&format!("exec '{program}' {}\n", args.join(" "))),
    }
    let mut wrapped = Command::new("unshare");
    wrapped.args(["-m", "--propagation", "private", "sh", "-c", &script]);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    wrapped
}

/// A DNS server that takes queries and never answers, on UDP and TCP port 53 of a loopback
/// address of its own (127.0.0.`last`): the stalled resolver of a broken node.
pub struct SilentDns {
    pub ip: Ipv4Addr,
    _udp: UdpSocket,
    _tcp: TcpListener,
}

impl SilentDns {
    pub fn start(last: u8) -> Self {
        let ip = Ipv4Addr::new(127, 0, 0, last);
        let addr = SocketAddrV4::new(ip, 53);
        // Bound and never read: queries queue up unanswered; TCP connects complete (the
        // backlog accepts them) and then hear nothing.
        let udp = UdpSocket::bind(addr).expect("bind udp/53 (needs root)");
        let tcp = TcpListener::bind(addr).expect("bind tcp/53 (needs root)");
        SilentDns {
            ip,
            _udp: udp,
            _tcp: tcp,
        }
    }
}

/// The glibc NSS module directory of this machine, where `libnss_myhostname` must be for the
/// resolution tests to mean anything.
pub fn nss_module(name: &str) -> PathBuf {
    let dirs = [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/lib64",
    ];
    dirs.iter()
        .map(|d| Path::new(d).join(format!("libnss_{name}.so.2")))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("libnss_{name}.so.2 is not installed; run tests/run.sh"))
}

/// A DNS server that answers every query on UDP port 53 of its own loopback address
/// (127.0.0.`last`) with NXDOMAIN: the name does not exist. A faithful fake of RFC 1035's
/// wire format for that one answer: the query's id and question, QR and RA set, RD kept,
/// RCODE 3, no records.
pub struct NxDomainDns {
    pub ip: Ipv4Addr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl NxDomainDns {
    pub fn start(last: u8) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let ip = Ipv4Addr::new(127, 0, 0, last);
        let udp = UdpSocket::bind(SocketAddrV4::new(ip, 53)).expect("bind udp/53 (needs root)");
        udp.set_read_timeout(Some(std::time::Duration::from_millis(100)))
            .unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stopped.load(Ordering::Relaxed) {
                let Ok((n, from)) = udp.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(answer) = nxdomain(&buf[..n]) {
                    let _ = udp.send_to(&answer, from);
                }
            }
        });
        NxDomainDns { ip, stop }
    }
}

impl Drop for NxDomainDns {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The NXDOMAIN answer to `query`: its header and first question, nothing else.
fn nxdomain(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || u16::from_be_bytes([query[4], query[5]]) == 0 {
        return None;
    }
    // The question: labels up to the root's empty one, then type and class.
    let mut at = 12;
    loop {
        let len = *query.get(at)? as usize;
        at += 1 + len;
        if len == 0 {
            break;
        }
    }
    let end = at + 4;
    let question = query.get(12..end)?;
    let mut answer = vec![
        query[0],
        query[1],
        0x80 | (query[2] & 0x79), // QR, the opcode and RD as asked
        0x80 | 3,                 // RA, RCODE 3: NXDOMAIN
        0,
        1, // one question
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    answer.extend_from_slice(question);
    Some(answer)
}
