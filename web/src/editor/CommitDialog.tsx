import { useEffect, useRef, useState } from "react";

import { ApiError, commitDraft, type Problem } from "../api";

/** Commits the draft as the next version: a message, a note, and whether to activate it now. The draft is
 * saved first; a refusal (problems, a stale draft) is shown here and loses nothing. */
export function CommitDialog({
  flow,
  canActivate,
  problems,
  beforeCommit,
  onClose,
  onStale,
  onCommitted,
  onError,
}: {
  flow: string;
  canActivate: boolean;
  problems: Problem[];
  beforeCommit: () => Promise<void>;
  onClose: () => void;
  onStale: (e: ApiError) => void;
  onCommitted: (number: number, active: boolean) => void;
  onError: (e: unknown) => boolean;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [messageText, setMessage] = useState("");
  const [note, setNote] = useState("");
  const [activate, setActivate] = useState(canActivate);
  const [busy, setBusy] = useState(false);
  const [refusal, setRefusal] = useState<{ message: string; fields: Problem[] } | null>(null);

  useEffect(() => {
    const d = dialog.current;
    if (d && !d.open) d.showModal?.();
    return () => d?.close?.();
  }, []);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setBusy(true);
    setRefusal(null);
    try {
      await beforeCommit();
      const version = await commitDraft(flow, messageText, note, activate);
      onCommitted(version.number, version.active);
    } catch (err) {
      if (onError(err)) return;
      if (err instanceof ApiError && err.code === "draft_stale") {
        onStale(err);
        return;
      }
      const fields = err instanceof ApiError ? ((err.details as { fields?: Problem[] }).fields ?? []) : [];
      setRefusal({ message: err instanceof Error ? err.message : String(err), fields });
    } finally {
      setBusy(false);
    }
  }

  return (
    <dialog ref={dialog} aria-labelledby="commit-title" onCancel={onClose} className="card">
      <form onSubmit={submit} className="commit">
        <h2 id="commit-title">Commit {flow}</h2>
        <label>
          Message
          <input required maxLength={200} value={messageText} onChange={(e) => setMessage(e.target.value)} placeholder="What changed, in one line" />
        </label>
        <label>
          Note
          <textarea rows={3} value={note} onChange={(e) => setNote(e.target.value)} placeholder="Why, links, how to check it (optional)" />
        </label>
        {canActivate && (
          <label className="inline">
            <input type="checkbox" checked={activate} onChange={(e) => setActivate(e.target.checked)} /> Activate this version now
          </label>
        )}
        {activate && problems.length > 0 && <p className="error">The draft has {problems.length} problem(s) that stop its activation; fix them or commit without activating.</p>}
        {refusal && (
          <div role="alert" className="error">
            <p>{refusal.message}</p>
            {refusal.fields.length > 0 && (
              <ul>
                {refusal.fields.map((p) => (
                  <li key={`${p.path}:${p.message}`}>
                    <code>{p.path}</code> {p.message} {p.help && `— ${p.help}`}
                  </li>
                ))}
              </ul>
            )}
          </div>
        )}
        <div className="actions">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Committing…" : activate ? "Commit and activate" : "Commit"}
          </button>
        </div>
      </form>
    </dialog>
  );
}
