//! Every job type proves and verifies at several sizes, and every kind of tampering is
//! rejected with its own code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hallmark_stark::air::{hashchain, matmul};
use hallmark_stark::package::{decode_package, encode_package};
use hallmark_stark::{
    prove_job, JobSpec, JobType, ProveStage, PublicOutputs, SecurityPolicy, Verifier,
    MAX_PACKAGE_BYTES,
};

fn prove(job_type: JobType, size: u32, seed: u8) -> (JobSpec, Vec<u8>) {
    let spec = JobSpec::new(job_type, size, [seed; 32]).unwrap();
    let proved = prove_job(&spec, &SecurityPolicy::NETWORK, &mut |_| {}).unwrap();
    (spec, proved.package)
}

fn code(package: &[u8], expected: Option<&JobSpec>) -> &'static str {
    Verifier::default()
        .verify(package, expected)
        .expect_err("must be rejected")
        .code()
}

/// Decodes, edits and re-encodes a package (what a dishonest worker could ship).
fn edit(package: &[u8], f: impl FnOnce(&mut hallmark_stark::PackageBody)) -> Vec<u8> {
    let mut body = decode_package(package).unwrap();
    f(&mut body);
    encode_package(&body).unwrap()
}

#[test]
fn every_job_type_proves_and_verifies_at_several_sizes() {
    let cases: &[(JobType, &[u32])] = &[
        (JobType::Fib, &[1, 16, 100, 1024]),
        (JobType::Hashchain, &[1, 17, 256]),
        (JobType::Matmul, &[1, 3, 8, 20]),
    ];
    for &(job_type, sizes) in cases {
        for &size in sizes {
            let mut stages = Vec::new();
            let spec = JobSpec::new(job_type, size, [9; 32]).unwrap();
            let proved =
                prove_job(&spec, &SecurityPolicy::NETWORK, &mut |s| stages.push(s)).unwrap();
            assert_eq!(
                stages,
                ProveStage::ALL.to_vec(),
                "{job_type} {size}: every stage reported"
            );
            assert!(proved.package.len() <= MAX_PACKAGE_BYTES);
            let verified = Verifier::default()
                .verify(&proved.package, Some(&spec))
                .unwrap_or_else(|e| panic!("{job_type} {size}: {e}"));
            assert_eq!(verified.proof_hash, proved.proof_hash);
            assert_eq!(verified.security_bits, 96);
            match &verified.statement.outputs {
                PublicOutputs::Fib => assert!(verified.output.is_empty()),
                PublicOutputs::Hashchain { final_state } => {
                    assert_eq!(*final_state, hashchain::run(&spec).map(|v| v.0));
                }
                PublicOutputs::Matmul { digest_c, .. } => {
                    let (a, b) = matmul::inputs(&spec);
                    let c = a.mul(&b);
                    assert_eq!(*digest_c, c.digest());
                    assert_eq!(
                        verified.output,
                        c.entries.iter().map(|v| v.0).collect::<Vec<_>>()
                    );
                }
            }
        }
    }
}

#[test]
fn one_byte_of_the_proof_changed_is_rejected() {
    for job_type in JobType::ALL {
        let (spec, package) = prove(job_type, 8, 1);
        // A flipped byte on the wire: zstd's checksum catches it before stwo sees anything.
        let mut flipped = package.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x40;
        assert_eq!(code(&flipped, Some(&spec)), "malformed", "{job_type}");

        // A byte changed inside the proof and re-packaged cleanly: stwo must catch it.
        let commitment = edit(&package, |b| b.proof.0.commitments[1].0[7] ^= 1);
        assert_eq!(
            code(&commitment, Some(&spec)),
            "proof_invalid",
            "{job_type}"
        );
        let queried = edit(&package, |b| {
            let v = &mut b.proof.0.queried_values[1][0][0];
            *v = stwo::core::fields::m31::BaseField::from_u32_unchecked((v.0 + 1) % 0x7fff_ffff);
        });
        assert_eq!(code(&queried, Some(&spec)), "proof_invalid", "{job_type}");
        let sampled = edit(&package, |b| {
            let v = &mut b.proof.0.sampled_values[1][0][0];
            *v += stwo::core::fields::qm31::SecureField::from_u32_unchecked(1, 0, 0, 0);
        });
        assert_eq!(code(&sampled, Some(&spec)), "proof_invalid", "{job_type}");
        let pow = edit(&package, |b| b.proof.0.proof_of_work ^= 1);
        assert_eq!(code(&pow, Some(&spec)), "proof_invalid", "{job_type}");
    }
}

#[test]
fn other_public_inputs_are_rejected() {
    for job_type in JobType::ALL {
        let (spec, package) = prove(job_type, 4, 2);
        // The untouched package verifies, so each rejection below is due to its one change.
        Verifier::default().verify(&package, Some(&spec)).unwrap();
        // The caller expected another job.
        let other = JobSpec::new(job_type, 4, [3; 32]).unwrap();
        assert_eq!(
            code(&package, Some(&other)),
            "statement_mismatch",
            "{job_type}"
        );
        let bigger = JobSpec::new(job_type, 5, [2; 32]).unwrap();
        assert_eq!(
            code(&package, Some(&bigger)),
            "statement_mismatch",
            "{job_type}"
        );
        // The statement inside the package was swapped for another seed: the proof no longer
        // fits (transcript and logup sum both change).
        let reseeded = edit(&package, |b| b.statement.spec.seed.0[0] ^= 1);
        let expected = if job_type == JobType::Matmul {
            // The new seed's A and B no longer match their digests.
            "public_inputs"
        } else {
            "proof_invalid"
        };
        assert_eq!(code(&reseeded, None), expected, "{job_type}");
        if job_type == JobType::Matmul {
            // Even with the digests brought in line with the new seed, the shipped C is not
            // the new product and the proof does not fit.
            let consistent = edit(&package, |b| {
                b.statement.spec.seed.0[0] ^= 1;
                let (a, bm) = matmul::inputs(&b.statement.spec);
                if let PublicOutputs::Matmul {
                    digest_a, digest_b, ..
                } = &mut b.statement.outputs
                {
                    *digest_a = a.digest();
                    *digest_b = bm.digest();
                }
            });
            assert_eq!(code(&consistent, None), "proof_invalid");
        }
    }

    // Hashchain: a different claimed final state.
    let (spec, package) = prove(JobType::Hashchain, 8, 4);
    let forged = edit(&package, |b| {
        if let PublicOutputs::Hashchain { final_state } = &mut b.statement.outputs {
            final_state[3] = (final_state[3] + 1) % 0x7fff_ffff;
        }
    });
    assert_eq!(code(&forged, Some(&spec)), "proof_invalid");
    let non_canonical = edit(&package, |b| {
        if let PublicOutputs::Hashchain { final_state } = &mut b.statement.outputs {
            final_state[0] = 0x7fff_ffff;
        }
    });
    assert_eq!(code(&non_canonical, Some(&spec)), "public_inputs");

    // Matmul: a wrong product with a matching digest, a product that disagrees with its
    // digest, and a digest of A that is not the seed's A.
    let (spec, package) = prove(JobType::Matmul, 4, 5);
    let wrong_product = edit(&package, |b| {
        b.output[5] = (b.output[5] + 1) % 0x7fff_ffff;
        let c = matmul::Matrix {
            n: 4,
            entries: b
                .output
                .iter()
                .map(|&v| stwo::core::fields::m31::BaseField::from_u32_unchecked(v))
                .collect(),
        };
        if let PublicOutputs::Matmul { digest_c, .. } = &mut b.statement.outputs {
            *digest_c = c.digest();
        }
    });
    assert_eq!(code(&wrong_product, Some(&spec)), "proof_invalid");
    let stale_digest = edit(&package, |b| b.output[0] = (b.output[0] + 1) % 0x7fff_ffff);
    assert_eq!(code(&stale_digest, Some(&spec)), "public_inputs");
    let short = edit(&package, |b| {
        b.output.pop();
    });
    assert_eq!(code(&short, Some(&spec)), "public_inputs");
    let wrong_a = edit(&package, |b| {
        if let PublicOutputs::Matmul { digest_a, .. } = &mut b.statement.outputs {
            digest_a.0[0] ^= 1;
        }
    });
    assert_eq!(code(&wrong_a, Some(&spec)), "public_inputs");

    // Fib has no outputs; smuggled output data is refused.
    let (spec, package) = prove(JobType::Fib, 4, 6);
    let smuggled = edit(&package, |b| b.output = vec![1, 2, 3]);
    assert_eq!(code(&smuggled, Some(&spec)), "public_inputs");
    // Outputs of the wrong kind for the job.
    let kind = edit(&package, |b| {
        b.statement.outputs = PublicOutputs::Hashchain {
            final_state: [0; 16],
        }
    });
    assert_eq!(code(&kind, Some(&spec)), "invalid_statement");
}

#[test]
fn oversized_packages_are_rejected_before_decoding() {
    let (spec, package) = prove(JobType::Fib, 16, 7);
    let mut padded = package.clone();
    padded.resize(MAX_PACKAGE_BYTES + 1, 0);
    let err = Verifier::default()
        .verify(&padded, Some(&spec))
        .unwrap_err();
    assert_eq!(err.code(), "oversized");
    assert!(err.to_string().contains("262145"), "{err}");

    // A real proof over a verifier's cap is refused the same way.
    let strict = Verifier {
        max_package_bytes: package.len() - 1,
        ..Verifier::default()
    };
    assert_eq!(
        strict.verify(&package, Some(&spec)).unwrap_err().code(),
        "oversized"
    );

    // A tiny package that decompresses to more than the limit (a zstd bomb).
    let bomb_body = vec![0u8; 5 * 1024 * 1024];
    let mut bomb = hallmark_stark::package::MAGIC.to_vec();
    bomb.extend(zstd_compress(&bomb_body));
    assert!(bomb.len() < 64 * 1024);
    let err = Verifier::default().verify(&bomb, None).unwrap_err();
    assert_eq!(err.code(), "oversized");
    assert!(err.to_string().contains("decompresses past"), "{err}");
}

fn zstd_compress(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

#[test]
fn security_parameters_come_from_the_policy_not_the_proof() {
    let spec = JobSpec::new(JobType::Fib, 16, [8; 32]).unwrap();
    let weak = SecurityPolicy {
        pow_bits: 5,
        n_queries: 10,
        ..SecurityPolicy::NETWORK
    };
    let proved = prove_job(&spec, &weak, &mut |_| {}).unwrap();
    let err = Verifier::default()
        .verify(&proved.package, Some(&spec))
        .unwrap_err();
    assert_eq!(err.code(), "security_parameters");
    assert!(err.to_string().contains("25 bits"), "{err}");
    // Stronger than required is still not the policy: the network proves with one config.
    let strong = SecurityPolicy {
        n_queries: 50,
        ..SecurityPolicy::NETWORK
    };
    let proved = prove_job(&spec, &strong, &mut |_| {}).unwrap();
    assert_eq!(code(&proved.package, Some(&spec)), "security_parameters");
    // A verifier cannot be configured below the minimum.
    let lax = Verifier {
        policy: weak,
        ..Verifier::default()
    };
    assert_eq!(
        lax.verify(&proved.package, None).unwrap_err().code(),
        "weak_policy"
    );
}

#[test]
fn malformed_and_misshapen_proofs_are_rejected_without_panicking() {
    assert_eq!(code(b"", None), "malformed");
    assert_eq!(code(b"HMSTARK\x01not zstd", None), "malformed");
    assert_eq!(code(b"NOTSTARK", None), "malformed");
    let (spec, package) = prove(JobType::Matmul, 4, 9);
    let versioned = edit(&package, |b| b.version = 2);
    assert_eq!(code(&versioned, Some(&spec)), "unsupported_version");
    let fewer_columns = edit(&package, |b| {
        b.proof.0.sampled_values[1].pop();
    });
    assert_eq!(code(&fewer_columns, Some(&spec)), "proof_shape");
    let fewer_trees = edit(&package, |b| {
        b.proof.0.commitments.pop();
    });
    assert_eq!(code(&fewer_trees, Some(&spec)), "proof_shape");
    let no_fri_layers = edit(&package, |b| b.proof.0.fri_proof.inner_layers.clear());
    let c = code(&no_fri_layers, Some(&spec));
    assert!(c == "proof_invalid" || c == "proof_shape", "{c}");
    let no_queries = edit(&package, |b| {
        for tree in b.proof.0.queried_values.iter_mut() {
            for col in tree.iter_mut() {
                col.clear();
            }
        }
    });
    let c = code(&no_queries, Some(&spec));
    assert!(c == "proof_invalid" || c == "proof_shape", "{c}");
}
