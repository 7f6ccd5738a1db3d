-- Notes people write about a call (a supervisor's QA remark, an agent's follow-up), kept apart
-- from the call's own turns and events, which only the call writes.
CREATE TABLE notes (
    call_id TEXT NOT NULL REFERENCES calls(id),
    written_at TEXT NOT NULL,
    author TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX notes_by_call ON notes (call_id, written_at);
