-- hallmark store, version 11: the eval lane's archive commitments on the ledger. The earliest
-- commitment of identical bytes wins (against copying); a worker may commit several archives.

CREATE TABLE ledger_archive_commits (
    archive_sha256 TEXT    PRIMARY KEY,
    lane           TEXT    NOT NULL,
    hotkey         TEXT    NOT NULL,
    seq            INTEGER NOT NULL,
    committed_ms   INTEGER NOT NULL
);
CREATE INDEX ledger_archive_commits_by_hotkey ON ledger_archive_commits (hotkey, lane);
