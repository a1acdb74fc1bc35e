-- hallmark store, version 1: ledger, coordinator and validator state.

-- Ledger: the hash-chained transaction log and the state it produces.
CREATE TABLE ledger_txs (
    seq        INTEGER PRIMARY KEY,
    tx_hash    TEXT    NOT NULL UNIQUE,
    prev_hash  TEXT    NOT NULL,
    signer     TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    envelope   TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
);

CREATE TABLE accounts (
    address TEXT    PRIMARY KEY,
    balance INTEGER NOT NULL CHECK (balance >= 0),
    nonce   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE neurons (
    uid            INTEGER PRIMARY KEY,
    hotkey         TEXT    NOT NULL UNIQUE,
    coldkey        TEXT    NOT NULL,
    role           TEXT    NOT NULL,
    stake          INTEGER NOT NULL CHECK (stake >= 0),
    axon           TEXT,
    registered_seq INTEGER NOT NULL
);

CREATE TABLE weights (
    epoch     INTEGER NOT NULL,
    validator TEXT    NOT NULL,
    weights   TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (epoch, validator)
);

-- Coordinator: published rounds.
CREATE TABLE rounds (
    number     INTEGER PRIMARY KEY,
    round_id   TEXT    NOT NULL UNIQUE,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- Validator: accepted witnesses (first valid one per worker and instance), rejections,
-- signed score reports (own and peers'), and round results.
CREATE TABLE witnesses (
    round_id        TEXT    NOT NULL,
    worker          TEXT    NOT NULL,
    instance_sha256 TEXT    NOT NULL,
    received_ms     INTEGER NOT NULL,
    latency_ms      INTEGER NOT NULL,
    envelope        TEXT    NOT NULL,
    PRIMARY KEY (round_id, worker, instance_sha256)
);

CREATE TABLE rejections (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    round_id    TEXT    NOT NULL,
    worker      TEXT,
    code        TEXT    NOT NULL,
    verdict     TEXT    NOT NULL,
    received_ms INTEGER NOT NULL
);

CREATE TABLE score_reports (
    run_id      TEXT    NOT NULL,
    validator   TEXT    NOT NULL,
    envelope    TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, validator)
);

CREATE TABLE round_results (
    run_id     TEXT    PRIMARY KEY,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- Small named values (e.g. a validator's incumbent winner).
CREATE TABLE kv (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
