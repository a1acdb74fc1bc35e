-- Trace consents (hallmark_core::trace::TraceConsent): the latest statement each party
-- signed, naming the fields of its traces it lets public exports show. Every statement ever
-- accepted is also a leaf of the coordinator's log; this table holds only the newest.
CREATE TABLE trace_consents (
    party TEXT PRIMARY KEY,          -- hex public key of the signer
    issued_ms INTEGER NOT NULL,
    envelope TEXT NOT NULL,          -- JSON of the signed statement (DSSE envelope)
    log_index INTEGER NOT NULL
);
