-- Keys compare as bytes (COLLATE "C"), as in SQLite and DynamoDB, so listings have one order everywhere.

CREATE TABLE flow_state (
    flow        TEXT COLLATE "C" PRIMARY KEY,
    state       TEXT NOT NULL,
    pinned      BOOLEAN,            -- NULL: as configured
    disabled    BOOLEAN,            -- NULL: as configured
    updated_ms  BIGINT NOT NULL
);

CREATE TABLE executions (
    id           TEXT COLLATE "C" PRIMARY KEY,
    flow         TEXT COLLATE "C" NOT NULL,
    trigger      TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    error        TEXT,
    started_ms   BIGINT NOT NULL,
    finished_ms  BIGINT,
    steps        TEXT NOT NULL       -- JSON array, one object per node
);
CREATE INDEX executions_by_flow_id ON executions (flow, id DESC);

CREATE TABLE activity (
    flow     TEXT COLLATE "C" PRIMARY KEY,
    last_ms  BIGINT NOT NULL
);

CREATE TABLE records (
    family      TEXT COLLATE "C" NOT NULL,
    key         TEXT COLLATE "C" NOT NULL,
    value       TEXT NOT NULL,
    version     BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL,
    expires_ms  BIGINT,
    PRIMARY KEY (family, key)
);
CREATE INDEX records_expiring ON records (expires_ms) WHERE expires_ms IS NOT NULL;

CREATE TABLE leases (
    name         TEXT COLLATE "C" PRIMARY KEY,
    holder       TEXT NOT NULL,
    token        BIGINT NOT NULL,
    data         TEXT NOT NULL,
    acquired_ms  BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL
);

CREATE TABLE audit (
    seq        BIGINT PRIMARY KEY,
    at_ms      BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
