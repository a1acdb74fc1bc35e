-- Secure-compute intake (the tee lane in the network): providers' signed capacity offers,
-- evidence nonces bound to a hotkey, listings with atomic claims, and the coordinator's signed
-- events (evidence, health, claims, usage). Nothing here is read by scoring, weights or
-- emissions: compute rows live only in the coordinator's store.

CREATE TABLE compute_providers (
    node_id TEXT PRIMARY KEY,
    hotkey TEXT NOT NULL,               -- the provider's hotkey (SS58); owns node_id
    offer TEXT NOT NULL,                -- the provider-signed CapacityOffer envelope
    consent TEXT NOT NULL,              -- the provider-signed ProviderConsent envelope
    offer_sha256 TEXT NOT NULL,         -- digest of the offer payload the consent names
    listed INTEGER NOT NULL DEFAULT 0,  -- 1 only after cryptographically verified evidence
    production INTEGER NOT NULL DEFAULT 0,
    evidence_log_index INTEGER,         -- the evidence event that listed it
    listed_until_ms INTEGER,            -- evidence must be renewed before this
    claimed_by TEXT,
    claim_id TEXT,
    claimed_at_ms INTEGER,
    claim_expires_ms INTEGER,
    last_health_ms INTEGER,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);

CREATE TABLE compute_nonces (
    nonce TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    hotkey TEXT NOT NULL,               -- the authenticated hotkey it was issued to
    issued_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    used_ms INTEGER                     -- set once; a nonce answers one evidence submission
);

CREATE TABLE compute_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id TEXT NOT NULL,
    kind TEXT NOT NULL,                 -- compute_offer | compute_evidence | compute_health | compute_claim | compute_usage
    body TEXT NOT NULL,                 -- the signed envelope, exactly as logged
    log_index INTEGER NOT NULL,         -- its leaf in the coordinator's transparency log
    created_ms INTEGER NOT NULL
);

CREATE INDEX compute_events_by_node ON compute_events (node_id, id);
