//! Build-lane benchmarks, as ratios against a baseline measured in the same run:
//!
//! 1. sandbox start-up: the same `wat2wasm` run plainly and inside the sandbox (bubblewrap,
//!    namespaces, rlimits, the image's entry point), median of many runs each;
//! 2. throughput: full rebuilds (fetch, unpack, sandboxed build, compare) per minute with 1, 2
//!    and 4 builders working side by side, against one builder.
//!
//! `cargo bench -p hallmark-build` (set `BUILD_BENCH_SECS` to change the throughput window).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hallmark_build::host_images::{local_reference, wat_image};
use hallmark_build::samples::COUNTER_WAT;
use hallmark_build::sandbox::{self, SandboxPolicy, SandboxRun};
use hallmark_build::source::pack_dir;
use hallmark_build::{ImageStore, MemoryBlobs, Rebuilder, Recipe};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::new(dir.path().join("images"));
    let image = wat_image(&store).unwrap();
    let src_dir = dir.path().join("src");
    std::fs::create_dir(&src_dir).unwrap();
    std::fs::write(src_dir.join("counter.wat"), COUNTER_WAT).unwrap();
    std::fs::set_permissions(
        &src_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let runs = 40;

    // 1. The same tool, plainly and in the sandbox.
    let plain: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let st = Command::new("wat2wasm")
                .arg(src_dir.join("counter.wat"))
                .arg("-o")
                .arg(out_dir.join("plain.wasm"))
                .status()
                .unwrap();
            assert!(st.success());
            t.elapsed()
        })
        .collect();
    let policy = SandboxPolicy::default();
    let bwrap = sandbox::default_bwrap();
    let args: Vec<String> = vec!["contract".into(), "build".into()];
    let boxed: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let r = sandbox::run(
                &policy,
                &bwrap,
                &SandboxRun {
                    image: &image,
                    source: &src_dir,
                    out: &out_dir,
                    args: &args,
                },
            )
            .unwrap();
            assert!(sandbox::failure_of(&r, &policy).is_none(), "{r:?}");
            t.elapsed()
        })
        .collect();
    let (p, b) = (median(plain), median(boxed));
    println!("sandbox start-up: wat2wasm on the counter contract, median of {runs} runs each");
    println!("  plain exec        {:>8.2} ms", p.as_secs_f64() * 1e3);
    println!("  in the sandbox    {:>8.2} ms", b.as_secs_f64() * 1e3);
    println!(
        "  ratio             {:>8.2}x  (sandbox overhead {:.2} ms per build)",
        b.as_secs_f64() / p.as_secs_f64(),
        (b.as_secs_f64() - p.as_secs_f64()) * 1e3
    );

    // 2. Full rebuilds per minute as builders are added.
    let archive = pack_dir(&src_dir, "counter-1.0").unwrap();
    let mut blobs = MemoryBlobs::default();
    let src_sha = blobs.insert(archive);
    let wasm = std::fs::read(out_dir.join("plain.wasm")).unwrap();
    let wasm_sha = blobs.insert(wasm);
    let recipe = Recipe {
        image: Some(local_reference("wat", &image)),
        source_sha256: Some(src_sha),
        ..Recipe::default()
    };
    let rebuilder = Arc::new(Rebuilder::new(store, Arc::new(blobs), policy));
    let window = Duration::from_secs(
        std::env::var("BUILD_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10),
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "\nrebuilds per minute (fetch, unpack, sandboxed build, compare), {} s window, {cores} cores",
        window.as_secs()
    );
    let mut base = None;
    for builders in [1usize, 2, 4] {
        let start = Instant::now();
        let done: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..builders)
                .map(|_| {
                    let r = rebuilder.clone();
                    let (recipe, wasm_sha) = (recipe.clone(), wasm_sha.clone());
                    s.spawn(move || {
                        let mut n = 0;
                        while start.elapsed() < window {
                            let rep = r.rebuild(&wasm_sha, &recipe);
                            assert_eq!(
                                rep.outcome.status,
                                hallmark_build::BuildStatus::Verified,
                                "{rep:?}"
                            );
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        let per_min = done as f64 * 60.0 / start.elapsed().as_secs_f64();
        let base_rate = *base.get_or_insert(per_min);
        println!(
            "  {builders} builder(s)      {per_min:>8.0} rebuilds/min   {:>5.2}x one builder",
            per_min / base_rate
        );
    }
}
