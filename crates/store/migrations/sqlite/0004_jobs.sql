-- Proven jobs (the stark lane in the network) and the ledger's settlement of them.
--
-- Coordinator side: each client-signed job request with its lifecycle, the worker's signed
-- result and proof package, every distinct validator vote, vote equivocation evidence, and an
-- append-only event list (queued, assigned, lease_expired, proven, approved, rejected, ...).
-- Ledger side: each job settled from a vote certificate (once), and every slashing applied.

CREATE TABLE jobs (
    job_id TEXT PRIMARY KEY,
    lane TEXT NOT NULL,                 -- stark
    client TEXT NOT NULL,               -- the requester's key (SS58)
    request TEXT NOT NULL,              -- the client-signed JobRequest envelope
    spec TEXT NOT NULL,                 -- the job spec as JSON (derived from the request)
    status TEXT NOT NULL,               -- queued | assigned | proven | approved | rejected
    worker TEXT,                        -- the current (or last) assignee
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_until_ms INTEGER,
    result TEXT,                        -- the worker-signed JobResult envelope
    proof BLOB,                         -- the proof package, byte for byte
    proof_hash TEXT,
    queued_ms INTEGER NOT NULL,
    assigned_ms INTEGER,
    proven_ms INTEGER,
    settled_ms INTEGER,
    certificate TEXT,                   -- the VoteCertificate that settled it
    valid_stake INTEGER NOT NULL DEFAULT 0,
    invalid_stake INTEGER NOT NULL DEFAULT 0,
    total_stake INTEGER NOT NULL DEFAULT 0,
    settle_tx TEXT                      -- the ledger transaction hash of the settlement
);

CREATE INDEX jobs_by_status ON jobs (status, queued_ms);

CREATE TABLE job_votes (
    job_id TEXT NOT NULL REFERENCES jobs (job_id),
    validator TEXT NOT NULL,
    vote_sha256 TEXT NOT NULL,          -- digest of the canonical envelope
    envelope TEXT NOT NULL,             -- the validator-signed JobVote
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (job_id, validator, vote_sha256)
);

CREATE TABLE job_equivocations (
    job_id TEXT NOT NULL REFERENCES jobs (job_id),
    validator TEXT NOT NULL,
    evidence TEXT NOT NULL,             -- VoteEquivocation with both signed votes
    found_ms INTEGER NOT NULL,
    slash_tx TEXT,                      -- the ledger transaction that slashed it
    PRIMARY KEY (job_id, validator)
);

CREATE TABLE job_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs (job_id),
    event TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    at_ms INTEGER NOT NULL
);

CREATE INDEX job_events_by_job ON job_events (job_id, id);

CREATE TABLE ledger_settled_jobs (
    job_id TEXT PRIMARY KEY,
    outcome TEXT NOT NULL,              -- approved | rejected
    result_digest TEXT NOT NULL,
    worker TEXT NOT NULL,
    seq INTEGER NOT NULL                -- the settling transaction
);

CREATE TABLE ledger_slashes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hotkey TEXT NOT NULL,
    job_id TEXT NOT NULL,
    reason TEXT NOT NULL,               -- rejected_result | dissenting_vote | equivocation
    amount INTEGER NOT NULL,            -- stake removed
    seq INTEGER NOT NULL,               -- the transaction that applied it
    UNIQUE (hotkey, job_id, reason)
);
