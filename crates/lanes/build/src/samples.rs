//! Sample contracts the devnet and tests ship: a counter in WebAssembly text, and build
//! scripts that misbehave (reach for the network, never finish). Each sample is a source
//! archive plus the wasm published from it, whose `contractmetav0` meta names the recipe.

use crate::meta::{sha256_hex, with_meta, MetaEntry};

/// The counter contract's source.
pub const COUNTER_WAT: &str = include_str!("../contracts/counter.wat");
/// A build script that reaches for the network.
pub const REACHES_NETWORK_SH: &str = include_str!("../contracts/reaches_network.sh");
/// A build script that never finishes.
pub const SPINS_SH: &str = include_str!("../contracts/spins.sh");

/// A source archive and the wasm published from it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// What the sample shows (`exact`, `mismatched`, `network`, `timeout`).
    pub case: &'static str,
    pub source: Vec<u8>,
    pub source_sha256: String,
    /// The published wasm (its meta holds the recipe).
    pub wasm: Vec<u8>,
}

/// Packs `files` (name, text) into a reproducible source archive whose one top-level
/// directory is `prefix`.
pub fn pack(prefix: &str, files: &[(&str, &str)]) -> std::io::Result<Vec<u8>> {
    let dir = tempfile::tempdir()?;
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text)?;
    }
    crate::source::pack_dir(dir.path(), prefix)
}

/// Assembles `wat` with this machine's wat2wasm and `opts` (what a developer's build in the
/// image makes).
pub fn wat2wasm(wat: &str, opts: &[&str]) -> std::io::Result<Vec<u8>> {
    let dir = tempfile::tempdir()?;
    let (src, out) = (dir.path().join("c.wat"), dir.path().join("c.wasm"));
    std::fs::write(&src, wat)?;
    let st = std::process::Command::new("wat2wasm")
        .args(opts)
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .status()?;
    if !st.success() {
        return Err(std::io::Error::other(format!("wat2wasm failed: {st}")));
    }
    std::fs::read(out)
}

/// The wasm `code` assembles to, published with meta naming the image `reference` and the
/// source archive `source_sha256` (the recipe a SEP-58 build records).
pub fn published(code: &str, reference: &str, source_sha256: &str) -> std::io::Result<Vec<u8>> {
    let e = |k: &str, v: &str| MetaEntry {
        key: k.into(),
        val: v.into(),
    };
    Ok(with_meta(
        &wat2wasm(code, &[])?,
        &[e("bldimg", reference), e("source_sha256", source_sha256)],
    ))
}

/// The four devnet cases for `reference`, an image made by
/// [`crate::host_images::wat_image`]:
/// - `exact`: the counter, published as its source builds (verified, exact);
/// - `mismatched`: a wasm whose code differs from what its named source builds;
/// - `network`: a source whose build script reaches for the network (unverified,
///   build_failed);
/// - `timeout`: a source whose build never ends (unverified, build_timeout).
pub fn devnet_samples(reference: &str) -> std::io::Result<Vec<Sample>> {
    let published = |code: &str, source_sha: &str| published(code, reference, source_sha);
    let mut out = Vec::new();
    let counter = pack("counter-1.0", &[("counter.wat", COUNTER_WAT)])?;
    let counter_sha = sha256_hex(&counter);
    out.push(Sample {
        case: "exact",
        wasm: published(COUNTER_WAT, &counter_sha)?,
        source: counter.clone(),
        source_sha256: counter_sha.clone(),
    });
    // Published from edited code (increment adds twice) while naming the original source.
    let edited = COUNTER_WAT.replacen(
        "local.get $by\n",
        "local.get $by\n    local.get $by\n    i64.add\n",
        1,
    );
    out.push(Sample {
        case: "mismatched",
        wasm: published(&edited, &counter_sha)?,
        source: counter,
        source_sha256: counter_sha,
    });
    for (case, script) in [("network", REACHES_NETWORK_SH), ("timeout", SPINS_SH)] {
        let src = pack(
            "counter-1.0",
            &[("counter.wat", COUNTER_WAT), ("build.sh", script)],
        )?;
        let sha = sha256_hex(&src);
        out.push(Sample {
            case,
            wasm: published(COUNTER_WAT, &sha)?,
            source: src,
            source_sha256: sha,
        });
    }
    Ok(out)
}
