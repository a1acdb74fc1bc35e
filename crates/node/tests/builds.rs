//! The build lane end to end over real HTTP between real nodes: wasm handed to the
//! coordinator's verification API, rebuilt by a builder and first-hand by every validator in
//! the bubblewrap sandbox (images made from Debian's wabt), decided by a certificate of 2/3 of
//! stake, and served with its trust level. Verified, mismatched and unverified (a build that
//! tries the network, a build over its time limit), and the API's refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use hallmark_build::host_images::{local_reference, wat_image};
use hallmark_build::{samples, ImageStore};
use hallmark_core::{Keypair, Signed};
use hallmark_ledger::{BuildManagersApproval, TxBody};
use hallmark_node::builds::{VerificationView, WasmView};
use hallmark_node::config::{GenesisBalance, NodeConfig, RoleName};
use hallmark_node::http_ledger::HttpLedger;
use hallmark_node::registration::submit_tx;
use hallmark_node::run::{run_node_with, write_secret, RunningNode};
use hallmark_node::{LaneRegistry, NodeClient};

const WAT: &str = "(module (func (export \"add\") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))\n";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn cfg(dir: &Path, name: &str, images: &Path) -> NodeConfig {
    let mut c = NodeConfig {
        name: name.into(),
        data_dir: dir.join(name),
        ..NodeConfig::default()
    };
    let build: toml::Value = toml::from_str(&format!(
        "images_dir = {:?}\ntrusted_images = []\n[sandbox]\ncpu_secs = 3\nwall_secs = 8\n",
        images.display().to_string()
    ))
    .unwrap();
    c.lanes.insert("build".into(), build);
    // The validators here register after the ledger starts and vote at once.
    c.ledger.stake_epoch_secs = 0;
    c
}

/// A source archive holding `files`, and its hash.
fn archive(files: &[(&str, &str)]) -> (Vec<u8>, String) {
    let bytes = samples::pack("contract", files).unwrap();
    let sha = hallmark_build::sha256_hex(&bytes);
    (bytes, sha)
}

fn wat2wasm(wat: &str) -> Vec<u8> {
    samples::wat2wasm(wat, &[]).unwrap()
}

/// A wasm built from `code` whose meta names `image` and the source `source_sha`.
fn published(code: &str, image: &str, source_sha: &str) -> Vec<u8> {
    samples::published(code, image, source_sha).unwrap()
}

async fn wait_final(c: &NodeClient, id: &str) -> VerificationView {
    let start = Instant::now();
    loop {
        let v: VerificationView = c.get(&format!("/v1/verify/{id}")).await.unwrap();
        if !matches!(v.status.as_str(), "queued" | "building") {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "verification {id} not decided: {v:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn submit(c: &NodeClient, wasm: &[u8], source: Option<&[u8]>) -> VerificationView {
    let body = serde_json::json!({
        "wasm_base64": b64(wasm),
        "source_base64": source.map(b64),
    });
    c.post("/v1/verify", &body).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verified_mismatched_and_unverified_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let images: PathBuf = d.join("images");
    let image = wat_image(&ImageStore::new(&images)).unwrap();
    let image_ref = local_reference("wat", &image);
    let coldkey = Keypair::generate();
    let coldkey_file = d.join("coldkey");
    write_secret(&coldkey_file, &coldkey.seed_hex()).unwrap();
    let registry = |c: &NodeConfig| LaneRegistry::standard(c).unwrap();
    let council: Vec<Keypair> = (0..3).map(|_| Keypair::generate()).collect();
    let mut c = cfg(d, "ledger", &images);
    c.ledger.genesis = vec![GenesisBalance {
        account: coldkey.public(),
        balance: 1_000_000,
    }];
    c.ledger.build_council = council.iter().map(|k| k.public()).collect();
    c.ledger.build_council_threshold = 2;
    let ledger = run_node_with(RoleName::Ledger, &c, registry(&c))
        .await
        .unwrap();
    let operator = Keypair::generate();
    let mut c = cfg(d, "coordinator", &images);
    c.network.ledger_url = ledger.url();
    c.coordinator.jobs.settle_poll_ms = 100;
    c.coordinator.builds.poll_ms = 100;
    c.coordinator.operators = vec![operator.public()];
    c.coordinator.builds.search_images = vec![image_ref.clone()];
    c.coordinator.builds.search_opts = vec![vec!["--debug-names".into()], vec![]];
    let coordinator = run_node_with(RoleName::Coordinator, &c, registry(&c))
        .await
        .unwrap();
    let net = |c: &mut NodeConfig, stake: u64| {
        c.network.ledger_url = ledger.url();
        c.network.coordinator_url = coordinator.url();
        c.network.coordinator_hotkey = Some(coordinator.hotkey);
        c.network.coldkey_file = Some(coldkey_file.clone());
        c.network.stake = stake;
    };
    let mut nodes: Vec<RunningNode> = Vec::new();
    for i in 0..3 {
        let mut c = cfg(d, &format!("validator-{i}"), &images);
        net(&mut c, 5_000);
        c.validator.poll_ms = 50;
        nodes.push(
            run_node_with(RoleName::Validator, &c, registry(&c).without_executors())
                .await
                .unwrap(),
        );
    }
    let mut c = cfg(d, "builder", &images);
    net(&mut c, 1_000);
    c.worker.poll_ms = 50;
    nodes.push(
        run_node_with(RoleName::Worker, &c, registry(&c))
            .await
            .unwrap(),
    );
    let coord = NodeClient::new(&coordinator.url());

    // Refusals first: not wasm, no recipe, a source that is not the recipe's, bad names.
    let err = coord
        .post::<_, VerificationView>(
            "/v1/verify",
            &serde_json::json!({"wasm_base64": b64(b"not wasm")}),
        )
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(422), Some("not_wasm")));
    let err = coord
        .post::<_, VerificationView>(
            "/v1/verify",
            &serde_json::json!({"wasm_base64": b64(&wat2wasm(WAT))}),
        )
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(422), Some("no_recipe")));
    let err = coord
        .post::<_, VerificationView>("/v1/verify", &serde_json::json!({"wasm_base64": "@@"}))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(400), Some("invalid_base64"))
    );
    let (src, src_sha) = archive(&[("contract.wat", WAT)]);
    let exact = published(WAT, &image_ref, &src_sha);
    let err = coord
        .post::<_, VerificationView>(
            "/v1/verify",
            &serde_json::json!({"wasm_base64": b64(&exact), "source_base64": b64(b"other")}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(422), Some("source_mismatch"))
    );
    let err = coord
        .get::<WasmView>(&format!("/v1/wasms/{}", "0".repeat(64)))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    let err = coord.get::<WasmView>("/v1/wasms/xyz").await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(400), Some("invalid_sha256"))
    );

    // Verified, exact: the published wasm is what its source builds in its image.
    let v = submit(&coord, &exact, Some(&src)).await;
    assert_eq!(v.recipe_source, "onchain_meta");
    assert!(matches!(v.status.as_str(), "queued" | "building"));
    // A resubmission returns the same verification.
    let again = submit(&coord, &exact, None).await;
    assert_eq!(again.verification_id, v.verification_id);
    // Mismatched: the published code is not what the source builds.
    let other = published(&WAT.replace("i32.add", "i32.mul"), &image_ref, &src_sha);
    let m = submit(&coord, &other, None).await;
    // Unverified: a build script that tries the network, and one over its time limit.
    let (net_src, net_sha) = archive(&[
        ("contract.wat", WAT),
        (
            "build.sh",
            "bash -c 'exec 3<>/dev/tcp/192.0.2.1/443' || { echo 'network unreachable from the sandbox'; exit 1; }\n",
        ),
    ]);
    let n = submit(
        &coord,
        &published(WAT, &image_ref, &net_sha),
        Some(&net_src),
    )
    .await;
    let (slow_src, slow_sha) =
        archive(&[("contract.wat", WAT), ("build.sh", "while :; do :; done\n")]);
    let t = submit(
        &coord,
        &published(WAT, &image_ref, &slow_sha),
        Some(&slow_src),
    )
    .await;

    let v = wait_final(&coord, &v.verification_id).await;
    assert_eq!(v.status, "verified", "{v:?}");
    assert_eq!(v.match_kind.as_deref(), Some("exact"));
    assert_eq!(v.rebuilt_sha256.as_deref(), Some(v.wasm_sha256.as_str()));
    assert!(v.job_completed && v.certificate_votes >= 2, "{v:?}");
    // A known image (in the store) with a source the network serves.
    assert_eq!(v.image_trust, "auditable");
    let m = wait_final(&coord, &m.verification_id).await;
    assert_eq!(m.status, "mismatched", "{m:?}");
    assert_eq!(m.rebuilt_sha256.as_deref(), Some(v.wasm_sha256.as_str()));
    assert!(m.certificate.is_some());
    let n = wait_final(&coord, &n.verification_id).await;
    assert_eq!(n.status, "unverified", "{n:?}");
    assert_eq!(n.error.as_ref().unwrap().code, "build_failed");
    assert!(
        n.log
            .as_deref()
            .unwrap_or_default()
            .contains("Network is unreachable"),
        "{n:?}"
    );
    assert!(n.certificate.is_some());
    let t = wait_final(&coord, &t.verification_id).await;
    assert_eq!(t.status, "unverified", "{t:?}");
    assert_eq!(t.error.as_ref().unwrap().code, "build_timeout");

    // Every verification of a wasm, 200 once one is decided.
    let w: WasmView = coord
        .get(&format!("/v1/wasms/{}", v.wasm_sha256))
        .await
        .unwrap();
    assert_eq!(w.verifications.len(), 1);
    let served = coord
        .get_bytes(&format!("/v1/blobs/{}", v.wasm_sha256))
        .await
        .unwrap();
    assert_eq!(served, exact);
    // What builders and validators fetch blobs with refuses one larger than its cap.
    let path = format!("/v1/blobs/{}", v.wasm_sha256);
    assert_eq!(
        coord.get_bytes_capped(&path, exact.len()).await.unwrap(),
        exact
    );
    let err = coord
        .get_bytes_capped(&path, exact.len() - 1)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");

    // Cancelling: unsigned is refused, a stranger is refused, the submitter may, once. Its
    // build script sleeps, so the verification is still open when the cancel arrives.
    let submitter = Keypair::generate();
    let (c_src, c_sha) = archive(&[("contract.wat", "(module)\n"), ("build.sh", "sleep 3\n")]);
    let body = serde_json::json!({
        "wasm_base64": b64(&published("(module)\n", &image_ref, &c_sha)),
        "source_base64": b64(&c_src),
    });
    let signed = coord.clone().signed_by(submitter.clone());
    let c: VerificationView = signed.post("/v1/verify", &body).await.unwrap();
    let path = format!("/v1/verify/{}", c.verification_id);
    let err = coord.delete::<VerificationView>(&path).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    let err = coord
        .clone()
        .signed_by(Keypair::generate())
        .delete::<VerificationView>(&path)
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(403), Some("not_allowed")));
    let cancelled: VerificationView = signed.delete(&path).await.unwrap();
    assert_eq!(cancelled.status, "unverified");
    assert_eq!(cancelled.error.unwrap().code, "cancelled");
    let err = signed.delete::<VerificationView>(&path).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(409), Some("already_finished"))
    );
    // The job behind it ends, but the cancelled verification stays cancelled.
    let job = cancelled.job_id.clone();
    let start = Instant::now();
    while let Some(j) = &job {
        let view: serde_json::Value = coord.get(&format!("/v1/jobs/{j}")).await.unwrap();
        if matches!(view["status"].as_str(), Some("approved" | "rejected")) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after: VerificationView = coord.get(&path).await.unwrap();
    assert_eq!(after.error.unwrap().code, "cancelled");

    // Trigger B: a wasm without meta is kept; once the build council (2 of 3) names a build
    // manager and the manager records its recipe on the ledger, it is verified like native meta.
    let plain = wat2wasm(WAT);
    let plain_sha = hallmark_build::sha256_hex(&plain);
    let (r_src, r_sha) = archive(&[("contract.wat", WAT)]);
    // (Its source is the exact case's archive, which the coordinator already serves.)
    assert_eq!(r_src, src);
    let err = coord
        .post::<_, VerificationView>(
            "/v1/verify",
            &serde_json::json!({"wasm_base64": b64(&plain)}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("no_recipe"));
    let http = HttpLedger::new(&ledger.url());
    let chain = http.chain_id().await.unwrap();
    let manager = Keypair::generate();
    let recipe = serde_json::json!({"image": image_ref, "source_sha256": r_sha});
    let write = || TxBody::SetBuildInfo {
        wasm_sha256: plain_sha.clone(),
        recipe: recipe.clone(),
    };
    let err = submit_tx(&http, &chain, &manager, write())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unauthorized", "{err}");
    let approve = |k: &Keypair, version: u64| {
        Signed::sign(
            &BuildManagersApproval {
                chain_id: chain.clone(),
                version,
                managers: vec![manager.public()],
            },
            k,
        )
        .unwrap()
        .envelope()
        .clone()
    };
    let set = |version: u64, approvals: Vec<hallmark_core::Envelope>| TxBody::SetBuildManagers {
        version,
        managers: vec![manager.public()],
        approvals,
    };
    // One approval, or the same member twice, is not two of three.
    let one = set(1, vec![approve(&council[0], 1), approve(&council[0], 1)]);
    let err = submit_tx(&http, &chain, &council[0], one)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unauthorized", "{err}");
    // A stranger's approval does not count.
    let stranger = set(
        1,
        vec![approve(&council[0], 1), approve(&Keypair::generate(), 1)],
    );
    let err = submit_tx(&http, &chain, &council[0], stranger)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unauthorized", "{err}");
    let two = set(1, vec![approve(&council[0], 1), approve(&council[2], 1)]);
    submit_tx(&http, &chain, &council[1], two.clone())
        .await
        .unwrap();
    // The same approvals again (a replay) are for a version that is no longer next.
    let err = submit_tx(&http, &chain, &council[1], two)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_transaction", "{err}");
    let managers = http.build_managers().await.unwrap();
    assert_eq!(
        (managers.version, managers.managers.clone()),
        (1, vec![manager.public()])
    );
    submit_tx(&http, &chain, &manager, write()).await.unwrap();
    let start = Instant::now();
    let r = loop {
        match coord
            .get::<WasmView>(&format!("/v1/wasms/{plain_sha}"))
            .await
        {
            Ok(w) => break w.verifications[0].clone(),
            Err(e) if e.status() == Some(404) && start.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("the registry entry queued nothing: {e}"),
        }
    };
    assert_eq!(r.recipe_source, "registry");
    let r = wait_final(&coord, &r.verification_id).await;
    assert_eq!(r.status, "verified", "{r:?}");
    assert_eq!(r.match_kind.as_deref(), Some("exact"));

    // Search: a wasm with its source but no recipe anywhere. Builders try every configured
    // candidate (the image with and without --debug-names); the one that reproduces it is
    // confirmed by the validators' own rebuilds.
    let sub = WAT.replace("i32.add", "i32.sub");
    let (s_src, _) = archive(&[("contract.wat", &sub)]);
    let body =
        serde_json::json!({"wasm_base64": b64(&wat2wasm(&sub)), "source_base64": b64(&s_src)});
    let found: VerificationView = coord.post("/v1/verify", &body).await.unwrap();
    assert_eq!(found.recipe_source, "search");
    let found = wait_final(&coord, &found.verification_id).await;
    assert_eq!(found.status, "verified", "{found:?}");
    assert_eq!(found.match_kind.as_deref(), Some("exact"));
    assert_eq!(found.recipe["opts"], serde_json::json!([]), "{found:?}");
    assert!(found.certificate_votes >= 2);
    // A wasm no candidate reproduces.
    let (n_src, _) = archive(&[("contract.wat", WAT)]);
    let body =
        serde_json::json!({"wasm_base64": b64(&wat2wasm(&sub)[..]), "source_base64": b64(&n_src)});
    let none: VerificationView = coord.post("/v1/verify", &body).await.unwrap();
    let none = wait_final(&coord, &none.verification_id).await;
    assert_eq!(none.status, "unverified", "{none:?}");
    assert_eq!(none.error.unwrap().code, "no_reproducing_recipe");

    for n in nodes.into_iter().chain([coordinator, ledger]) {
        n.stop().await;
    }
}
