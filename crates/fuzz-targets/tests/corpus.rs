//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through every target on stable
//! Rust: a crash libFuzzer found once, saved there, fails this test until it is fixed.
//!
//! `HALLMARK_WRITE_CORPUS=1 cargo test -p hallmark-fuzz-targets --test corpus` writes the seed
//! inputs again (each made here: simulated evidence, a real small proof, signed envelopes).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use base64::Engine as _;
use hallmark_core::{Keypair, Signed};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

/// The seed inputs per target, made from this code base's own generators.
fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut out: Vec<(&str, &str, Vec<u8>)> = vec![
        ("dimacs", "small", b"c a comment\np cnf 3 2\n1 -2 0\n2 3 0\n".to_vec()),
        // Issue 19, hole 5: a 25-byte header that once made the solver allocate without end.
        ("dimacs", "huge_header", b"p cnf 1000000000 1\n1 0\n".to_vec()),
        ("dimacs", "extra_clause", b"p cnf 2 1\n1 0\n2 0\n".to_vec()),
        ("witness", "v_lines", b"v 1 -2 3\nv -4 0\n".to_vec()),
        ("witness", "bad_literal", b"v 1 x 0\n".to_vec()),
        (
            "canonical_json",
            "mixed",
            br#"{"b":[1,2.5,-0,1e21,"\u00e9",null,true],"a":{"z":{},"y":[]}}"#.to_vec(),
        ),
        ("canonical_json", "big_int", b"[9223372036854775807, 18446744073709551616]".to_vec()),
        (
            "http_bodies",
            "new_round",
            br#"{"lane":"sat","params":{"vars":100,"clauses":400,"k":3,"count":3},"window_ms":1000}"#
                .to_vec(),
        ),
        ("http_bodies", "claim", br#"{"lease_secs":60}"#.to_vec()),
        ("http_bodies", "nonce_past_i64", br#"{"nonce":18446744073709551615}"#.to_vec()),
        ("wasm_meta", "header_only", b"\0asm\x01\0\0\0".to_vec()),
        (
            "wasm_meta",
            "custom_section",
            {
                let name = b"contractmetav0";
                let payload = [0u8, 0, 0, 0, 0, 0, 0, 3, b'k', b'e', b'y'];
                let mut w = b"\0asm\x01\0\0\0".to_vec();
                w.push(0);
                w.push((1 + name.len() + payload.len()) as u8);
                w.push(name.len() as u8);
                w.extend_from_slice(name);
                w.extend_from_slice(&payload);
                w
            },
        ),
        ("stark_package", "empty", Vec::new()),
    ];
    // A signed envelope and a job request.
    let key = Keypair::from_seed(&[7; 32]);
    let env = Signed::sign(
        &hallmark_node::jobs::JobRequest {
            lane: "stark".into(),
            spec: serde_json::json!({"job_type": "fib", "size": 64, "seed": "00".repeat(32)}),
            nonce: "0f".into(),
            created_ms: 1_800_000_000_000,
        },
        &key,
    )
    .unwrap();
    out.push((
        "dsse_envelope",
        "signed",
        serde_json::to_vec(env.envelope()).unwrap(),
    ));
    out.push((
        "http_bodies",
        "envelope",
        serde_json::to_vec(env.envelope()).unwrap(),
    ));
    // Simulated TDX and NVIDIA evidence from the devnet test root.
    let root = hallmark_tee::testroot::TestRootOfTrust::from_seed(b"fuzz").unwrap();
    let gpu = hallmark_tee::simulate::SimulatedInstance::new(
        "fuzz",
        "m",
        1,
        hallmark_tee::simulate::Misbehaviour::default(),
    );
    let ev = gpu.evidence(&root, "fuzz-nonce", 1_800_000_000).unwrap();
    out.push((
        "tdx_quote",
        "simulated",
        base64::engine::general_purpose::STANDARD
            .decode(&ev.quote)
            .unwrap(),
    ));
    out.push((
        "tdx_collateral",
        "simulated",
        serde_json::to_vec(&ev.collateral).unwrap(),
    ));
    if let Some(g) = &ev.gpu_evidence {
        out.push(("eat_token", "simulated", serde_json::to_vec(g).unwrap()));
    }
    // A real proof package (fib, 64 steps).
    let spec = hallmark_stark::JobSpec::new(hallmark_stark::JobType::Fib, 64, [3; 32]).unwrap();
    let proved = hallmark_stark::prove_job(
        &spec,
        &hallmark_stark::SecurityPolicy::default(),
        &mut |_| {},
    )
    .unwrap();
    out.push(("stark_package", "fib64", proved.package));
    out
}

#[test]
fn every_target_survives_its_corpus() {
    let dir = corpus_dir();
    if std::env::var_os("HALLMARK_WRITE_CORPUS").is_some() {
        for (target, name, bytes) in seeds() {
            let d = dir.join(target);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(format!("seed-{name}")), bytes).unwrap();
        }
    }
    for (target, run) in hallmark_fuzz_targets::TARGETS {
        let d = dir.join(target);
        let mut inputs: Vec<PathBuf> = std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("{}: {e} (no corpus for {target})", d.display()))
            .map(|e| e.unwrap().path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{target}: empty corpus");
        for path in inputs {
            let bytes = std::fs::read(&path).unwrap();
            run(&bytes);
            // Every prefix too: truncated input is the commonest malformation.
            for cut in [0, 1, bytes.len() / 2, bytes.len().saturating_sub(1)] {
                run(&bytes[..cut.min(bytes.len())]);
            }
        }
    }
}
