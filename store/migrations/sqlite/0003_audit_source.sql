-- Where an audited action came from (the client's address).
ALTER TABLE audit ADD COLUMN source TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_by_actor ON audit (actor, seq);
CREATE INDEX audit_by_target ON audit (target, seq);
