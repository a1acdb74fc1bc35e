-- hallmark store, version 10: the build-info registry on the ledger. Recipes keyed by wasm
-- SHA-256, written only by the current build managers; the manager set changes only by a
-- transaction carrying k of n council approvals, versioned so an approval is never replayed.

CREATE TABLE ledger_build_managers (
    version  INTEGER PRIMARY KEY,
    managers TEXT    NOT NULL,   -- JSON array of SS58 hotkeys
    seq      INTEGER NOT NULL
);

CREATE TABLE ledger_build_info (
    wasm_sha256 TEXT    PRIMARY KEY,
    recipe      TEXT    NOT NULL,   -- JSON
    manager     TEXT    NOT NULL,
    seq         INTEGER NOT NULL
);
CREATE INDEX ledger_build_info_by_seq ON ledger_build_info (seq);
