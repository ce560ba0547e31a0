-- Runtime state of each flow (overrides made at run time; the config file stays the source of the rest).
CREATE TABLE flow_state (
    flow        TEXT PRIMARY KEY NOT NULL,
    state       TEXT NOT NULL,
    pinned      INTEGER,            -- NULL: as configured
    disabled    INTEGER,            -- NULL: as configured
    updated_ms  INTEGER NOT NULL
);

-- One row per wake execution.
CREATE TABLE executions (
    id           TEXT PRIMARY KEY NOT NULL,
    flow         TEXT NOT NULL,
    trigger      TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    error        TEXT,
    started_ms   INTEGER NOT NULL,
    finished_ms  INTEGER
);
CREATE INDEX executions_by_flow ON executions (flow, started_ms DESC);
CREATE INDEX executions_by_time ON executions (started_ms DESC);

-- One row per node of an execution.
CREATE TABLE execution_steps (
    execution_id  TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    node          TEXT NOT NULL,
    workload      TEXT NOT NULL,
    state         TEXT NOT NULL,
    reason        TEXT,
    requested_ms  INTEGER,
    started_ms    INTEGER,
    ready_ms      INTEGER,
    failed_ms     INTEGER,
    PRIMARY KEY (execution_id, position)
);

-- Last activity per flow (merged with max, so replicas and restarts never move it back).
CREATE TABLE activity (
    flow        TEXT PRIMARY KEY NOT NULL,
    last_ms     INTEGER NOT NULL
);
