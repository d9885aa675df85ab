//! Build facts `pullcred version` prints: the commit built (from git, or `PULLCRED_COMMIT`
//! where there is no repository) and the target triple.

use std::process::Command;

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=PULLCRED_TARGET={target}");
    println!("cargo:rerun-if-env-changed=PULLCRED_COMMIT");
    let commit = std::env::var("PULLCRED_COMMIT").ok().or_else(|| {
        let git = |args: &[&str]| {
            Command::new("git")
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        // Rebuilt when HEAD moves: the files git changes then.
        if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
            println!("cargo:rerun-if-changed={dir}/HEAD");
            println!("cargo:rerun-if-changed={dir}/packed-refs");
            if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
                println!("cargo:rerun-if-changed={dir}/{head}");
            }
        }
        git(&["rev-parse", "HEAD"])
    });
    println!(
        "cargo:rustc-env=PULLCRED_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
}
