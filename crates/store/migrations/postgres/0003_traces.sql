-- Distillation traces: every verification this node ran (hallmark_core::trace), private.
-- The public export redacts them on the way out; nothing here is served as stored.
CREATE TABLE traces (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recorded_ms BIGINT NOT NULL,
    lane TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    trace TEXT NOT NULL
);
CREATE INDEX traces_by_time ON traces (recorded_ms, id);
