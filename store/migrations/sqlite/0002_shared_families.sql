-- Steps move into the execution row (always read and written whole).
ALTER TABLE executions ADD COLUMN steps TEXT NOT NULL DEFAULT '[]';
UPDATE executions SET steps = (
    SELECT coalesce(json_group_array(json_object(
        'node', node, 'workload', workload, 'state', state, 'reason', reason, 'requested_ms', requested_ms,
        'started_ms', started_ms, 'ready_ms', ready_ms, 'failed_ms', failed_ms)), '[]')
    FROM (SELECT * FROM execution_steps s WHERE s.execution_id = executions.id ORDER BY position)
);
DROP TABLE execution_steps;
CREATE INDEX executions_by_flow_id ON executions (flow, id DESC);

-- Generic record families (users, flows, versions, …): a JSON document per (family, key).
CREATE TABLE records (
    family      TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    expires_ms  INTEGER,            -- NULL: never
    PRIMARY KEY (family, key)
);

-- Leases: locks, cold-start claims, the drain leader. Released leases stay (expired) to keep tokens growing.
CREATE TABLE leases (
    name         TEXT PRIMARY KEY NOT NULL,
    holder       TEXT NOT NULL,
    token        INTEGER NOT NULL,
    data         TEXT NOT NULL,
    acquired_ms  INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL
);

-- The audit hash chain.
CREATE TABLE audit (
    seq        INTEGER PRIMARY KEY NOT NULL,
    at_ms      INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
