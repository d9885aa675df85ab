//! Name resolution for every outbound HTTP client: a pure-Rust stub resolver (hickory) that
//! reads `/etc/hosts` and `/etc/resolv.conf` itself.
//!
//! Why not the C library: the binary is statically linked, and glibc's `getaddrinfo` still
//! `dlopen`s the NSS modules `/etc/nsswitch.conf` names (`myhostname`, `resolve`,
//! `mdns4_minimal` on Ubuntu and systemd hosts), and with them the host's own `libc.so.6`:
//! undefined behaviour, seen as a SIGSEGV. It also blocks a thread that a stalled DNS server
//! can hold past the request's deadline. This resolver loads nothing and is async, so the
//! request's timeout ends every wait.
//!
//! Supported from `resolv.conf`: `nameserver` (up to three are used, as glibc does), `search`
//! and `domain`, `options ndots:`, `timeout:` and `attempts:`. Not supported: NSS sources other
//! than files and DNS (`myhostname`, `mdns`, `ldap`); a node that names its registries only
//! through those needs them in `/etc/hosts`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns, ResolveDnsError};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

const RESOLV_CONF: &str = "/etc/resolv.conf";
/// A resolv.conf is a few lines; a larger file is not one.
const MAX_RESOLV_CONF_BYTES: u64 = 64 * 1024;
/// glibc's caps on `options timeout:` and `attempts:`; the request's deadline bounds the
/// whole lookup anyway.
const MAX_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_ATTEMPTS: usize = 5;

/// A shared resolver; cheap to clone into each HTTP client. Build it inside the tokio runtime
/// that will use it.
#[derive(Clone, Debug)]
pub struct Resolver {
    inner: Arc<TokioResolver>,
    /// Names whose lookup began and did not finish: what a request that ran out of time was
    /// waiting on.
    pending: Arc<Mutex<Vec<String>>>,
}

impl Resolver {
    /// The node's resolver: `/etc/hosts` first, then the name servers of `/etc/resolv.conf`
    /// (glibc's default, 127.0.0.1, when it names none or cannot be read).
    pub fn from_system() -> Self {
        let (config, opts) = match read_resolv_conf() {
            Ok(parsed) => parsed,
            Err(why) => {
                tracing::debug!("{RESOLV_CONF}: {why}; using the name server on 127.0.0.1");
                let local = NameServerConfig::udp_and_tcp(IpAddr::V4(Ipv4Addr::LOCALHOST));
                (
                    ResolverConfig::from_parts(None, vec![], vec![local]),
                    ResolverOpts::default(),
                )
            }
        };
        Self::with_config(config, opts)
    }

    fn with_config(config: ResolverConfig, mut opts: ResolverOpts) -> Self {
        opts.timeout = opts.timeout.clamp(Duration::from_secs(1), MAX_TIMEOUT);
        opts.attempts = opts.attempts.clamp(1, MAX_ATTEMPTS);
        // Both families at once: a node may be IPv6-only, and the connector tries each address.
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        // `/etc/hosts` is read here, not by hickory, which would still ask DNS for the family
        // the file lacks (AAAA for an IPv4-only entry); glibc stops at a file match.
        opts.use_hosts_file = ResolveHosts::Never;
        // One lookup per process: a cache would only hold memory.
        opts.cache_size = 0;
        let mut builder =
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        *builder.options_mut() = opts;
        let inner = match builder.build() {
            Ok(r) => r,
            Err(e) => {
                // Only a broken configuration gets here; lookups then fail with this reason.
                tracing::warn!("name resolution is not set up ({e})");
                let mut fallback = TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, vec![], vec![]),
                    TokioRuntimeProvider::default(),
                );
                fallback.options_mut().use_hosts_file = ResolveHosts::Always;
                fallback.build().expect("an empty resolver config builds")
            }
        };
        Resolver {
            inner: Arc::new(inner),
            pending: Arc::default(),
        }
    }

    /// A name whose lookup has not finished, if any.
    pub fn pending(&self) -> Option<String> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first()
            .cloned()
    }

    /// The addresses of `name`, from `/etc/hosts` or DNS.
    pub async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        // An IPv6 literal arrives in brackets from some callers.
        let name = name.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let listed = hosts_entries(name);
        if !listed.is_empty() {
            return Ok(listed);
        }
        // Marked until the lookup finishes either way; one cut off by the request's deadline
        // stays marked, which is what the deadline's message reports.
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(name.to_string());
        let found = self.inner.lookup_ip(name).await;
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = pending.iter().position(|n| n == name) {
                pending.remove(i);
            }
        }
        let found = found.map_err(|e| format!("cannot resolve {name}: {}", in_words(&e)))?;
        let addrs: Vec<IpAddr> = found.iter().collect();
        if addrs.is_empty() {
            return Err(format!("cannot resolve {name}: no addresses"));
        }
        Ok(addrs)
    }
}

/// What a failed lookup means, in an operator's words: the resolver's own `Display` prints
/// its query structs (`no records found for Query { name: Name(…), … }`).
fn in_words(e: &hickory_resolver::net::NetError) -> String {
    use hickory_resolver::net::{DnsError, NetError};
    match e {
        _ if e.is_nx_domain() => {
            "no such name (the name server answered NXDOMAIN; check the name, the search \
             domains and which name server /etc/resolv.conf names)"
                .into()
        }
        NetError::Dns(DnsError::NoRecordsFound(n)) => {
            format!(
                "the name has no address records (the name server answered {})",
                n.response_code
            )
        }
        NetError::Dns(DnsError::ResponseCode(code)) => {
            format!("the name server answered {code}")
        }
        NetError::Timeout => "no name server answered in time".into(),
        NetError::NoConnections => "no name server could be reached".into(),
        NetError::Io(io) => format!("the name servers cannot be reached: {io}"),
        other => other.to_string(),
    }
}

const HOSTS: &str = "/etc/hosts";
const MAX_HOSTS_BYTES: u64 = 1 << 20;

/// The addresses `/etc/hosts` gives `name` (case-insensitive, a trailing dot ignored), in
/// file order.
fn hosts_entries(name: &str) -> Vec<IpAddr> {
    use std::io::Read;
    let mut text = String::new();
    let read =
        std::fs::File::open(HOSTS).and_then(|f| f.take(MAX_HOSTS_BYTES).read_to_string(&mut text));
    if read.is_err() {
        return Vec::new();
    }
    parse_hosts(&text, name)
}

fn parse_hosts(text: &str, name: &str) -> Vec<IpAddr> {
    let name = name.trim_end_matches('.');
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_whitespace();
            let ip = fields.next()?.parse::<IpAddr>().ok()?;
            fields
                .any(|n| n.trim_end_matches('.').eq_ignore_ascii_case(name))
                .then_some(ip)
        })
        .collect()
}

/// Why `resolv.conf` gave no name servers (a debug line: glibc's default is used).
#[derive(Debug, thiserror::Error)]
enum ResolvConfError {
    #[error("{0}")]
    Read(#[source] std::io::Error),
    #[error("{0}")]
    Parse(#[source] hickory_resolver::net::NetError),
}

fn read_resolv_conf() -> Result<(ResolverConfig, ResolverOpts), ResolvConfError> {
    use std::io::Read;
    let mut text = Vec::new();
    std::fs::File::open(RESOLV_CONF)
        .and_then(|f| f.take(MAX_RESOLV_CONF_BYTES).read_to_end(&mut text))
        .map_err(ResolvConfError::Read)?;
    let (mut config, opts) =
        hickory_resolver::system_conf::parse_resolv_conf(&text).map_err(ResolvConfError::Parse)?;
    // glibc uses the first three name servers (MAXNS) and ignores the rest.
    if config.name_servers().len() > 3 {
        let servers = config.name_servers()[..3].to_vec();
        config =
            ResolverConfig::from_parts(config.domain().cloned(), config.search().to_vec(), servers);
    }
    Ok((config, opts))
}

/// The AWS SDK's connector takes its resolver through this trait.
impl ResolveDns for Resolver {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> DnsFuture<'a> {
        DnsFuture::new(async move { self.lookup(name).await.map_err(ResolveDnsError::new) })
    }
}

/// reqwest's connector takes its resolver through this trait (the port is set by reqwest).
impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.clone();
        Box::pin(async move {
            let addrs = resolver.lookup(name.as_str()).await?;
            let sockets: Vec<std::net::SocketAddr> =
                addrs.into_iter().map(|ip| (ip, 0).into()).collect();
            Ok(Box::new(sockets.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_need_no_lookup_and_options_are_bounded() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (config, mut opts) = hickory_resolver::system_conf::parse_resolv_conf(
                "nameserver 192.0.2.1\noptions timeout:90 attempts:9\n",
            )
            .unwrap();
            opts.timeout = Duration::from_secs(90);
            let r = Resolver::with_config(config, opts);
            assert_eq!(r.inner.options().timeout, MAX_TIMEOUT);
            assert_eq!(r.inner.options().attempts, MAX_ATTEMPTS);
            assert_eq!(
                r.lookup("127.0.0.1").await.unwrap(),
                [IpAddr::V4(Ipv4Addr::LOCALHOST)]
            );
            assert_eq!(
                r.lookup("[::1]").await.unwrap(),
                ["::1".parse::<IpAddr>().unwrap()]
            );
        });
    }

    #[test]
    fn hosts_file_lines() {
        let text = "# comment\n127.0.0.1 localhost\n10.0.0.5  Registry.Internal reg # x\nbogus line\nfd00::5 registry.internal.\n";
        let ips = |n| parse_hosts(text, n);
        assert_eq!(
            ips("registry.internal"),
            [
                "10.0.0.5".parse::<IpAddr>().unwrap(),
                "fd00::5".parse().unwrap()
            ]
        );
        assert_eq!(ips("REG."), ["10.0.0.5".parse::<IpAddr>().unwrap()]);
        assert!(ips("x").is_empty() && ips("comment").is_empty());
    }
}
