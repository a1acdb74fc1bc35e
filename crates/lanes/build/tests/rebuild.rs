//! Rebuilds in the real sandbox (bubblewrap) with images made from this machine's Debian
//! tools: verified (exact and code-only), mismatched, and every unverified reason, including
//! a build that tries the network and builds past their limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use hallmark_build::host_images::{c_image, local_reference, wat_image};
use hallmark_build::lane::{BuildClaim, BuildLane, BuildSpec, RecipeSource};
use hallmark_build::{
    BuildStatus, Image, ImageStore, MatchKind, MemoryBlobs, Rebuilder, Recipe, SandboxPolicy,
    UnverifiedReason,
};

const CONTRACT_WAT: &str = r#"(module
  (func $add (export "add") (param i32 i32) (result i32)
    local.get 0 local.get 1 i32.add))
"#;

struct Env {
    _dir: tempfile::TempDir,
    store: ImageStore,
    image: Image,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::new(dir.path().join("images"));
    let image = wat_image(&store).unwrap();
    Env {
        _dir: dir,
        store,
        image,
    }
}

/// A source archive holding `files`, and its hash.
fn archive(files: &[(&str, &str)]) -> (Vec<u8>, String) {
    let bytes = hallmark_build::samples::pack("contract-1.0", files).unwrap();
    let sha = hallmark_build::sha256_hex(&bytes);
    (bytes, sha)
}

/// What the host's own wat2wasm makes of `wat` with `opts`.
fn host_wat2wasm(wat: &str, opts: &[&str]) -> Vec<u8> {
    hallmark_build::samples::wat2wasm(wat, opts).unwrap()
}

fn recipe(image: &str, source_sha: &str, opts: &[&str]) -> Recipe {
    Recipe {
        image: Some(image.to_string()),
        opts: opts.iter().map(|s| s.to_string()).collect(),
        source_sha256: Some(source_sha.to_string()),
        ..Recipe::default()
    }
}

fn rebuilder(store: &ImageStore, blobs: MemoryBlobs, policy: SandboxPolicy) -> Rebuilder {
    Rebuilder::new(store.clone(), Arc::new(blobs), policy)
}

#[test]
fn a_wat_contract_rebuilds_exactly_and_a_builder_claim_is_judged() {
    let e = env();
    let (src, src_sha) = archive(&[("contract.wat", CONTRACT_WAT)]);
    let published = host_wat2wasm(CONTRACT_WAT, &[]);
    let mut blobs = MemoryBlobs::default();
    blobs.insert(src);
    let wasm_sha = blobs.insert(published.clone());
    let r = rebuilder(&e.store, blobs, SandboxPolicy::default());
    let rec = recipe(&local_reference("wat", &e.image), &src_sha, &[]);
    let report = r.rebuild(&wasm_sha, &rec);
    assert_eq!(report.outcome.status, BuildStatus::Verified, "{report:?}");
    assert_eq!(report.outcome.match_kind, Some(MatchKind::Exact));
    assert_eq!(report.wasm.as_deref(), Some(published.as_slice()));
    assert_eq!(
        report.image_digest.as_deref(),
        Some(e.image.digest.as_str())
    );

    // The validator side: an honest claim agrees with a first-hand rebuild; a forged one not.
    let spec = BuildSpec {
        wasm_sha256: wasm_sha.clone(),
        recipe: rec.clone(),
        recipe_source: RecipeSource::OnchainMeta,
    };
    let claim = BuildClaim::of(&spec, &report);
    let honest = serde_json::to_vec(&claim).unwrap();
    let v = BuildLane::judge(&spec, &honest, &report);
    assert!(v.accepted, "{v:?}");
    let mut forged = claim.clone();
    forged.outcome.status = BuildStatus::Mismatched;
    forged.outcome.match_kind = None;
    let v = BuildLane::judge(&spec, &serde_json::to_vec(&forged).unwrap(), &report);
    assert_eq!(v.rejection.as_deref(), Some("claim_disagrees"));
    let v = BuildLane::judge(&spec, b"not json", &report);
    assert_eq!(v.rejection.as_deref(), Some("malformed_claim"));
    let mut lying = claim;
    lying.wasm_base64 = Some("AAAA".into());
    let v = BuildLane::judge(&spec, &serde_json::to_vec(&lying).unwrap(), &report);
    assert_eq!(v.rejection.as_deref(), Some("inconsistent_claim"));
}

#[test]
fn custom_sections_alone_differ_is_a_code_match_and_other_code_is_a_mismatch() {
    let e = env();
    let (src, src_sha) = archive(&[("contract.wat", CONTRACT_WAT)]);
    let mut blobs = MemoryBlobs::default();
    blobs.insert(src);
    // Published without names; the recipe builds with a `name` custom section.
    let plain = blobs.insert(host_wat2wasm(CONTRACT_WAT, &[]));
    let other = host_wat2wasm(&CONTRACT_WAT.replace("i32.add", "i32.sub"), &[]);
    let other_sha = blobs.insert(other);
    let r = rebuilder(&e.store, blobs, SandboxPolicy::default());
    let named = recipe(
        &local_reference("wat", &e.image),
        &src_sha,
        &["--debug-names"],
    );
    let report = r.rebuild(&plain, &named);
    assert_eq!(report.outcome.status, BuildStatus::Verified, "{report:?}");
    assert_eq!(report.outcome.match_kind, Some(MatchKind::Code));
    assert_ne!(
        report.outcome.rebuilt_sha256.as_deref(),
        Some(plain.as_str())
    );

    let plain_recipe = recipe(&local_reference("wat", &e.image), &src_sha, &[]);
    let report = r.rebuild(&other_sha, &plain_recipe);
    assert_eq!(report.outcome.status, BuildStatus::Mismatched, "{report:?}");
    assert_eq!(
        report.outcome.rebuilt_sha256.as_deref(),
        Some(plain.as_str())
    );
}

#[test]
fn missing_images_and_sources_are_unverified() {
    let e = env();
    let (src, src_sha) = archive(&[("contract.wat", CONTRACT_WAT)]);
    let mut blobs = MemoryBlobs::default();
    let wasm_sha = blobs.insert(host_wat2wasm(CONTRACT_WAT, &[]));
    let r = rebuilder(&e.store, blobs.clone(), SandboxPolicy::default());
    let unknown = format!("docker.io/x/y@sha256:{}", "ab".repeat(32));
    let rep = r.rebuild(&wasm_sha, &recipe(&unknown, &src_sha, &[]));
    assert_eq!(rep.outcome.reason, Some(UnverifiedReason::ImageUnavailable));
    let rep = r.rebuild(
        &wasm_sha,
        &recipe(&local_reference("wat", &e.image), &src_sha, &[]),
    );
    assert_eq!(
        rep.outcome.reason,
        Some(UnverifiedReason::SourceUnavailable)
    );
    // A blob source serving other bytes under the hash is no source at all.
    let mut lying = blobs;
    lying.0.insert(src_sha.clone(), b"other bytes".to_vec());
    let r = rebuilder(&e.store, lying, SandboxPolicy::default());
    let rep = r.rebuild(
        &wasm_sha,
        &recipe(&local_reference("wat", &e.image), &src_sha, &[]),
    );
    assert_eq!(
        rep.outcome.reason,
        Some(UnverifiedReason::SourceUnavailable)
    );
    assert!(rep.detail.contains("hashes to"), "{}", rep.detail);
    drop(src);
}

/// Runs a source whose build script is `script` and gives back the report.
fn run_script(e: &Env, script: &str, policy: SandboxPolicy) -> hallmark_build::RebuildReport {
    let (src, src_sha) = archive(&[("build.sh", script), ("contract.wat", CONTRACT_WAT)]);
    let mut blobs = MemoryBlobs::default();
    blobs.insert(src);
    let wasm_sha = blobs.insert(host_wat2wasm(CONTRACT_WAT, &[]));
    let r = rebuilder(&e.store, blobs, policy);
    r.rebuild(
        &wasm_sha,
        &recipe(&local_reference("wat", &e.image), &src_sha, &[]),
    )
}

#[test]
fn a_build_that_uses_the_network_fails_inside_the_sandbox() {
    let e = env();
    // A server on the host's loopback that the same command reaches from outside.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let probe = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo CONNECTED-LOOPBACK");
    let outside = Command::new("bash").args(["-c", &probe]).output().unwrap();
    assert!(
        outside.status.success(),
        "the probe works outside the sandbox"
    );
    let _ = listener.accept().unwrap();

    let script = format!(
        "bash -c '{probe}' || echo 'loopback: refused'\n\
         bash -c 'exec 3<>/dev/tcp/192.0.2.1/443 && echo CONNECTED-REMOTE' || echo 'remote: refused'\n\
         bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' && wat2wasm contract.wat -o /out/contract.wasm\n"
    );
    let rep = run_script(&e, &script, SandboxPolicy::default());
    assert_eq!(rep.outcome.status, BuildStatus::Unverified, "{rep:?}");
    assert_eq!(rep.outcome.reason, Some(UnverifiedReason::BuildFailed));
    assert!(!rep.log.contains("CONNECTED"), "{}", rep.log);
    assert!(rep.log.contains("Network is unreachable"), "{}", rep.log);
    assert!(rep.log.contains("Connection refused"), "{}", rep.log);
    // Nothing reached the host's listener.
    assert!(listener.accept().is_err());
}

#[test]
fn the_sandbox_is_read_only_keyless_and_clean() {
    let e = env();
    let script = "set +e\n\
        echo x > /source/touched && echo WROTE-SOURCE\n\
        echo x > /etc-touched && echo WROTE-ROOT\n\
        echo ok > /out/probe && echo WROTE-OUT\n\
        export -p\n\
        echo \"uid=$(bash -c 'echo $UID')\"\n\
        ls /\n\
        exit 1\n";
    let rep = run_script(&e, script, SandboxPolicy::default());
    let log = &rep.log;
    assert!(
        !log.contains("WROTE-SOURCE") && !log.contains("WROTE-ROOT"),
        "{log}"
    );
    assert!(log.contains("WROTE-OUT"), "{log}");
    assert!(
        !log.contains("CARGO_MANIFEST_DIR"),
        "the host environment leaked: {log}"
    );
    assert!(log.contains("SOURCE_DATE_EPOCH"), "{log}");
    // SAFETY: geteuid cannot fail.
    if unsafe { libc_geteuid() } == 0 {
        assert!(!log.contains("uid=0"), "{log}");
        assert!(log.contains("uid=2"), "{log}");
    }
    assert!(
        !log.contains("root\n") && !log.contains("work\n"),
        "host directories: {log}"
    );
    assert_eq!(rep.outcome.reason, Some(UnverifiedReason::BuildFailed));
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[test]
fn builds_past_their_limits_are_stopped_and_reported() {
    let e = env();
    let tight = SandboxPolicy {
        cpu_secs: 1,
        wall_secs: 20,
        file_bytes: 1 << 20,
        processes: 32,
        ..SandboxPolicy::default()
    };
    // CPU time.
    let rep = run_script(&e, "while :; do :; done\n", tight.clone());
    assert_eq!(
        rep.outcome.reason,
        Some(UnverifiedReason::BuildTimeout),
        "{rep:?}"
    );
    assert!(rep.detail.contains("CPU"), "{}", rep.detail);
    // Wall clock (sleeping uses no CPU).
    let wall = SandboxPolicy {
        wall_secs: 2,
        ..tight.clone()
    };
    let started = std::time::Instant::now();
    let rep = run_script(&e, "sleep 600\n", wall);
    assert_eq!(
        rep.outcome.reason,
        Some(UnverifiedReason::BuildTimeout),
        "{rep:?}"
    );
    assert!(rep.detail.contains("wall-clock"), "{}", rep.detail);
    assert!(
        started.elapsed().as_secs() < 60,
        "the sandbox was killed, not waited for"
    );
    // File size.
    let rep = run_script(
        &e,
        "bash -c 'while :; do printf \"%01024d\" 0; done > /out/big'\n",
        tight.clone(),
    );
    assert_eq!(
        rep.outcome.reason,
        Some(UnverifiedReason::ResourceLimit),
        "{rep:?}"
    );
    // Processes.
    let rep = run_script(
        &e,
        "i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i + 1)); done; wait\n",
        tight,
    );
    assert_eq!(
        rep.outcome.reason,
        Some(UnverifiedReason::ResourceLimit),
        "{rep:?}"
    );
}

#[test]
fn a_c_contract_rebuilds_with_clang_and_wasm_ld() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::new(dir.path().join("images"));
    let image = c_image(&store).unwrap();
    let c = "int add(int a, int b) { return a + b; }\n";
    let (src, src_sha) = archive(&[("add.c", c)]);
    let mut blobs = MemoryBlobs::default();
    blobs.insert(src);
    // What the same recipe makes outside the sandbox, with the host's own clang.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("add.c"), c).unwrap();
    let out = host.path().join("contract.wasm");
    let st = Command::new("clang")
        .current_dir(host.path())
        .args(["--target=wasm32", "-O2", "-nostdlib", "-ffreestanding"])
        .args(["-Wl,--no-entry", "-Wl,--export-dynamic", "-o"])
        .arg(&out)
        .arg("add.c")
        .status()
        .unwrap();
    assert!(st.success());
    let wasm = std::fs::read(&out).unwrap();
    let wasm_sha = blobs.insert(wasm);
    let r = rebuilder(&store, blobs, SandboxPolicy::default());
    let rep = r.rebuild(
        &wasm_sha,
        &recipe(&local_reference("c", &image), &src_sha, &[]),
    );
    assert_eq!(rep.outcome.status, BuildStatus::Verified, "{rep:?}");
    let _ = Path::new("");
}

#[test]
fn a_wasm_with_its_recipe_in_meta_rebuilds_byte_for_byte() {
    use hallmark_build::meta::with_meta;
    use hallmark_build::MetaEntry;
    let e = env();
    let (src, src_sha) = archive(&[("contract.wat", CONTRACT_WAT)]);
    let entry = |k: &str, v: &str| MetaEntry {
        key: k.into(),
        val: v.into(),
    };
    // What a developer publishes: the build of that source in that image, recording its
    // recipe with --meta (here appended by hallmark's own encoder, in the image by a shell
    // one: both must give the same XDR bytes).
    let entries = [
        entry("bldimg", &local_reference("wat", &e.image)),
        entry("source_sha256", &src_sha),
        entry("source_uri", "https://example.com/contract-1.0.tar.gz"),
        entry("note", "odd length value"),
    ];
    let published = with_meta(&host_wat2wasm(CONTRACT_WAT, &[]), &entries);
    let meta = hallmark_build::inspect(&published).unwrap();
    assert!(meta.recipe.is_complete());
    assert_eq!(meta.recipe.meta.len(), 4);
    let mut blobs = MemoryBlobs::default();
    blobs.insert(src);
    let wasm_sha = blobs.insert(published.clone());
    let r = rebuilder(&e.store, blobs, SandboxPolicy::default());
    let rep = r.rebuild(&wasm_sha, &meta.recipe);
    assert_eq!(rep.outcome.match_kind, Some(MatchKind::Exact), "{rep:?}");
    assert_eq!(rep.wasm.as_deref(), Some(published.as_slice()));
}

/// Writes `bytes` as a blob of an OCI layout; gives its digest.
fn oci_blob(layout: &Path, bytes: &[u8]) -> String {
    let hex = hallmark_build::sha256_hex(bytes);
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
    format!("sha256:{hex}")
}

#[test]
fn an_oci_layout_imports_under_its_manifest_digest_and_builds() {
    let e = env();
    // Layer 1: the wat image's root filesystem plus a file a later layer deletes.
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    tar.append_dir_all(".", &e.image.rootfs).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "etc/doomed", &b"gone"[..]).unwrap();
    let layer1 = tar.into_inner().unwrap().finish().unwrap();
    // Layer 2 (uncompressed): a whiteout for that file.
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "etc/.wh.doomed", &b""[..]).unwrap();
    let layer2 = tar.into_inner().unwrap();
    let layout = tempfile::tempdir().unwrap();
    let l = layout.path();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/usr/local/bin/build"], "Env": ["PATH=/usr/bin:/bin"], "WorkingDir": "/source"},
        "rootfs": {"type": "layers", "diff_ids": []}
    });
    let config_digest = oci_blob(l, &serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": 0},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": oci_blob(l, &layer1), "size": layer1.len()},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": oci_blob(l, &layer2), "size": layer2.len()}
        ]
    });
    let manifest_digest = oci_blob(l, &serde_json::to_vec(&manifest).unwrap());
    std::fs::write(l.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": 0}
    ]});
    std::fs::write(l.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();

    let img = e.store.import_oci_layout(l).unwrap();
    assert_eq!(img.digest, manifest_digest);
    assert!(
        !img.rootfs.join("etc/doomed").exists(),
        "the whiteout applied"
    );
    assert_eq!(img.config.entrypoint, ["/usr/local/bin/build"]);
    // A registry reference pinning that digest finds it, and it builds.
    let (src, src_sha) = archive(&[("contract.wat", CONTRACT_WAT)]);
    let mut blobs = MemoryBlobs::default();
    blobs.insert(src);
    let wasm_sha = blobs.insert(host_wat2wasm(CONTRACT_WAT, &[]));
    let r = rebuilder(&e.store, blobs, SandboxPolicy::default());
    let reference = format!("docker.io/hallmark/wat:1@{manifest_digest}");
    let rep = r.rebuild(&wasm_sha, &recipe(&reference, &src_sha, &[]));
    assert_eq!(rep.outcome.match_kind, Some(MatchKind::Exact), "{rep:?}");

    // A blob that does not hash to its name is refused.
    let hex = manifest_digest.trim_start_matches("sha256:");
    let cfg_hex = config_digest.trim_start_matches("sha256:");
    std::fs::write(l.join("blobs/sha256").join(cfg_hex), b"{}").unwrap();
    let other = ImageStore::new(tempfile::tempdir().unwrap().path().join("i"));
    let err = other.import_oci_layout(l).unwrap_err();
    assert_eq!(err.code(), "unsupported_image", "{err}");
    assert!(err.to_string().contains("does not hash"), "{err} {hex}");
}
