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
