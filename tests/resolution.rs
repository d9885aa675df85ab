//! Name resolution on real nodes' setups: NSS modules that a static binary must never load,
//! `/etc/hosts`, and DNS servers that stall. Each exec runs in a private mount namespace
//! with the node's `/etc` files of the case (support::node).

use std::time::{Duration, Instant};

use crate::support::aws::{self, MOTO_ACCOUNT};
use crate::support::node::{EtcFiles, NxDomainDns, SilentDns, in_node, nss_module};
use crate::support::{V1, pullcred, request, run};

const HOST: &str = "123456789012.dkr.ecr.us-west-2.amazonaws.com";

/// Node keys, no IMDS, every AWS API at `endpoint`, and a clock at which moto's token has
/// `left` to live.
fn ecr_cmd(home: &std::path::Path, endpoint: &str, left: Duration) -> std::process::Command {
    let mut cmd = pullcred(home);
    cmd.env("AWS_ACCESS_KEY_ID", "AKIANODE000000000001")
        .env("AWS_SECRET_ACCESS_KEY", "s3cret-node-secret-key")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(
            "PULLCRED_TEST_CLOCK_OFFSET",
            aws::clock_before_moto_expiry(left),
        );
    cmd
}

#[test]
fn names_resolve_from_etc_hosts_without_loading_any_nss_module() {
    // Ubuntu's and systemd's defaults put `myhostname` (and `resolve`) in front of DNS;
    // glibc's getaddrinfo would dlopen them, and with them the host's libc.
    nss_module("myhostname");
    let tap = aws::moto_tap();
    let home = tempfile::tempdir().unwrap();
    let endpoint = format!("http://moto.pullcred.test:{}", tap.addr.port());
    let files = EtcFiles {
        nsswitch: Some("hosts: myhostname files resolve [!UNAVAIL=return] dns\n".into()),
        hosts: Some("127.0.0.1 localhost\n127.0.0.1 moto.pullcred.test\n".into()),
        resolv: None,
    };
    let trace = home.path().join("strace.log");
    let cmd = ecr_cmd(home.path(), &endpoint, Duration::from_secs(3600));
    let resp = run(
        &mut in_node(&cmd, home.path(), &files, Some(&trace)),
        &request(V1, &format!("{HOST}/app:1")),
    )
    .response();
    assert_eq!(
        resp["auth"][HOST]["password"],
        format!("{MOTO_ACCOUNT}-auth-token")
    );
    assert_eq!(tap.operations(), ["GetAuthorizationToken"]);
    let opened = std::fs::read_to_string(&trace).unwrap();
    let libraries: Vec<&str> = opened
        .lines()
        .filter(|l| l.contains(".so") && !l.contains("ENOENT"))
        .collect();
    assert!(
        libraries.is_empty(),
        "the static binary opened shared libraries: {libraries:#?}"
    );
    assert!(
        !opened.contains("libnss_"),
        "an NSS module was looked for:\n{opened}"
    );
    assert!(opened.contains("/etc/hosts"), "/etc/hosts was not read");
}

#[test]
fn a_stalled_dns_server_cannot_hold_the_answer_past_the_deadline() {
    let tap = aws::moto_tap();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("config.toml"), "deadline = \"4s\"\n[[registry]]\nmatch = [\"*.dkr.ecr.*.amazonaws.com\"]\nsource = \"ecr\"\n").unwrap();
    let endpoint = format!("http://moto.pullcred.test:{}", tap.addr.port());
    let image = format!("{HOST}/app:1");
    let exec = |files: &EtcFiles, left: Duration| {
        let mut cmd = ecr_cmd(home.path(), &endpoint, left);
        cmd.arg("--config").arg(home.path().join("config.toml"));
        let start = Instant::now();
        let out = run(
            &mut in_node(&cmd, home.path(), files, None),
            &request(V1, &image),
        );
        (out, start.elapsed())
    };
    // Mint once while the name resolves, with six hours left.
    let resolves = EtcFiles {
        hosts: Some("127.0.0.1 moto.pullcred.test\n".into()),
        ..EtcFiles::default()
    };
    exec(&resolves, Duration::from_secs(6 * 3600)).0.response();
    assert_eq!(tap.operations(), ["GetAuthorizationToken"]);

    // An hour before expiry the entry is due for refresh, and now the name is only in a DNS
    // server that never answers (with the longest waits resolv.conf allows).
    let dns = SilentDns::start(77);
    let stalls = EtcFiles {
        hosts: Some("127.0.0.1 localhost\n".into()),
        resolv: Some(format!(
            "nameserver {}\noptions timeout:30 attempts:5\n",
            dns.ip
        )),
        ..EtcFiles::default()
    };
    let (out, took) = exec(&stalls, Duration::from_secs(3600));
    let resp = out.response();
    assert_eq!(
        resp["auth"][HOST]["password"],
        format!("{MOTO_ACCOUNT}-auth-token"),
        "the still-valid cached token is served"
    );
    assert!(
        out.stderr.contains("answering with the cached credential"),
        "{out:#?}"
    );
    assert!(
        took < Duration::from_secs(4),
        "answered after {took:?}, past the 4 s deadline"
    );
    assert_eq!(
        tap.operations(),
        ["GetAuthorizationToken"],
        "no call got out"
    );
}

/// A name the name server says does not exist is one line in an operator's words, naming
/// the name and NXDOMAIN, never the resolver's query structs.
#[test]
fn a_name_that_does_not_exist_is_said_in_words() {
    let dns = NxDomainDns::start(78);
    let home = tempfile::tempdir().unwrap();
    let files = EtcFiles {
        hosts: Some("127.0.0.1 localhost\n".into()),
        resolv: Some(format!("nameserver {}\n", dns.ip)),
        ..EtcFiles::default()
    };
    let cmd = ecr_cmd(
        home.path(),
        "http://sts.nowhere.pullcred.test:1",
        Duration::from_secs(3600),
    );
    let out = run(
        &mut in_node(&cmd, home.path(), &files, None),
        &request(V1, &format!("{HOST}/app:1")),
    );
    out.assert_error(
        "cannot resolve sts.nowhere.pullcred.test: no such name (the name server answered NXDOMAIN",
    );
    for internal in ["Query {", "Name(", "query_type", "NoRecordsFound"] {
        assert!(!out.stderr.contains(internal), "{internal}: {out:?}");
    }
}
