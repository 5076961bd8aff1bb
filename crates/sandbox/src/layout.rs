//! What the sandbox's filesystem holds, decided once at start from the host's facts ([`HostEnv`]): the system
//! directories and a short list of `/etc` files, read-only; the toolchains found (rustup and cargo homes,
//! pyenv, nvm, Go, the directories of `PATH` outside the home), read-only; `PATH` and the environment inside.
//! Nothing here is ever bound: the agent's data dir, the repos dir, the host's home as a whole.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::config::HostEnv;
use crate::error::SandboxError;

/// Where the worktree is mounted inside the sandbox, whatever its path on the host.
pub const WORKTREE: &str = "/work/repo";
/// HOME inside the sandbox: an empty tmpfs.
pub const HOME: &str = "/home/sandbox";

/// Host directories bound read-only as they are (or re-created as the same symlinks, on merged-/usr systems).
const SYSTEM_DIRS: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/// The only `/etc` entries visible inside (each bound read-only when it exists): users and groups (no
/// `shadow`), name resolution, TLS roots, the dynamic loader, Debian's alternatives (`/usr/bin/cc` and
/// friends point there), time zone, OS identity.
pub const ETC: &[&str] = &[
    "passwd",
    "group",
    "hosts",
    "resolv.conf",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "services",
    "protocols",
    "ssl",
    "ca-certificates",
    "pki",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "localtime",
    "timezone",
    "os-release",
    "debian_version",
    "mime.types",
];

/// A mount of the system part of the layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SystemMount {
    /// `--ro-bind path path`.
    Dir(PathBuf),
    /// `--symlink target path` (e.g. `/bin -> usr/bin`).
    Symlink { target: PathBuf, path: PathBuf },
}

/// A read-only bind: `src` on the host at `dest` inside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    pub src: PathBuf,
    pub dest: PathBuf,
}

/// The filesystem and environment of every sandboxed run.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    pub system: Vec<SystemMount>,
    /// `/etc/<name>` entries that exist on the host.
    pub etc: Vec<PathBuf>,
    /// Toolchains, read-only, in bind order.
    pub toolchains: Vec<Bind>,
    /// `PATH` inside.
    pub path: OsString,
    /// The environment inside (the run's own variables come on top).
    pub env: Vec<(OsString, OsString)>,
    /// `PATH` entries left out, and why (logged once at start).
    pub skipped: Vec<(PathBuf, String)>,
}

/// An absolute, symlink-free spelling of `p` where it exists (relative paths are taken from the current
/// directory; a path that does not exist yet keeps its lexical form).
pub fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    let joined = if p.is_absolute() {
        p.to_owned()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_owned())
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The paths the layout must keep out, made absolute once.
struct Denied {
    paths: Vec<PathBuf>,
    home: Option<PathBuf>,
}

impl Denied {
    /// Why binding `p` would expose something it must not, if it would.
    fn conflict(&self, p: &Path) -> Option<String> {
        for d in &self.paths {
            if p.starts_with(d) {
                return Some(format!("it is inside {} (the agent's data or repos dir)", d.display()));
            }
            if d.starts_with(p) {
                return Some(format!("it contains {} (the agent's data or repos dir)", d.display()));
            }
        }
        if let Some(home) = &self.home
            && home.starts_with(p)
        {
            return Some(format!("it contains the host's home {}", home.display()));
        }
        None
    }

    fn in_home(&self, p: &Path) -> bool {
        self.home.as_ref().is_some_and(|h| p.starts_with(h))
    }
}

fn is_dir(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_dir())
}

impl Layout {
    /// The layout for `host`, with `extra` toolchain directories, never exposing `denied` (nor the host's
    /// home as a whole). An extra directory or a system directory that would expose a denied path is an
    /// error; a `PATH` entry that would is left out (and listed in [`Layout::skipped`]).
    pub fn plan(host: &HostEnv, extra: &[PathBuf], denied: &[PathBuf]) -> Result<Self, SandboxError> {
        let denied = Denied {
            paths: denied.iter().map(|d| absolute(d)).collect(),
            home: host.home.as_deref().map(absolute).filter(|h| h != Path::new("/")),
        };
        let mut layout = Layout::default();

        for dir in SYSTEM_DIRS {
            let path = Path::new(dir);
            let Ok(meta) = std::fs::symlink_metadata(path) else { continue };
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(path)
                    .map_err(|e| SandboxError::Layout(format!("reading the symlink {dir}: {e}")))?;
                layout.system.push(SystemMount::Symlink { target, path: path.to_owned() });
            } else if meta.is_dir() {
                if let Some(d) = denied.paths.iter().find(|d| d.starts_with(path)) {
                    return Err(SandboxError::Layout(format!(
                        "{} is inside {dir}, which the sandbox shows read-only: move it out of {dir}",
                        d.display()
                    )));
                }
                layout.system.push(SystemMount::Dir(path.to_owned()));
            }
        }
        for name in ETC {
            let p = Path::new("/etc").join(name);
            if std::fs::symlink_metadata(&p).is_ok() {
                layout.etc.push(p);
            }
        }

        let home = host.home.as_deref();
        let sandbox_home = Path::new(HOME);
        let mut env: Vec<(OsString, OsString)> = Vec::new();
        let mut set = |k: &str, v: OsString| env.push((k.into(), v));

        // rustup: relocatable, so it moves under the sandbox's home (no path of the host's home shows).
        let rustup = host.rustup_home.clone().or_else(|| home.map(|h| h.join(".rustup"))).map(|p| absolute(&p));
        if let Some(rustup) = rustup.filter(|p| is_dir(p)) {
            let dest = sandbox_home.join(".rustup");
            layout.toolchains.push(Bind { src: rustup, dest: dest.clone() });
            set("RUSTUP_HOME", dest.into());
        }
        // cargo: only its binaries and the downloaded sources, never credentials.toml or config.toml.
        let cargo_home = host.cargo_home.clone().or_else(|| home.map(|h| h.join(".cargo"))).map(|p| absolute(&p));
        let sandbox_cargo = sandbox_home.join(".cargo");
        if let Some(cargo) = cargo_home.as_ref().filter(|p| is_dir(p)) {
            for sub in ["bin", "registry", "git"] {
                if is_dir(&cargo.join(sub)) {
                    layout.toolchains.push(Bind { src: cargo.join(sub), dest: sandbox_cargo.join(sub) });
                }
            }
        }
        set("CARGO_HOME", sandbox_cargo.clone().into());
        // pyenv and nvm write absolute paths into their shims and venvs: same path inside.
        for (root, var) in [
            (host.pyenv_root.clone().or_else(|| home.map(|h| h.join(".pyenv"))), "PYENV_ROOT"),
            (host.nvm_dir.clone().or_else(|| home.map(|h| h.join(".nvm"))), "NVM_DIR"),
        ] {
            if let Some(root) = root.map(|p| absolute(&p)).filter(|p| is_dir(p)) {
                if let Some(why) = denied.conflict(&root) {
                    layout.skipped.push((root, why));
                    continue;
                }
                layout.toolchains.push(Bind { src: root.clone(), dest: root.clone() });
                set(var, root.into());
            }
        }
        // Go: the root (unless it is under /usr already) and the module cache, read-only; GOPATH is writable
        // in the sandbox's home.
        let goroot = host.goroot.clone().or_else(|| {
            let go = crate::which("go", &host.path)?;
            let real = std::fs::canonicalize(go).ok()?;
            Some(real.parent()?.parent()?.to_owned())
        });
        if let Some(goroot) = goroot.map(|p| absolute(&p)).filter(|p| is_dir(p)) {
            if host.goroot.is_some() {
                set("GOROOT", goroot.clone().into());
            }
            if !layout.visible(&goroot) && denied.conflict(&goroot).is_none() {
                layout.toolchains.push(Bind { src: goroot.clone(), dest: goroot });
            }
        }
        let sandbox_gopath = sandbox_home.join("go");
        let modcache = host
            .gomodcache
            .clone()
            .or_else(|| host.gopath.as_ref().map(|g| g.join("pkg/mod")))
            .or_else(|| home.map(|h| h.join("go/pkg/mod")))
            .map(|p| absolute(&p));
        let sandbox_modcache = sandbox_gopath.join("pkg/mod");
        if let Some(modcache) = modcache.filter(|p| is_dir(p))
            && denied.conflict(&modcache).is_none()
        {
            layout.toolchains.push(Bind { src: modcache, dest: sandbox_modcache.clone() });
        }
        set("GOPATH", sandbox_gopath.into());
        set("GOMODCACHE", sandbox_modcache.into());

        for dir in extra {
            let dir = absolute(dir);
            if !is_dir(&dir) {
                return Err(SandboxError::Layout(format!("toolchain directory {} does not exist", dir.display())));
            }
            if let Some(why) = denied.conflict(&dir) {
                return Err(SandboxError::Layout(format!(
                    "toolchain directory {} cannot be shown in the sandbox: {why}",
                    dir.display()
                )));
            }
            if !layout.visible(&dir) {
                layout.toolchains.push(Bind { src: dir.clone(), dest: dir });
            }
        }

        // PATH, entry by entry: visible already, or bound by the rules below, or left out.
        let mut inside_path: Vec<PathBuf> = Vec::new();
        for entry in std::env::split_paths(&host.path) {
            if entry.as_os_str().is_empty() || !entry.is_absolute() {
                continue;
            }
            let Ok(real) = std::fs::canonicalize(&entry) else { continue };
            if !real.is_dir() {
                continue;
            }
            if let Some(cargo) = &cargo_home
                && real == cargo.join("bin")
            {
                push_unique(&mut inside_path, sandbox_cargo.join("bin"));
                continue;
            }
            if let Some(inside) = layout.inside(&real) {
                push_unique(&mut inside_path, inside);
                continue;
            }
            if let Some(why) = denied.conflict(&real) {
                layout.skipped.push((real, why));
                continue;
            }
            if denied.in_home(&real) {
                layout.skipped.push((real, "it is inside the host's home".to_owned()));
                continue;
            }
            let candidate = path_bind_root(&real);
            let src = if denied.conflict(&candidate).is_none() { candidate } else { real.clone() };
            layout.toolchains.push(Bind { src: src.clone(), dest: src });
            push_unique(&mut inside_path, real);
        }
        for fallback in ["/usr/local/bin", "/usr/bin", "/bin"] {
            let p = PathBuf::from(fallback);
            if layout.visible(&p) {
                push_unique(&mut inside_path, p);
            }
        }
        layout.path = std::env::join_paths(&inside_path)
            .map_err(|e| SandboxError::Layout(format!("PATH inside the sandbox: {e}")))?;

        // The fixed part of the environment. No network inside: package managers are told so, and fail at
        // once instead of retrying a download until the timeout.
        let mut fixed: Vec<(OsString, OsString)> = vec![
            ("PATH".into(), layout.path.clone()),
            ("HOME".into(), HOME.into()),
            ("TMPDIR".into(), "/tmp".into()),
            ("XDG_CACHE_HOME".into(), sandbox_home.join(".cache").into()),
            ("LANG".into(), host.lang.clone().unwrap_or_else(|| "C.UTF-8".into())),
            ("CI".into(), "true".into()),
            ("TERM".into(), "dumb".into()),
        ];
        if let Some(tz) = &host.tz {
            fixed.push(("TZ".into(), tz.clone()));
        }
        fixed.extend(env);
        fixed.extend(offline_env(host));
        layout.env = fixed;
        Ok(layout)
    }

    /// True when `p` (absolute, canonical) exists inside at the same path.
    fn visible(&self, p: &Path) -> bool {
        self.inside(p).is_some_and(|inside| inside == p)
    }

    /// Where `p` (absolute, canonical) appears inside the sandbox, if it does.
    fn inside(&self, p: &Path) -> Option<PathBuf> {
        for m in &self.system {
            if let SystemMount::Dir(d) = m
                && p.starts_with(d)
            {
                return Some(p.to_owned());
            }
        }
        self.toolchains.iter().find_map(|b| p.strip_prefix(&b.src).ok().map(|rel| b.dest.join(rel)))
    }
}

/// The variables that make package managers work offline, and the host's tool selections that apply inside
/// too (`RUSTUP_TOOLCHAIN`, `PYENV_VERSION`).
pub(crate) fn offline_env(host: &HostEnv) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = [
        ("CARGO_NET_OFFLINE", "true"),
        ("RUSTUP_AUTO_INSTALL", "0"),
        ("GOPROXY", "off"),
        ("GOTOOLCHAIN", "local"),
        ("PIP_NO_INDEX", "1"),
        ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
        ("npm_config_offline", "true"),
        ("npm_config_update_notifier", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.into(), v.into()))
    .collect();
    if let Some(t) = &host.rustup_toolchain {
        env.push(("RUSTUP_TOOLCHAIN".into(), t.clone()));
    }
    if let Some(v) = &host.pyenv_version {
        env.push(("PYENV_VERSION".into(), v.clone()));
    }
    env
}

/// What to bind for a `PATH` entry outside the home: the `.tools` directory it lives in, the venv or the
/// `node_modules` project it belongs to, the prefix of a `.../bin`, or the entry itself.
fn path_bind_root(dir: &Path) -> PathBuf {
    let mut acc = PathBuf::new();
    for c in dir.components() {
        acc.push(c.as_os_str());
        if c.as_os_str() == ".tools" {
            return acc;
        }
    }
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let parent = dir.parent().filter(|p| *p != Path::new("/"));
    match (name, parent) {
        (".bin", Some(nm)) if nm.file_name().is_some_and(|n| n == "node_modules") => {
            nm.parent().filter(|p| *p != Path::new("/")).map_or_else(|| dir.to_owned(), Path::to_owned)
        }
        ("bin", Some(prefix)) => prefix.to_owned(),
        _ => dir.to_owned(),
    }
}

fn push_unique(v: &mut Vec<PathBuf>, p: PathBuf) {
    if !v.contains(&p) {
        v.push(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of<'a>(l: &'a Layout, k: &str) -> Option<&'a str> {
        l.env.iter().rev().find(|(key, _)| key == k).and_then(|(_, v)| v.to_str())
    }

    #[test]
    fn picks_the_root_to_bind_for_a_path_entry() {
        assert_eq!(path_bind_root(Path::new("/w/app/.tools/pyvenv/bin")), PathBuf::from("/w/app/.tools"));
        assert_eq!(path_bind_root(Path::new("/opt/node/bin")), PathBuf::from("/opt/node"));
        assert_eq!(path_bind_root(Path::new("/opt/nt/node_modules/.bin")), PathBuf::from("/opt/nt"));
        assert_eq!(path_bind_root(Path::new("/bin")), PathBuf::from("/bin"));
        assert_eq!(path_bind_root(Path::new("/opt/tools")), PathBuf::from("/opt/tools"));
    }

    #[test]
    fn lays_out_toolchains_without_the_home_or_the_data_dir() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path().canonicalize().unwrap();
        let home = r.join("home");
        for d in [".cargo/bin", ".cargo/registry", ".rustup/toolchains", ".local/bin", "go/pkg/mod"] {
            std::fs::create_dir_all(home.join(d)).unwrap();
        }
        std::fs::write(home.join(".cargo/credentials.toml"), "token = \"x\"").unwrap();
        let data = r.join("srv/data");
        let venv = r.join("srv/venv");
        std::fs::create_dir_all(data.join("bin")).unwrap();
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        let tools = r.join("checkout/.tools/pyvenv/bin");
        std::fs::create_dir_all(&tools).unwrap();
        let path = std::env::join_paths([
            home.join(".cargo/bin"),
            home.join(".local/bin"),
            data.join("bin"),
            venv.join("bin"),
            tools.clone(),
            PathBuf::from("/usr/bin"),
        ])
        .unwrap();
        let host = HostEnv { path, home: Some(home.clone()), lang: Some("en_US.UTF-8".into()), ..Default::default() };
        let layout = Layout::plan(&host, &[], std::slice::from_ref(&data)).unwrap();

        let binds: Vec<(&Path, &Path)> =
            layout.toolchains.iter().map(|b| (b.src.as_path(), b.dest.as_path())).collect();
        assert!(binds.contains(&(home.join(".rustup").as_path(), Path::new("/home/sandbox/.rustup"))), "{binds:?}");
        assert!(binds.contains(&(home.join(".cargo/bin").as_path(), Path::new("/home/sandbox/.cargo/bin"))));
        assert!(binds.contains(&(home.join(".cargo/registry").as_path(), Path::new("/home/sandbox/.cargo/registry"))));
        assert!(binds.contains(&(home.join("go/pkg/mod").as_path(), Path::new("/home/sandbox/go/pkg/mod"))));
        assert!(binds.contains(&(venv.as_path(), venv.as_path())), "a venv's prefix: {binds:?}");
        assert!(binds.contains(&(r.join("checkout/.tools").as_path(), r.join("checkout/.tools").as_path())));
        // Never the home itself, its other entries, cargo's credentials, nor the data dir.
        for (src, _) in &binds {
            assert!(*src != home && !src.starts_with(home.join(".local")), "{src:?}");
            assert!(!data.starts_with(src) && !src.starts_with(&data), "{src:?}");
            assert!(!src.ends_with(".cargo"), "{src:?}");
        }
        let skipped: Vec<&Path> = layout.skipped.iter().map(|(p, _)| p.as_path()).collect();
        assert!(skipped.contains(&home.join(".local/bin").as_path()), "{skipped:?}");
        assert!(skipped.contains(&data.join("bin").as_path()), "{skipped:?}");

        let path = env_of(&layout, "PATH").unwrap();
        let entries: Vec<&str> = path.split(':').collect();
        assert_eq!(entries[0], "/home/sandbox/.cargo/bin", "{path}");
        assert!(entries.contains(&venv.join("bin").to_str().unwrap()), "{path}");
        assert!(entries.contains(&tools.to_str().unwrap()), "{path}");
        assert!(!path.contains(home.to_str().unwrap()), "{path}");
        assert!(!path.contains(data.to_str().unwrap()), "{path}");
        assert_eq!(env_of(&layout, "HOME"), Some("/home/sandbox"));
        assert_eq!(env_of(&layout, "CARGO_HOME"), Some("/home/sandbox/.cargo"));
        assert_eq!(env_of(&layout, "RUSTUP_HOME"), Some("/home/sandbox/.rustup"));
        assert_eq!(env_of(&layout, "LANG"), Some("en_US.UTF-8"));
        assert_eq!(env_of(&layout, "CARGO_NET_OFFLINE"), Some("true"));
        assert!(layout.etc.iter().all(|p| !p.ends_with("shadow")));
        assert!(layout.etc.contains(&PathBuf::from("/etc/passwd")));
    }

    #[test]
    fn refuses_a_toolchain_that_would_show_the_data_dir() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path().canonicalize().unwrap();
        let data = r.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let host = HostEnv::default();
        let err = Layout::plan(&host, std::slice::from_ref(&r), std::slice::from_ref(&data)).unwrap_err();
        assert!(err.to_string().contains("the agent's data or repos dir"), "{err}");
        let err = Layout::plan(&host, &[r.join("missing")], &[]).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        // A data dir under /usr would be visible through the system bind.
        let err = Layout::plan(&host, &[], &[PathBuf::from("/usr/lib/sre-data")]).unwrap_err();
        assert!(err.to_string().contains("move it out of /usr"), "{err}");
    }

    #[test]
    fn absolute_paths_are_lexically_clean_when_missing() {
        assert_eq!(absolute(Path::new("/nonexistent/a/../b/./c")), PathBuf::from("/nonexistent/b/c"));
        assert!(absolute(Path::new("data")).is_absolute());
    }
}
