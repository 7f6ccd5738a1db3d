-- One schema for SQLite and PostgreSQL: portable types only (TEXT, BIGINT, DOUBLE PRECISION),
-- ids made by the application, times as RFC 3339 text (UTC), call-relative times in seconds.
CREATE TABLE calls (
    id TEXT PRIMARY KEY,
    sip_call_id TEXT,
    caller TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    duration_secs DOUBLE PRECISION,
    -- caller | bot | rtp timeout | shutdown | interrupted (the server died during the call)
    ended_by TEXT,
    -- The server that took the call (several may share a PostgreSQL store).
    server TEXT,
    recording TEXT,
    media TEXT
);
CREATE INDEX calls_started_at ON calls (started_at);

CREATE TABLE turns (
    call_id TEXT NOT NULL REFERENCES calls (id),
    seq BIGINT NOT NULL,
    at_secs DOUBLE PRECISION NOT NULL,
    speaker TEXT NOT NULL,
    text TEXT NOT NULL,
    language TEXT,
    intent TEXT,
    confidence DOUBLE PRECISION,
    -- A caller turn's stages, once its reply has started (milliseconds).
    endpoint_ms DOUBLE PRECISION,
    stt_ms DOUBLE PRECISION,
    understand_ms DOUBLE PRECISION,
    llm_first_token_ms DOUBLE PRECISION,
    tts_first_audio_ms DOUBLE PRECISION,
    voice_to_voice_ms DOUBLE PRECISION,
    PRIMARY KEY (call_id, seq)
);

CREATE TABLE events (
    call_id TEXT NOT NULL REFERENCES calls (id),
    seq BIGINT NOT NULL,
    at_secs DOUBLE PRECISION NOT NULL,
    -- answered | barge_in | key | transfer | hangup | action
    kind TEXT NOT NULL,
    detail TEXT,
    PRIMARY KEY (call_id, seq)
);
