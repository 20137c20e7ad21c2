//! Building the peer (`peer/main.rs`) against the runtime of
//! [`OLD_COMMIT`]: once per test process, and not at all while the binary
//! is newer than the peer's source.
//!
//! Everything lives under `<target>/compat/<commit>/`: `src/` is the old
//! tree (from `git archive`), `peer/` the peer's crate (its manifest from
//! `peer/Cargo.toml.in`, and the old tree's `Cargo.lock`, so dependencies
//! resolve to the versions the old tree was built with), and `target/` the
//! peer's own target directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Instant, SystemTime};

/// The oldest build a current one must still talk to: protocol version 3.
pub const OLD_COMMIT: &str = "6f8a126";

/// The repository: where `git` finds the old commit, and the peer's source.
const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The peer's binary, built on first use. Panics (this is test setup) with
/// the reason when it cannot be built.
pub fn peer() -> &'static Path {
    static PEER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PEER.get_or_init(build) {
        Ok(binary) => binary,
        Err(why) => panic!("the compatibility peer was not built from commit {OLD_COMMIT}: {why}"),
    }
}

fn build() -> Result<PathBuf, String> {
    let repo = Path::new(REPO);
    let main = repo.join("tests/compat/peer/main.rs");
    let template = repo.join("tests/compat/peer/Cargo.toml.in");
    let sources = [&main, &template, &repo.join("tests/compat/service.rs")];
    // `CARGO_TARGET_TMPDIR` is `<target>/tmp`.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .ok_or("the target directory has no parent")?;
    let dir = target.join("compat").join(OLD_COMMIT);
    let binary = dir.join("target/debug/compat-peer");
    if newer_than_all(&binary, &sources) {
        return Ok(binary);
    }

    let started = Instant::now();
    let tree = dir.join("src");
    if !tree.join("Cargo.toml").exists() {
        extract(repo, &dir, &tree)?;
    }
    let krate = dir.join("peer");
    fs::create_dir_all(&krate).map_err(|e| format!("create {}: {e}", krate.display()))?;
    let manifest = fs::read_to_string(&template)
        .map_err(|e| format!("read {}: {e}", template.display()))?
        .replace("@RUNTIME@", &toml_path(&tree.join("rpc-runtime")))
        .replace("@MAIN@", &toml_path(&main));
    write_if_changed(&krate.join("Cargo.toml"), &manifest)?;
    let lock = krate.join("Cargo.lock");
    if !lock.exists() {
        fs::copy(tree.join("Cargo.lock"), &lock)
            .map_err(|e| format!("copy the old Cargo.lock: {e}"))?;
    }

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--manifest-path"])
        .arg(krate.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .status()
        .map_err(|e| format!("run cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo build of {} failed ({status})",
            krate.display()
        ));
    }
    // Cargo leaves the binary alone when nothing it links changed (a comment
    // in the template, say); mark it as built from the current source.
    fs::File::options()
        .write(true)
        .open(&binary)
        .and_then(|file| file.set_modified(SystemTime::now()))
        .map_err(|e| format!("touch {}: {e}", binary.display()))?;
    eprintln!(
        "built the compatibility peer from {OLD_COMMIT} in {:.1?}",
        started.elapsed()
    );
    Ok(binary)
}

/// Whether `file` exists and was modified after every one of `sources`.
fn newer_than_all(file: &Path, sources: &[&PathBuf]) -> bool {
    let modified = |path: &Path| fs::metadata(path).and_then(|m| m.modified()).ok();
    let Some(built) = modified(file) else {
        return false;
    };
    sources
        .iter()
        .all(|source| modified(source).is_some_and(|source| source < built))
}

/// Extracts [`OLD_COMMIT`] of `repo` into `tree`, through a directory of
/// `dir` that is renamed into place once complete.
fn extract(repo: &Path, dir: &Path, tree: &Path) -> Result<(), String> {
    let verify = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("{OLD_COMMIT}^{{commit}}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match verify {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "git is not installed, and the peer's source is commit {OLD_COMMIT} of this \
                 repository's history"
            ))
        }
        Err(e) => return Err(format!("run git: {e}")),
        Ok(status) if !status.success() => {
            return Err(format!(
                "commit {OLD_COMMIT} is not in the history of {} (a source tarball, or a \
                 shallow clone?); the peer is built from it: fetch the full history \
                 (`git fetch --unshallow`) to run this suite",
                repo.display()
            ))
        }
        Ok(_) => {}
    }
    let partial = dir.join("src.partial");
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial).map_err(|e| format!("create {}: {e}", partial.display()))?;
    let mut archive = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["archive", OLD_COMMIT])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run git archive: {e}"))?;
    let tar_input = archive.stdout.take().ok_or("git archive has no output")?;
    let untarred = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(&partial)
        .stdin(tar_input)
        .status()
        .map_err(|e| format!("run tar: {e}"))?;
    let archived = archive
        .wait()
        .map_err(|e| format!("wait for git archive: {e}"))?;
    if !archived.success() || !untarred.success() {
        return Err(format!(
            "git archive {OLD_COMMIT} | tar -x failed ({archived}, {untarred})"
        ));
    }
    fs::rename(&partial, tree).map_err(|e| format!("rename into {}: {e}", tree.display()))
}

/// `path` as a TOML basic string's contents.
fn toml_path(path: &Path) -> String {
    path.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

/// Writes `contents` to `path` unless it holds them already.
fn write_if_changed(path: &Path, contents: &str) -> Result<(), String> {
    if fs::read_to_string(path).is_ok_and(|old| old == contents) {
        return Ok(());
    }
    fs::write(path, contents).map_err(|e| format!("write {}: {e}", path.display()))
}
