//! No secret on stderr, in any case, at any log level.

use crate::support::{Fixture, V1, request, run};

#[test]
fn no_fixture_secret_reaches_stderr_in_any_case() {
    // Every case of the other tests' fixtures, successes and failures, at the most verbose
    // log level; `run` asserts each stderr is free of every fixture secret.
    let cases: &[(&str, &[&str])] = &[
        (
            "static",
            &[
                "registry.example.com/a",
                "crlf.example.com/a",
                "file-user.example.com/a",
                "missing.example.com/a",
                "empty.example.com/a",
                "nomatch.io/a",
            ],
        ),
        (
            "matching",
            &[
                "registry.example.com/team-a/x",
                "nginx",
                "mirror.internal:5000/x",
            ],
        ),
        (
            "docker-config",
            &[
                "registry.example.com/a",
                "basic.example.com/a",
                "identity.example.com/a",
                "nginx",
                "helper.example.com/a",
                "store.example.com/a",
                "absent.example.com/a",
                "fail.example.com/a",
                "leaky.example.com/a",
                "missing.example.com/a",
                "garbage.example.com/a",
                "mirror.internal:5000/a",
            ],
        ),
    ];
    let mut runs = 0;
    for (fixture, images) in cases {
        let fx = Fixture::new(fixture);
        for image in *images {
            for verbosity in ["-vvv", "-v"] {
                let out = run(fx.cmd().arg(verbosity), &request(V1, image));
                // Verbose runs do log (so this checks real log output, not silence).
                assert!(
                    !out.stderr.is_empty() || verbosity == "-v",
                    "{image}: no logs at {verbosity}"
                );
                runs += 1;
            }
            // `get` prints the response to stdout (that is its job) and nothing secret elsewhere.
            run(fx.cmd().args(["-vvv", "get", image]), b"");
            runs += 1;
        }
    }
    assert!(runs > 60);
}
