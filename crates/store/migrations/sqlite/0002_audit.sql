-- The audit trail: the node's transparency log, its signed checkpoints, receipts, score
-- commitments (ledger), equivocation evidence, divergence records and Yuma epochs.

CREATE TABLE log_leaves (
    idx INTEGER PRIMARY KEY,          -- 0-based leaf index; contiguous
    kind TEXT NOT NULL,               -- what the leaf is (score_report, ledger_tx, ...)
    data BLOB NOT NULL,               -- the exact bytes hashed (canonical JSON of a DSSE envelope)
    leaf_hash BLOB NOT NULL,          -- SHA-256(0x00 || data)
    appended_ms INTEGER NOT NULL
);

CREATE TABLE log_checkpoints (
    size INTEGER PRIMARY KEY,
    note TEXT NOT NULL                -- C2SP signed note, byte for byte
);

CREATE TABLE receipts (
    subject TEXT PRIMARY KEY,         -- e.g. round-result/round-000003
    receipt TEXT NOT NULL
);

CREATE TABLE commitments (
    validator TEXT NOT NULL,
    run_id TEXT NOT NULL,
    commitment TEXT NOT NULL,         -- hallmark/scores/v1:<run_id>:<sha256>
    envelope TEXT NOT NULL,           -- the signed ledger transaction that made it
    tx_hash TEXT NOT NULL,
    PRIMARY KEY (validator, run_id)
);

CREATE TABLE equivocations (
    validator TEXT NOT NULL,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    evidence TEXT NOT NULL,           -- JSON with both signed statements
    found_ms INTEGER NOT NULL,
    PRIMARY KEY (validator, run_id, kind)
);

CREATE TABLE divergence (
    run_id TEXT PRIMARY KEY,          -- a re-run of a run is counted once
    record TEXT NOT NULL,
    recorded_ms INTEGER NOT NULL
);

CREATE TABLE yuma_epochs (
    epoch INTEGER PRIMARY KEY,
    result TEXT NOT NULL,
    computed_ms INTEGER NOT NULL
);
