-- Distillation traces: every verification this node ran (hallmark_core::trace), private.
-- The public export redacts them on the way out; nothing here is served as stored.
CREATE TABLE traces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_ms INTEGER NOT NULL,
    lane TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    trace TEXT NOT NULL              -- JSON of the VerificationTrace
);
CREATE INDEX traces_by_time ON traces (recorded_ms, id);
