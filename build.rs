//! Stamps the build with the git revision and the compiler, for `--version`
//! and `css_push_exporter_build_info`. Outside a checkout (a source tarball,
//! a container build without `.git`) the revision comes from
//! `CSS_PUSH_REVISION`, else it is "unknown".
use std::process::Command;

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned()).filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=CSS_PUSH_REVISION");
    let revision = std::env::var("CSS_PUSH_REVISION").ok().filter(|r| !r.is_empty()).or_else(|| {
        // Rebuild when HEAD moves: HEAD itself, the branch it names, packed refs.
        for path in ["HEAD", "packed-refs"] {
            if let Some(p) = output("git", &["rev-parse", "--git-path", path]) {
                println!("cargo:rerun-if-changed={p}");
            }
        }
        if let Some(branch) = output("git", &["symbolic-ref", "-q", "HEAD"]) {
            if let Some(p) = output("git", &["rev-parse", "--git-path", &branch]) {
                println!("cargo:rerun-if-changed={p}");
            }
        }
        output("git", &["rev-parse", "--short=12", "HEAD"])
    });
    println!("cargo:rustc-env=CSS_PUSH_REVISION={}", revision.as_deref().unwrap_or("unknown"));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    // "rustc 1.95.0 (59807616e 2026-04-14)" → "1.95.0"
    let version = output(&rustc, &["--version"])
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CSS_PUSH_RUSTC_VERSION={version}");
}
