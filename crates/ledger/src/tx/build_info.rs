//! `SetBuildInfo`: a current build manager records (or replaces) the SEP-58 recipe of a wasm
//! in the build-info registry. The lane checks the recipe's fields when it uses it.

use hallmark_core::PublicKey;
use hallmark_store::BuildInfoRow;

use crate::machine::Transition;
use crate::state::WriteSet;
use crate::LedgerError;

pub(super) fn apply(
    t: &Transition<'_>,
    ws: &mut WriteSet,
    wasm_sha256: &str,
    recipe: &serde_json::Value,
) -> Result<(), LedgerError> {
    let managers: Vec<PublicKey> = match t.state.build_managers() {
        Some((_, text)) => serde_json::from_str(text)
            .map_err(|e| LedgerError::Invalid(format!("stored build managers: {e}")))?,
        None => Vec::new(),
    };
    if !managers.contains(&t.signer) {
        return Err(LedgerError::Unauthorized(format!(
            "{} is not a build manager",
            t.signer
        )));
    }
    if wasm_sha256.parse::<hallmark_core::Sha256Digest>().is_err() {
        return Err(LedgerError::Invalid(
            "wasm_sha256 must be 64 lowercase hex digits".into(),
        ));
    }
    let text = serde_json::to_string(recipe).map_err(|e| LedgerError::Invalid(e.to_string()))?;
    if !recipe.is_object() || text.len() > 16 * 1024 {
        return Err(LedgerError::Invalid(
            "the recipe must be a JSON object of at most 16 KiB".into(),
        ));
    }
    ws.build_info = Some(BuildInfoRow {
        wasm_sha256: wasm_sha256.to_string(),
        recipe: text,
        manager: t.signer_addr.clone(),
        seq: t.seq,
    });
    Ok(())
}
