//! Building the Go peers of the interop tests from Debian's packages:
//! offline, with modules off, against the sources under [`GOPATH`].
//!
//! Self-contained, so that a test crate can include it by path beside
//! [`serf_agent`](crate::serf_agent).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Where Debian's Go packages live.
pub const GOPATH: &str = "/usr/share/gocode";

/// Whether Go programs needing `src` (a directory under [`GOPATH`]) can be
/// built here: `Err` names what is missing, and `install` says how to get
/// it.
pub fn toolchain(src: &str, install: &str) -> Result<(), String> {
    let mut missing = Vec::new();
    match Command::new("go").arg("version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(status) if status.success() => {}
        Ok(status) => missing.push(format!("a working `go` (`go version` exited with {status})")),
        Err(e) => missing.push(format!("`go` on PATH ({e})")),
    }
    let src = Path::new(GOPATH).join(src);
    if !src.is_dir() {
        missing.push(format!("the source at {}", src.display()));
    }
    if missing.is_empty() { Ok(()) } else { Err(format!("missing {} ({install})", missing.join(" and "))) }
}

/// What to build: the package in a directory of this repository, or a
/// package under [`GOPATH`] by its import path.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// A directory holding a `main` package.
    Dir(&'a Path),
    /// An import path, such as `github.com/hashicorp/serf/cmd/serf`.
    Package(&'a str),
}

/// Builds `source` into `<target>/<profile>/<name>/<name>` (beside the
/// test binary's `deps/`, or in the temporary directory) and returns its
/// path; `Err` holds what `go build` printed.
pub fn build(name: &str, source: Source<'_>) -> Result<PathBuf, String> {
    let dir = output_dir(name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let binary = dir.join(name);
    // Built under a name of this process's, then renamed: test binaries
    // running at once never see a half-written file.
    let partial = dir.join(format!("{name}.{}.partial", std::process::id()));
    let mut go = Command::new("go");
    go.arg("build").arg("-o").arg(&partial);
    match source {
        Source::Dir(path) => go.arg(".").current_dir(path),
        Source::Package(import) => go.arg(import),
    };
    go.env("GOPATH", GOPATH).env("GO111MODULE", "off");
    if ["GOCACHE", "XDG_CACHE_HOME", "HOME"].iter().all(|v| std::env::var_os(v).is_none()) {
        go.env("GOCACHE", dir.join("go-cache"));
    }
    let out = go.output().map_err(|e| format!("running go build: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "go build of {source:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::rename(&partial, &binary).map_err(|e| format!("renaming to {}: {e}", binary.display()))?;
    Ok(binary)
}

fn output_dir(name: &str) -> PathBuf {
    let exe = std::env::current_exe().ok();
    let profile = exe.as_deref().and_then(Path::parent).filter(|deps| deps.ends_with("deps")).and_then(Path::parent);
    match profile {
        Some(profile) => profile.join(name),
        None => std::env::temp_dir().join(format!("swim-{name}-{}", std::process::id())),
    }
}

/// A Go program for a test, built once per process by `build` into
/// `built`: `None` (with a note naming `what`) when `toolchain` says
/// something is missing, so the test can skip; with `CI` set that is a
/// failure instead (CI installs it). A failed build panics.
pub fn for_test(
    what: &str,
    toolchain: Result<(), String>,
    built: &OnceLock<Result<PathBuf, String>>,
    build: fn() -> Result<PathBuf, String>,
) -> Option<PathBuf> {
    if let Err(missing) = toolchain {
        assert!(std::env::var_os("CI").is_none(), "{missing}: .ci/run should have installed them");
        eprintln!("note: {what} test skipped: {missing}");
        return None;
    }
    Some(built.get_or_init(build).clone().unwrap_or_else(|e| panic!("{e}")))
}
