import { useCallback, useEffect, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";

import { ApiError, discardDraft, getDraft, getVersion, lockDraft, saveDraft, unlockDraft, versions, type Draft, type Me } from "../api";
import { Canvas } from "../editor/Canvas";
import { CommitDialog } from "../editor/CommitDialog";
import { addNode, connect, disconnect, KINDS, nodesOf, removeNode, renameNode, updateNode, type FlowSpec } from "../editor/model";
import { FlowSettings, NodeSettings } from "../editor/Settings";

/** How often the editor lock is renewed (it lapses after five minutes unless renewed). */
const RENEW_MS = 60_000;
/** How long after the last keystroke the draft is saved. */
const SAVE_AFTER_MS = 600;

/** Unsaved edits are also kept in this browser, so a failed save or a closed tab loses nothing. */
const backupKey = (flow: string) => `leannodes.draft.${flow}`;

type SaveState = { state: "saved" } | { state: "unsaved" } | { state: "saving" } | { state: "failed"; message: string };

/** A refusal the user has to decide about: someone saved since (reload or overwrite), or the lock was lost. */
type Conflict = { code: string; message: string };

/** The active (else the latest) version, shaped as a draft nobody edits, for a read-only view. */
async function shownVersion(flow: string): Promise<Draft> {
  const list = (await versions(flow)).items;
  const shown = list.find((v) => v.active) ?? list[list.length - 1];
  const version = await getVersion(flow, shown.number);
  return {
    flow,
    spec: version.spec,
    version: 0,
    base: shown.number,
    branched_from: null,
    active_version: list.find((v) => v.active)?.number ?? null,
    stale: false,
    saved_by: version.author,
    saved_ms: version.created_ms,
    lock: null,
    problems: [],
  };
}

const message = (e: unknown) => (e instanceof ApiError ? e.message : String(e));

/** The visual editor of a store-managed flow's draft: palette, graph, settings, auto-save under the editor
 * lock, and the commit dialog. */
export function EditorPage({ me, onError }: { me: Me; onError: (e: unknown) => boolean }) {
  const { name = "" } = useParams();
  const navigate = useNavigate();
  const [draft, setDraft] = useState<Draft | null>(null);
  const [spec, setSpec] = useState<FlowSpec | null>(null);
  const [save, setSave] = useState<SaveState>({ state: "saved" });
  const [conflict, setConflict] = useState<Conflict | null>(null);
  const [readOnly, setReadOnly] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [committing, setCommitting] = useState(false);
  const [backup, setBackup] = useState<FlowSpec | null>(null);

  // What the save loop works from: the latest edit and the draft version it is based on.
  const latest = useRef<FlowSpec | null>(null);
  const version = useRef(0);
  const saving = useRef<Promise<void> | null>(null);
  const dirty = useRef(false);

  const report = useCallback(
    (e: unknown) => {
      if (!onError(e)) setError(message(e));
    },
    [onError],
  );

  /** Shows a draft from the server and makes it the base of the next save. */
  const adopt = useCallback((d: Draft, replaceSpec: boolean) => {
    setDraft(d);
    version.current = d.version;
    if (replaceSpec) {
      setSpec(d.spec);
      latest.current = d.spec;
      dirty.current = false;
      setSave({ state: "saved" });
    }
  }, []);

  const open = useCallback(async () => {
    setError(null);
    setConflict(null);
    try {
      const d = await lockDraft(name);
      adopt(d, true);
      setReadOnly(null);
      const kept = localStorage.getItem(backupKey(name));
      if (kept && kept !== JSON.stringify(d.spec)) setBackup(JSON.parse(kept) as FlowSpec);
    } catch (e) {
      if (e instanceof ApiError && (e.code === "draft_locked" || e.status === 403)) {
        // Someone else is editing, or the caller may not edit: show the draft read-only.
        setReadOnly(e.message);
        try {
          adopt(await getDraft(name).catch((inner: unknown) => {
            // No draft: show the version that serves (else the latest) instead.
            if (inner instanceof ApiError && inner.code === "no_draft") return shownVersion(name);
            throw inner;
          }), true);
        } catch (inner) {
          report(inner);
        }
      } else report(e);
    }
  }, [name, adopt, report]);

  useEffect(() => {
    open();
  }, [open]);

  // The lock is renewed while the page is open and released when it closes.
  const holding = draft?.lock?.yours === true && readOnly === null;
  useEffect(() => {
    if (!holding) return;
    const timer = window.setInterval(() => {
      lockDraft(name).then(
        (d) => setDraft((current) => (current ? { ...current, lock: d.lock, stale: d.stale, active_version: d.active_version } : d)),
        (e) => {
          if (e instanceof ApiError && e.code === "draft_locked") setConflict({ code: e.code, message: e.message });
          else onError(e);
        },
      );
    }, RENEW_MS);
    return () => {
      window.clearInterval(timer);
      const release = () => unlockDraft(name).catch(() => {});
      if (saving.current) saving.current.finally(release);
      else release();
    };
  }, [holding, name, onError]);

  /** Saves the latest edit; edits made while a save is on its way are saved right after it. */
  const flush = useCallback(async () => {
    if (saving.current) return saving.current;
    const run = async () => {
      while (dirty.current && latest.current) {
        const sent = latest.current;
        setSave({ state: "saving" });
        try {
          const d = await saveDraft(name, sent, version.current);
          adopt(d, false);
          if (latest.current === sent) {
            dirty.current = false;
            localStorage.removeItem(backupKey(name));
            setSave({ state: "saved" });
          }
        } catch (e) {
          if (onError(e)) return;
          if (e instanceof ApiError && e.status === 409) setConflict({ code: e.code, message: e.message });
          setSave({ state: "failed", message: message(e) });
          return;
        }
      }
    };
    saving.current = run().finally(() => {
      saving.current = null;
    });
    return saving.current;
  }, [name, adopt, onError]);

  /** Applies an edit: shown at once, kept in this browser, saved shortly after. */
  const edit = useCallback(
    (next: FlowSpec) => {
      setSpec(next);
      latest.current = next;
      dirty.current = true;
      localStorage.setItem(backupKey(name), JSON.stringify(next));
      setSave({ state: "unsaved" });
    },
    [name],
  );

  useEffect(() => {
    if (save.state !== "unsaved" || conflict || readOnly !== null) return;
    const timer = window.setTimeout(flush, SAVE_AFTER_MS);
    return () => window.clearTimeout(timer);
  }, [spec, save.state, conflict, readOnly, flush]);

  /** Loads what was saved by someone else, dropping the local edits (they stay in the backup until then). */
  async function reload() {
    try {
      adopt(await getDraft(name), true);
      localStorage.removeItem(backupKey(name));
      setConflict(null);
      if (!draft?.lock?.yours) await open();
    } catch (e) {
      report(e);
    }
  }
  /** Saves the local edits over what someone else saved. */
  async function overwrite() {
    try {
      const current = await lockDraft(name);
      version.current = current.version;
      setConflict(null);
      dirty.current = true;
      await flush();
    } catch (e) {
      report(e);
    }
  }
  /** Rebases a stale draft onto the active version. */
  async function rebase() {
    if (!latest.current || draft?.active_version == null) return;
    try {
      adopt(await saveDraft(name, latest.current, version.current, draft.active_version), false);
      setConflict(null);
      setNotice(`The draft is now based on version ${draft.active_version}.`);
    } catch (e) {
      report(e);
    }
  }
  async function discard() {
    if (!window.confirm(`Discard the draft of ${name}? Its changes are lost.`)) return;
    try {
      await discardDraft(name);
      localStorage.removeItem(backupKey(name));
      setConflict(null);
      setNotice("The draft was discarded; this is a new one from the active version.");
      await open();
    } catch (e) {
      report(e);
    }
  }

  if (error && !spec) {
    return (
      <section>
        <p role="alert" className="error">
          {error}
        </p>
        <button type="button" onClick={open}>
          Try again
        </button>{" "}
        <Link to="/flows">Back to the flows</Link>
      </section>
    );
  }
  if (!spec || !draft) return <p>Opening the draft of {name}…</p>;

  const nodes = nodesOf(spec);
  const index = nodes.findIndex((n) => n.name === selected);
  const broken = new Set(draft.problems.map((p) => /^\/node\/(\d+)/.exec(p.path)).flatMap((m) => (m ? [nodes[Number(m[1])]?.name ?? ""] : [])));
  const locked = readOnly !== null;
  const canActivate = me.permissions.includes("flows.activate");
  const status =
    save.state === "saved" ? `All changes saved (v${draft.version})` : save.state === "saving" ? "Saving…" : save.state === "unsaved" ? "Unsaved changes" : `Not saved: ${save.message}`;

  const add = (kind: (typeof KINDS)[number]) => {
    const r = addNode(spec, kind);
    edit(r.spec);
    setSelected(r.name);
  };
  const link = (from: string, to: string) => {
    const r = connect(spec, from, to);
    if ("problem" in r) setNotice(r.problem);
    else edit(r.spec);
  };

  return (
    <section aria-labelledby="editor-title" className="editor">
      <p>
        <Link to="/flows">Flows</Link> / <Link to={`/flows/${encodeURIComponent(name)}`}>{name}</Link> / draft
      </p>
      <h1 id="editor-title">Edit {name}</h1>
      <div className="editor-bar">
        {!locked && (
          <span role="status" aria-label="Save state" className={save.state === "failed" ? "error" : "muted"}>
            {status}
          </span>
        )}
        <span aria-label="Editor lock" className="muted">
          {locked
            ? `Read only: ${readOnly}`
            : draft.lock?.yours
              ? `You hold the editor lock until ${new Date(draft.lock.expires_ms).toLocaleTimeString()}`
              : "Not locked"}
        </span>
        <span className="spacer" />
        {save.state === "failed" && !conflict && (
          <button type="button" onClick={() => flush()}>
            Retry saving
          </button>
        )}
        {!locked && (
          <>
            <button type="button" onClick={discard}>
              Discard draft
            </button>
            <button type="button" className="primary" onClick={() => setCommitting(true)} disabled={save.state === "failed"}>
              Commit…
            </button>
          </>
        )}
        {locked && (
          <button type="button" onClick={open}>
            Try to edit again
          </button>
        )}
      </div>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {notice && (
        <p role="status" className="notice">
          {notice}{" "}
          <button type="button" onClick={() => setNotice(null)}>
            Dismiss
          </button>
        </p>
      )}
      {backup && (
        <div role="alert" className="notice">
          Changes made earlier in this browser were never saved.{" "}
          <button
            type="button"
            onClick={() => {
              edit(backup);
              setBackup(null);
            }}
          >
            Restore them
          </button>{" "}
          <button
            type="button"
            onClick={() => {
              localStorage.removeItem(backupKey(name));
              setBackup(null);
            }}
          >
            Drop them
          </button>
        </div>
      )}
      {conflict && (
        <div role="alert" className="notice">
          <p>{conflict.message}</p>
          <p>Your changes are kept on this page (and in this browser) until you choose.</p>
          <button type="button" onClick={reload}>
            Load the saved draft (drop my changes)
          </button>{" "}
          {conflict.code === "version_conflict" && (
            <button type="button" onClick={overwrite}>
              Save mine over it
            </button>
          )}{" "}
          {conflict.code === "draft_stale" && (
            <button type="button" onClick={rebase}>
              Rebase onto version {draft.active_version}
            </button>
          )}{" "}
          <button type="button" onClick={discard}>
            Discard the draft
          </button>
        </div>
      )}
      {draft.stale && !conflict && (
        <p role="status" className="notice">
          Version {draft.active_version} was activated after this draft was started.{" "}
          {!locked && (
            <button type="button" onClick={rebase}>
              Rebase onto version {draft.active_version}
            </button>
          )}
        </p>
      )}
      <div className="editor-grid">
        <div>
          {!locked && (
            <div className="palette" role="group" aria-label="Add a node">
              {KINDS.filter((k) => k !== "process" || me.user.roles.includes("admin")).map((k) => (
                <button key={k} type="button" onClick={() => add(k)}>
                  + {k}
                </button>
              ))}
            </div>
          )}
          <Canvas
            spec={spec}
            selected={selected}
            broken={broken}
            readOnly={locked}
            onSelect={setSelected}
            onConnect={link}
            onDisconnect={(from, to) => edit(disconnect(spec, from, to))}
            onRemove={(n) => {
              edit(removeNode(spec, n));
              setSelected(null);
            }}
          />
          <nav aria-label="Nodes" className="node-list">
            <button type="button" aria-pressed={selected === null} onClick={() => setSelected(null)}>
              Flow settings
            </button>
            {nodes.map((n) => (
              <button key={n.name} type="button" aria-pressed={selected === n.name} onClick={() => setSelected(n.name)}>
                {n.name}
              </button>
            ))}
          </nav>
          <section aria-labelledby="problems-title">
            <h2 id="problems-title">Before it can be activated</h2>
            {draft.problems.length === 0 ? (
              <p className="state-ready">Nothing stops its activation.</p>
            ) : (
              <ul aria-label="Problems">
                {draft.problems.map((p) => (
                  <li key={`${p.path}:${p.message}`}>
                    <code>{p.path}</code> {p.message}
                    {p.help && <small> — {p.help}</small>}
                  </li>
                ))}
              </ul>
            )}
          </section>
        </div>
        <fieldset disabled={locked} className="panel">
          {index >= 0 ? (
            <NodeSettings
              key={index}
              spec={spec}
              index={index}
              problems={draft.problems}
              onRename={(to) => {
                edit(renameNode(spec, nodes[index].name, to));
                setSelected(to);
              }}
              onChange={(node) => edit(updateNode(spec, nodes[index].name, () => node))}
              onToggleEdge={(from, on) => (on ? link(from, nodes[index].name) : edit(disconnect(spec, from, nodes[index].name)))}
              onRemove={() => {
                edit(removeNode(spec, nodes[index].name));
                setSelected(null);
              }}
              onUpstream={() => edit({ ...spec, upstream: nodes[index].name })}
            />
          ) : (
            <FlowSettings spec={spec} problems={draft.problems} onChange={edit} />
          )}
        </fieldset>
      </div>
      {committing && (
        <CommitDialog
          flow={name}
          canActivate={canActivate}
          problems={draft.problems}
          beforeCommit={flush}
          onClose={() => setCommitting(false)}
          onStale={(e) => {
            setCommitting(false);
            setConflict({ code: e.code, message: e.message });
          }}
          onCommitted={(number, active) => {
            setCommitting(false);
            localStorage.removeItem(backupKey(name));
            if (active) navigate(`/flows/${encodeURIComponent(name)}`);
            else {
              setNotice(`Committed as version ${number}; it is not active.`);
              open();
            }
          }}
          onError={onError}
        />
      )}
    </section>
  );
}
