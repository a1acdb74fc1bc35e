-- hallmark store, version 9: the build lane's query API on the coordinator. Content-addressed
-- blobs (wasm and source archives, served to builders and validators by hash) and one
-- verification per (wasm, recipe), whose state moves only by conditional updates, so the
-- database, not a process's memory, decides who drives it.

CREATE TABLE blobs (
    sha256     TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL,   -- wasm | source
    bytes      BLOB    NOT NULL,
    size       INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE TABLE build_verifications (
    id            TEXT    PRIMARY KEY,
    wasm_sha256   TEXT    NOT NULL,
    recipe_key    TEXT    NOT NULL,
    recipe        TEXT    NOT NULL,   -- JSON
    recipe_source TEXT    NOT NULL,   -- onchain_meta | registry | search
    status        TEXT    NOT NULL,   -- queued | building | verified | mismatched | unverified
    job_id        TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    outcome       TEXT,               -- the certified claim's outcome (JSON)
    detail        TEXT,
    error_code    TEXT,
    error_message TEXT,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL,
    deadline_ms   INTEGER NOT NULL,
    UNIQUE (wasm_sha256, recipe_key)
);
CREATE INDEX build_verifications_by_wasm ON build_verifications (wasm_sha256, created_ms);
CREATE INDEX build_verifications_by_status ON build_verifications (status, created_ms);
