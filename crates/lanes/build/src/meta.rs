//! SEP-46 contract meta: every `contractmetav0` custom section of a wasm, in order, read as a
//! stream of XDR `SCMetaEntry` values, and the SEP-58 build fields they carry.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stellar_xdr::curr::{Limited, Limits, ReadXdr, ScMetaEntry};

use crate::recipe::Recipe;

/// The custom section SEP-46 puts contract meta in.
pub const META_SECTION: &str = "contractmetav0";

/// One key/value pair of contract meta, as the wasm carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MetaEntry {
    pub key: String,
    pub val: String,
}

/// Why a wasm's meta cannot be read. Each variant has a stable [`MetaError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    /// The bytes are not a WebAssembly module (bad magic, bad framing).
    #[error("not a wasm module: {0}")]
    NotWasm(String),
    /// A well-formed module with no `contractmetav0` section.
    #[error("the wasm has no {META_SECTION} custom section")]
    NoContractMeta,
    /// A `contractmetav0` section whose XDR stream does not decode (a truncated entry, a
    /// kind other than `SC_META_V0`, a string longer than the section).
    #[error("malformed {META_SECTION} section #{section}: {message}")]
    Malformed { section: usize, message: String },
}

impl MetaError {
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            MetaError::NotWasm(_) => "not_wasm",
            MetaError::NoContractMeta => "no_contract_meta",
            MetaError::Malformed { .. } => "malformed_meta",
        }
    }

    /// The exit code a command reports it with: 3 for a missing section (a fact about a good
    /// file), 2 for unusable input.
    pub fn exit_code(&self) -> i32 {
        match self {
            MetaError::NoContractMeta => 3,
            MetaError::NotWasm(_) | MetaError::Malformed { .. } => 2,
        }
    }
}

/// Lowercase hex SHA-256 of `bytes` (how a wasm and a source archive are named).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hallmark_core::sha256(bytes).to_hex()
}

/// Whether `s` names a SHA-256 digest (64 lowercase hex digits), by core's own parser.
pub fn is_sha256_hex(s: &str) -> bool {
    s.parse::<hallmark_core::Sha256Digest>().is_ok()
}

/// One section of a module: its id, its name if custom, its raw content.
type Section<'a> = (u8, Option<String>, &'a [u8]);

/// The sections of a module in file order.
fn sections(wasm: &[u8]) -> Result<Vec<Section<'_>>, MetaError> {
    if !wasm.starts_with(b"\0asm") {
        return Err(MetaError::NotWasm(
            "no wasm magic header (\\0asm) at the start".into(),
        ));
    }
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| {
            truncated_meta(wasm).unwrap_or_else(|| MetaError::NotWasm(e.message().to_string()))
        })?;
        if let wasmparser::Payload::CustomSection(reader) = &payload {
            out.push((0, Some(reader.name().to_string()), reader.data()));
            continue;
        }
        if let Some((id, range)) = payload.as_section() {
            let content = wasm
                .get(range)
                .ok_or_else(|| MetaError::NotWasm("a section runs past the end".into()))?;
            out.push((id, None, content));
        }
    }
    if out.is_empty() && !wasm.starts_with(b"\0asm") {
        return Err(MetaError::NotWasm("no wasm magic".into()));
    }
    Ok(out)
}

/// When a module does not parse: a `contractmetav0` section cut off by the end of the file is
/// a malformed meta section (a truncated entry), not some other kind of file.
fn truncated_meta(wasm: &[u8]) -> Option<MetaError> {
    fn leb(bytes: &[u8], at: &mut usize) -> Option<usize> {
        let mut n = 0usize;
        for shift in (0..35).step_by(7) {
            let b = *bytes.get(*at)?;
            *at += 1;
            n |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }
    if !wasm.starts_with(b"\0asm") {
        return None;
    }
    let mut at = 8;
    let mut index = 0;
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let size = leb(wasm, &mut at)?;
        let end = at.checked_add(size)?;
        if id == 0 {
            let mut name_at = at;
            let name_len = leb(wasm, &mut name_at)?;
            let name = wasm.get(name_at..name_at.checked_add(name_len)?)?;
            if name == META_SECTION.as_bytes() {
                if end > wasm.len() {
                    return Some(MetaError::Malformed {
                        section: index,
                        message: format!(
                            "the section is {size} bytes but the file ends {} bytes into it",
                            wasm.len() - at
                        ),
                    });
                }
                index += 1;
            }
        }
        at = end;
    }
    None
}

/// Decodes one `contractmetav0` section: a stream of XDR `SCMetaEntry`, no framing.
fn decode_section(index: usize, data: &[u8]) -> Result<Vec<MetaEntry>, MetaError> {
    let mut cursor = std::io::Cursor::new(data);
    let mut out = Vec::new();
    while usize::try_from(cursor.position()).unwrap_or(usize::MAX) < data.len() {
        let mut limited = Limited::new(&mut cursor, Limits::len(data.len()));
        let entry = ScMetaEntry::read_xdr(&mut limited).map_err(|e| MetaError::Malformed {
            section: index,
            message: format!("entry {}: {e}", out.len()),
        })?;
        let ScMetaEntry::ScMetaV0(v0) = entry;
        out.push(MetaEntry {
            key: v0.key.to_utf8_string_lossy(),
            val: v0.val.to_utf8_string_lossy(),
        });
    }
    Ok(out)
}

/// Every meta entry of every `contractmetav0` section, in file order.
pub fn read_meta(wasm: &[u8]) -> Result<Vec<MetaEntry>, MetaError> {
    let mut found = false;
    let mut entries = Vec::new();
    for (index, (_, name, data)) in sections(wasm)?
        .into_iter()
        .filter(|(id, name, _)| *id == 0 && name.as_deref() == Some(META_SECTION))
        .enumerate()
    {
        let _ = name;
        found = true;
        entries.extend(decode_section(index, data)?);
    }
    if !found {
        return Err(MetaError::NoContractMeta);
    }
    Ok(entries)
}

/// SHA-256 over a module's non-custom sections (id and content, in order): two modules with
/// the same code digest differ only in custom sections (names, meta, debug info).
pub fn code_sha256(wasm: &[u8]) -> Result<String, MetaError> {
    let mut h = Sha256::new();
    for (id, _, content) in sections(wasm)? {
        if id == 0 {
            continue;
        }
        h.update([id]);
        h.update(
            u64::try_from(content.len())
                .unwrap_or(u64::MAX)
                .to_le_bytes(),
        );
        h.update(content);
    }
    Ok(hex::encode(h.finalize()))
}

/// What `hallmark build meta` prints: the wasm's hash, its meta entries in file order, the
/// SEP-58 recipe they describe, and the toolchain versions it records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WasmMeta {
    pub sha256: String,
    pub entries: Vec<MetaEntry>,
    pub recipe: Recipe,
    pub rsver: Option<String>,
    pub rssdkver: Option<String>,
    pub cliver: Option<String>,
}

/// Reads a wasm's meta and the recipe in it.
pub fn inspect(wasm: &[u8]) -> Result<WasmMeta, MetaError> {
    let entries = read_meta(wasm)?;
    let first = |key: &str| entries.iter().find(|e| e.key == key).map(|e| e.val.clone());
    Ok(WasmMeta {
        sha256: sha256_hex(wasm),
        recipe: Recipe::from_entries(&entries),
        rsver: first("rsver"),
        rssdkver: first("rssdkver"),
        cliver: first("cliver"),
        entries,
    })
}

/// Appends a `contractmetav0` section holding `entries` to a module (how tests and tools give
/// a wasm its build meta, as `soroban-sdk`'s `contractmeta!` does at compile time).
pub fn with_meta(wasm: &[u8], entries: &[MetaEntry]) -> Vec<u8> {
    fn xdr_string(out: &mut Vec<u8>, s: &str) {
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        out.extend(len.to_be_bytes());
        out.extend(s.as_bytes());
        out.extend(std::iter::repeat_n(0u8, (4 - s.len() % 4) % 4));
    }
    let mut payload = Vec::new();
    for e in entries {
        payload.extend(0u32.to_be_bytes()); // SC_META_V0
        xdr_string(&mut payload, &e.key);
        xdr_string(&mut payload, &e.val);
    }
    let mut content = Vec::new();
    leb128(&mut content, META_SECTION.len());
    content.extend(META_SECTION.as_bytes());
    content.extend(payload);
    let mut out = wasm.to_vec();
    out.push(0);
    leb128(&mut out, content.len());
    out.extend(content);
    out
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The real Soroban contract of the project's test data (SEP-46 meta), where a
/// [`self_test`] finds it, and what its meta says.
const SELF_TEST_WASM: &str = "wasm/contract.wasm";
const SELF_TEST_SHA256_PREFIX: &str = "33d12fec";
const SELF_TEST_RSVER: &str = "1.74.0";

/// The build lane's known-answer self-test: the meta of a real Soroban contract (read from
/// `evidence`/`wasm/contract.wasm`) reads as published, and the same module cut short is
/// refused. Missing evidence fails, named.
pub fn self_test(evidence: Option<&std::path::Path>) -> hallmark_core::Verdict {
    let mut v = hallmark_core::VerdictBuilder::new("build");
    let wasm = match evidence {
        None => Err("no evidence directory is configured".to_string()),
        Some(d) => {
            let p = d.join(SELF_TEST_WASM);
            std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))
        }
    };
    let wasm = match wasm {
        Ok(w) => w,
        Err(e) => {
            v.fail_code("soroban_meta_read", "evidence_missing", e.clone());
            v.fail_code("truncated_wasm_refused", "evidence_missing", e);
            return v.finish();
        }
    };
    match inspect(&wasm) {
        Ok(m)
            if m.sha256.starts_with(SELF_TEST_SHA256_PREFIX)
                && m.rsver.as_deref() == Some(SELF_TEST_RSVER) =>
        {
            v.pass(
                "soroban_meta_read",
                format!("{} entries, rsver {SELF_TEST_RSVER}", m.entries.len()),
            )
        }
        Ok(m) => v.fail(
            "soroban_meta_read",
            format!(
                "unexpected wasm or meta: sha256 {}, rsver {:?}",
                m.sha256, m.rsver
            ),
        ),
        Err(e) => v.fail_code("soroban_meta_read", e.code(), e.to_string()),
    }
    match inspect(&wasm[..wasm.len() / 2]) {
        Err(e) => v.pass("truncated_wasm_refused", format!("refused: {}", e.code())),
        Ok(_) => v.fail("truncated_wasm_refused", "half a module read as a contract"),
    }
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &[u8] = b"\0asm\x01\0\0\0";

    fn e(k: &str, v: &str) -> MetaEntry {
        MetaEntry {
            key: k.into(),
            val: v.into(),
        }
    }

    #[test]
    fn entries_round_trip_in_order_across_sections() {
        let one = with_meta(EMPTY, &[e("rsver", "1.85.0"), e("bldarg", "contract")]);
        let two = with_meta(&one, &[e("bldarg", "build"), e("k", "")]);
        let got = read_meta(&two).unwrap();
        assert_eq!(
            got,
            [
                e("rsver", "1.85.0"),
                e("bldarg", "contract"),
                e("bldarg", "build"),
                e("k", "")
            ]
        );
        assert_eq!(code_sha256(&two).unwrap(), code_sha256(EMPTY).unwrap());
    }

    fn section(name: &str, payload: &[u8]) -> Vec<u8> {
        let mut content = Vec::new();
        leb128(&mut content, name.len());
        content.extend(name.as_bytes());
        content.extend(payload);
        let mut out = vec![0];
        leb128(&mut out, content.len());
        out.extend(content);
        out
    }

    #[test]
    fn errors_have_codes() {
        assert_eq!(read_meta(b"hello").unwrap_err().code(), "not_wasm");
        assert_eq!(read_meta(b"").unwrap_err().code(), "not_wasm");
        assert_eq!(read_meta(EMPTY).unwrap_err().code(), "no_contract_meta");
        assert_eq!(read_meta(EMPTY).unwrap_err().exit_code(), 3);
        // An entry whose value is cut short inside a well-framed section.
        let mut payload = 0u32.to_be_bytes().to_vec();
        payload.extend(13u32.to_be_bytes());
        payload.extend(b"source_sha256\0\0\0");
        payload.extend(64u32.to_be_bytes());
        payload.extend(b"0123456789");
        let cut = [EMPTY, &section(META_SECTION, &payload)].concat();
        let err = read_meta(&cut).unwrap_err();
        assert_eq!(err.code(), "malformed_meta", "{err}");
        assert_eq!(err.exit_code(), 2);
        // An entry of a kind other than SC_META_V0.
        let bad_kind = [EMPTY, &section(META_SECTION, &7u32.to_be_bytes())].concat();
        assert_eq!(read_meta(&bad_kind).unwrap_err().code(), "malformed_meta");
        // A file cut off inside its meta section.
        let good = with_meta(EMPTY, &[e("source_sha256", "ab")]);
        assert!(read_meta(&good).is_ok());
        let err = read_meta(&good[..good.len() - 3]).unwrap_err();
        assert_eq!(err.code(), "malformed_meta", "{err}");
        // A file cut off inside another section is not wasm.
        let other = [EMPTY, &section("name", b"abcdef")].concat();
        assert_eq!(
            read_meta(&other[..other.len() - 2]).unwrap_err().code(),
            "not_wasm"
        );
    }
}
