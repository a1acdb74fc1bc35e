-- hallmark store, version 11: the eval lane's archive commitments on the ledger. The earliest
-- commitment of identical bytes wins (against copying); a worker may commit several archives.
-- And the ledger's clock per transaction in milliseconds, for anchors (the first transaction
-- applied at or after a time; rows from before this version read 0).

ALTER TABLE ledger_txs ADD COLUMN applied_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX ledger_txs_by_applied_ms ON ledger_txs (applied_ms);

CREATE TABLE ledger_archive_commits (
    archive_sha256 TEXT    PRIMARY KEY,
    lane           TEXT    NOT NULL,
    hotkey         TEXT    NOT NULL,
    seq            INTEGER NOT NULL,
    committed_ms   INTEGER NOT NULL
);
CREATE INDEX ledger_archive_commits_by_hotkey ON ledger_archive_commits (hotkey, lane);

-- The coordinator's side of roster lanes: each worker's latest archive for a run (kept here,
-- not in the public blob store, so nobody can fetch it before the roster is sealed), and the
-- signed roster, written once after the deadline.
CREATE TABLE run_submissions (
    run_id         TEXT    NOT NULL,
    hotkey         TEXT    NOT NULL,
    submission_id  TEXT    NOT NULL,
    archive_sha256 TEXT    NOT NULL,
    manifest       TEXT    NOT NULL,   -- JSON, as the lane read it
    archive        BLOB    NOT NULL,
    received_ms    INTEGER NOT NULL,
    PRIMARY KEY (run_id, hotkey)
);
CREATE UNIQUE INDEX run_submissions_by_id ON run_submissions (run_id, submission_id);

CREATE TABLE run_rosters (
    run_id     TEXT    PRIMARY KEY,
    envelope   TEXT    NOT NULL,
    created_ms INTEGER NOT NULL
);
