-- Trace consents (hallmark_core::trace::TraceConsent): the latest statement each party
-- signed, naming the fields of its traces it lets public exports show. Every statement ever
-- accepted is also a leaf of the coordinator's log; this table holds only the newest.
CREATE TABLE trace_consents (
    party TEXT PRIMARY KEY,
    issued_ms BIGINT NOT NULL,
    envelope TEXT NOT NULL,
    log_index BIGINT NOT NULL
);
