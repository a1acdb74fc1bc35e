//! The hermetic sandbox a recipe runs in: bubblewrap with every namespace unshared (an empty
//! network namespace), the image's root filesystem and the source read-only, only `/out`
//! writable (plus a size-capped private `/tmp`), a cleared environment, no capabilities, an
//! unprivileged user, rlimits on CPU time, address space, file size and processes, and a
//! wall-clock kill. The sandboxed process never sees a key: it only gets the image, the source
//! and an output directory, and the node reads what it wrote.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::image::Image;

/// The limits a build runs under. Hashed into every claim ([`SandboxPolicy::digest`]), so a
/// result says what it was allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxPolicy {
    /// CPU seconds per process (RLIMIT_CPU).
    pub cpu_secs: u64,
    /// Wall-clock seconds before the whole sandbox is killed.
    pub wall_secs: u64,
    /// Address space per process, bytes (RLIMIT_AS).
    pub memory_bytes: u64,
    /// Largest file a process may write, bytes (RLIMIT_FSIZE); also caps the build log.
    pub file_bytes: u64,
    /// Processes of the build user (RLIMIT_NPROC).
    pub processes: u64,
    /// Size of the private `/tmp`, bytes.
    pub tmp_bytes: u64,
    /// How much of the end of the build log a claim keeps, bytes.
    pub log_tail_bytes: u64,
    /// The first user id builds run as when the node runs as root (they never run as
    /// root). Concurrent builds take different ids from `build_uid` on, so one build's
    /// processes never count against another's process limit.
    pub build_uid: u32,
}

impl Default for SandboxPolicy {
    fn default() -> Self {
        Self {
            cpu_secs: 300,
            wall_secs: 600,
            memory_bytes: 4 << 30,
            file_bytes: 256 << 20,
            processes: 256,
            tmp_bytes: 1 << 30,
            log_tail_bytes: 16 << 10,
            build_uid: 200_000,
        }
    }
}

impl SandboxPolicy {
    /// SHA-256 of the policy's canonical JSON (lowercase hex).
    pub fn digest(&self) -> String {
        let bytes = hallmark_core::canonical::to_canonical_bytes(self).unwrap_or_default();
        hex::encode(Sha256::digest(bytes))
    }
}

/// How a sandboxed run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Termination {
    /// The build exited with this code (bubblewrap reports a signal as 128 + its number).
    Exited { code: i32 },
    /// The sandbox itself was killed by a signal.
    Signaled { signal: i32 },
    /// The wall-clock limit was reached and the sandbox killed.
    WallClock,
}

/// What a sandboxed run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub termination: Termination,
    /// The end of the combined stdout and stderr.
    pub log: String,
    pub elapsed_ms: u64,
}

/// Why the sandbox could not run at all (as opposed to a build that failed in it).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// bubblewrap is not installed, or cannot create namespaces here.
    #[error("the sandbox is unavailable: {0}")]
    Unavailable(String),
    #[error("sandbox I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl SandboxError {
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            SandboxError::Unavailable(_) => "sandbox_unavailable",
            SandboxError::Io(_) => "sandbox_io",
        }
    }
}

/// What runs in the sandbox.
pub struct SandboxRun<'a> {
    pub image: &'a Image,
    /// Mounted read-only at `/source` (the working directory).
    pub source: &'a Path,
    /// Mounted read-write at `/out`.
    pub out: &'a Path,
    /// Given to the image's entry point after its own fixed arguments.
    pub args: &'a [String],
}

/// The environment every build gets (then the image's own `env`).
const BASE_ENV: &[(&str, &str)] = &[
    (
        "PATH",
        "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
    ),
    ("HOME", "/tmp"),
    ("TMPDIR", "/tmp"),
    ("LANG", "C"),
    ("LC_ALL", "C"),
    ("TZ", "UTC"),
    ("SOURCE_DATE_EPOCH", "0"),
    ("CARGO_TARGET_DIR", "/tmp/target"),
    ("CARGO_NET_OFFLINE", "true"),
];

/// How many user ids concurrent builds rotate through, from `build_uid`.
const UID_SLOTS: u32 = 4096;
static NEXT_UID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Whether this process runs as root (then builds drop to the policy's `build_uid`).
fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Every directory from `/` to `path` must let an unprivileged user through, or bubblewrap,
/// running as that user, cannot mount it.
fn check_traversable(path: &Path) -> Result<(), SandboxError> {
    let mut at = PathBuf::new();
    for c in path.components() {
        at.push(c);
        let meta = fs::metadata(&at)?;
        if meta.is_dir() && meta.permissions().mode() & 0o001 == 0 {
            return Err(SandboxError::Unavailable(format!(
                "{} is not traversable by the unprivileged build user (mode {:o}); keep images and build directories under world-traversable directories",
                at.display(),
                meta.permissions().mode() & 0o7777
            )));
        }
    }
    Ok(())
}

/// The bubblewrap arguments for a run (everything before the entry point).
fn bwrap_args(policy: &SandboxPolicy, run: &SandboxRun<'_>) -> Vec<String> {
    let p = |x: &Path| x.to_string_lossy().into_owned();
    let mut a: Vec<String> = [
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--cap-drop",
        "ALL",
        "--hostname",
        "hallmark-build",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(["--ro-bind".into(), p(&run.image.rootfs), "/".into()]);
    a.extend(["--ro-bind".into(), p(run.source), "/source".into()]);
    a.extend(["--bind".into(), p(run.out), "/out".into()]);
    a.extend([
        "--proc".into(),
        "/proc".into(),
        "--dev".into(),
        "/dev".into(),
    ]);
    a.extend([
        "--size".into(),
        policy.tmp_bytes.to_string(),
        "--tmpfs".into(),
        "/tmp".into(),
    ]);
    a.extend(["--chdir".into(), "/source".into()]);
    let image_env = run
        .image
        .config
        .env
        .iter()
        .filter_map(|e| e.split_once('='));
    for (k, v) in BASE_ENV.iter().copied().chain(image_env) {
        a.extend(["--setenv".into(), k.into(), v.into()]);
    }
    a.push("--".into());
    a
}

/// Runs the image's entry point with `run.args` in the sandbox, to completion or a limit.
pub fn run(
    policy: &SandboxPolicy,
    bwrap: &Path,
    run: &SandboxRun<'_>,
) -> Result<RunReport, SandboxError> {
    if !bwrap.is_file() {
        return Err(SandboxError::Unavailable(format!(
            "{} is not installed (Debian: apt install bubblewrap)",
            bwrap.display()
        )));
    }
    let as_root = running_as_root();
    if as_root {
        for p in [&run.image.rootfs, run.source, run.out] {
            check_traversable(p)?;
        }
        // The unprivileged build user writes /out and nothing else of ours.
        fs::set_permissions(run.out, fs::Permissions::from_mode(0o777))?;
    }
    let log_dir = tempfile::tempdir()?;
    let log_path = log_dir.path().join("build.log");
    let log = fs::File::create(&log_path)?;
    fs::set_permissions(&log_path, fs::Permissions::from_mode(0o666))?;
    let mut cmd = Command::new(bwrap);
    cmd.args(bwrap_args(policy, run))
        .args(&run.image.config.entrypoint)
        .args(run.args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let limits = [
        (
            libc::RLIMIT_CPU,
            policy.cpu_secs,
            policy.cpu_secs.saturating_add(2),
        ),
        (libc::RLIMIT_AS, policy.memory_bytes, policy.memory_bytes),
        (libc::RLIMIT_FSIZE, policy.file_bytes, policy.file_bytes),
        (libc::RLIMIT_NPROC, policy.processes, policy.processes),
        (libc::RLIMIT_CORE, 0, 0),
    ];
    let uid = policy
        .build_uid
        .saturating_add(NEXT_UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % UID_SLOTS);
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe system calls (setrlimit, setgroups, setgid, setuid), allocating nothing.
    unsafe {
        cmd.pre_exec(move || {
            for (resource, soft, hard) in limits {
                let lim = libc::rlimit {
                    rlim_cur: soft as libc::rlim_t,
                    rlim_max: hard as libc::rlim_t,
                };
                if libc::setrlimit(resource, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if as_root
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(uid) != 0
                    || libc::setuid(uid) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| SandboxError::Unavailable(format!("starting {}: {e}", bwrap.display())))?;
    let deadline = started + Duration::from_secs(policy.wall_secs);
    let termination = loop {
        if let Some(status) = child.try_wait()? {
            break match (status.code(), status.signal()) {
                (Some(code), _) => Termination::Exited { code },
                (None, Some(signal)) => Termination::Signaled { signal },
                (None, None) => Termination::Exited { code: -1 },
            };
        }
        if Instant::now() >= deadline {
            // bubblewrap dies, its child gets SIGKILL (--die-with-parent), and with the
            // PID namespace's first process everything in it.
            let _ = child.kill();
            let _ = child.wait();
            break Termination::WallClock;
        }
        // Poll often while a build is young (most finish in milliseconds), less once it runs.
        let nap =
            (started.elapsed() / 20).clamp(Duration::from_millis(1), Duration::from_millis(25));
        std::thread::sleep(nap);
    };
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(RunReport {
        termination,
        log: read_tail(&log_path, policy.log_tail_bytes)?,
        elapsed_ms,
    })
}

/// The last `max` bytes of a file, as text.
fn read_tail(path: &Path, max: u64) -> std::io::Result<String> {
    let mut f = fs::File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(max);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    Ok(if start > 0 {
        format!("[… {start} earlier bytes]\n{text}")
    } else {
        text
    })
}

/// Why a finished run did not build: the `unverified` reason code and a one-line detail,
/// or `None` when it exited 0.
pub fn failure_of(report: &RunReport, policy: &SandboxPolicy) -> Option<(&'static str, String)> {
    const SIGKILL: i32 = 9;
    const SIGXCPU: i32 = 24;
    const SIGXFSZ: i32 = 25;
    let (signal, how) = match report.termination {
        Termination::Exited { code: 0 } => return None,
        Termination::WallClock => {
            return Some((
                "build_timeout",
                format!("killed after the {} s wall-clock limit", policy.wall_secs),
            ))
        }
        Termination::Signaled { signal } => (Some(signal), format!("signal {signal}")),
        // bubblewrap exits 128 + N when the build died of signal N.
        Termination::Exited { code } if (129..=128 + 64).contains(&code) => {
            (Some(code - 128), format!("signal {}", code - 128))
        }
        Termination::Exited { code } => (None, format!("exit code {code}")),
    };
    match signal {
        Some(SIGXCPU | SIGKILL) => {
            return Some((
                "build_timeout",
                format!("killed at the {} s CPU-time limit ({how})", policy.cpu_secs),
            ))
        }
        Some(SIGXFSZ) => {
            return Some((
                "resource_limit",
                format!(
                    "wrote a file past the {} byte limit ({how})",
                    policy.file_bytes
                ),
            ))
        }
        _ => {}
    }
    let log = report.log.to_ascii_lowercase();
    if log.contains("cannot allocate memory")
        || log.contains("out of memory")
        || log.contains("memory allocation of")
    {
        return Some((
            "resource_limit",
            format!("out of memory (limit {} bytes; {how})", policy.memory_bytes),
        ));
    }
    if log.contains("cannot fork")
        || (log.contains("fork") && log.contains("resource temporarily unavailable"))
    {
        return Some((
            "resource_limit",
            format!("too many processes (limit {}; {how})", policy.processes),
        ));
    }
    if log.contains("file too large") {
        return Some((
            "resource_limit",
            format!("a file past the {} byte limit ({how})", policy.file_bytes),
        ));
    }
    Some(("build_failed", format!("the build failed ({how})")))
}

/// The bubblewrap binary on `PATH`.
pub fn default_bwrap() -> PathBuf {
    crate::image::which("bwrap").unwrap_or_else(|| PathBuf::from("/usr/bin/bwrap"))
}
