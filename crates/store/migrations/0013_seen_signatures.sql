-- hallmark store, version 13: signatures of signed requests already taken, kept for twice the
-- skew window so a captured request is refused after a restart too (issue 19, hole 3).

CREATE TABLE seen_signatures (
    sig BLOB PRIMARY KEY,
    seen_at INTEGER NOT NULL
);
CREATE INDEX seen_signatures_by_time ON seen_signatures (seen_at);

-- A client's open jobs are counted on every submission (per-client queue cap).
CREATE INDEX jobs_by_client ON jobs (client, status);
