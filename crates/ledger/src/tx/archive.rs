//! `CommitArchive`: a registered worker commits to an eval archive's bytes. The earliest
//! commitment of identical bytes wins (the same worker again is a retry: `already_committed`).

use hallmark_store::ArchiveCommitRow;

use crate::machine::Transition;
use crate::state::WriteSet;
use crate::types::Role;
use crate::LedgerError;

pub(super) fn apply(
    t: &Transition<'_>,
    ws: &mut WriteSet,
    lane: &str,
    archive_sha256: &str,
) -> Result<(), LedgerError> {
    let me = &t.signer_addr;
    t.signer_as(Role::Worker, "commit archives")?;
    let lane_ok = !lane.is_empty()
        && lane.len() <= 32
        && lane
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !lane_ok {
        return Err(LedgerError::Invalid(format!(
            "lane {lane:?} is not a lane name"
        )));
    }
    if archive_sha256
        .parse::<hallmark_core::Sha256Digest>()
        .is_err()
    {
        return Err(LedgerError::Invalid(
            "archive_sha256 must be 64 lowercase hex digits".into(),
        ));
    }
    if let Some(first) = t.state.archive_commit(archive_sha256) {
        if first.hotkey == *me {
            return Err(LedgerError::AlreadyCommitted {
                validator: me.clone(),
                run_id: first.lane.clone(),
                commitment: archive_sha256.to_string(),
            });
        }
        return Err(LedgerError::ArchiveTaken {
            archive_sha256: archive_sha256.to_string(),
            owner: first.hotkey.clone(),
        });
    }
    ws.archive_commit = Some(ArchiveCommitRow {
        archive_sha256: archive_sha256.to_string(),
        lane: lane.to_string(),
        hotkey: me.clone(),
        seq: t.seq,
        committed_ms: t.ctx.time_ms,
    });
    Ok(())
}
