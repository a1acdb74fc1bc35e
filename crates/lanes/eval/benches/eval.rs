//! Eval-lane benchmarks, as ratios against baselines measured in the same run:
//!
//! 1. metering: the same submissions on the same task with fuel metering on and off (median
//!    of many runs each; "costly" is compute-bound, "cheap" is tool-call-bound);
//! 2. instantiation: compiling a submission (eager translation and validation) and
//!    instantiating it for one empty task, against the bare cost of the task thread;
//! 3. throughput: tasks per second on one core, the reference task at the default size.
//!
//! `cargo bench -p hallmark-eval`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use hallmark_eval::samples::{self, SUBMISSIONS};
use hallmark_eval::tasks::{corpus, task, EvalParams};
use hallmark_eval::{unpack, Sandbox};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed()
            })
            .collect(),
    )
}

fn module(name: &str) -> Vec<u8> {
    unpack(&samples::archive(name).unwrap()).unwrap().module
}

fn main() {
    let params = EvalParams {
        items: 4096,
        fuel_per_task: 1_000_000_000,
        ..EvalParams::default()
    };
    let words: Arc<[u64]> = corpus(&params).into();
    let t = task(&[7; 32], 0, &params);
    let input: Arc<[u8]> = t.input.clone().into();
    let metered = Sandbox::new(params.limits()).unwrap();
    let unmetered = Sandbox::with_metering(params.limits(), false).unwrap();
    let runs = 41;

    println!(
        "1. fuel metering (median of {runs} interleaved runs, {} items per task)",
        params.items
    );
    for name in ["costly", "cheap"] {
        let wasm = module(name);
        let (cm, cu) = (
            metered.compile(&wasm).unwrap(),
            unmetered.compile(&wasm).unwrap(),
        );
        // Interleaved, so drift on a shared machine hits both sides alike.
        let (mut ms, mut us) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let t = Instant::now();
            assert!(metered
                .run(&cm, input.clone(), words.clone())
                .outcome
                .is_ok());
            ms.push(t.elapsed());
            let t = Instant::now();
            assert!(unmetered
                .run(&cu, input.clone(), words.clone())
                .outcome
                .is_ok());
            us.push(t.elapsed());
        }
        let (m, u) = (median(ms), median(us));
        let fuel = metered.run(&cm, input.clone(), words.clone()).fuel;
        println!(
            "   {name:7} metered {m:>10.2?}  unmetered {u:>10.2?}  ratio {:.2}x  ({fuel} fuel, {:.0} Mfuel/s)",
            m.as_secs_f64() / u.as_secs_f64(),
            fuel as f64 / m.as_secs_f64() / 1e6
        );
    }

    println!("2. instantiation (median of {runs} runs)");
    let baseline = time(runs, || {
        std::thread::Builder::new()
            .stack_size(hallmark_eval::sandbox::TASK_STACK_BYTES)
            .spawn(|| 1)
            .unwrap()
            .join()
            .unwrap()
    });
    let empty = samples::wat2wasm(r#"(module (memory (export "memory") 1) (func (export "run")))"#)
        .unwrap();
    let ce = metered.compile(&empty).unwrap();
    let inst = time(runs, || metered.run(&ce, input.clone(), words.clone()));
    println!(
        "   empty task {inst:.2?} vs bare task thread (same stack) {baseline:.2?}: ratio {:.2}x",
        inst.as_secs_f64() / baseline.as_secs_f64()
    );
    for (name, _, _) in SUBMISSIONS {
        let wasm = module(name);
        let c = time(runs, || metered.compile(&wasm));
        println!("   compile {name:7} ({:>5} bytes) {c:>10.2?}", wasm.len());
    }

    println!("3. throughput on one core (default parameters, reference-sized tasks)");
    let params = EvalParams::default();
    let words: Arc<[u64]> = corpus(&params).into();
    let sandbox = Sandbox::new(params.limits()).unwrap();
    let tasks: Vec<Arc<[u8]>> = (0..256u32)
        .map(|i| task(&[9; 32], i, &params).input.into())
        .collect();
    for name in ["cheap", "costly"] {
        let c = sandbox.compile(&module(name)).unwrap();
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs(2) {
            let r = sandbox.run(&c, tasks[n as usize % tasks.len()].clone(), words.clone());
            assert!(r.outcome.is_ok());
            n += 1;
        }
        println!(
            "   {name:7} {:.0} tasks/s per core",
            n as f64 / start.elapsed().as_secs_f64()
        );
    }
}
