import { useState } from "react";

import { ApiError, importFlows, type Format, type ImportedFlow } from "../api";

const ACTION = { create: "created", new_version: "new version", unchanged: "unchanged" } as const;

/** Imports flows from a TOML or JSON document: check it first (the plan, nothing written), then import;
 * the API checks the whole document before it writes anything. */
export function ImportPanel({ canActivate, onImported, onError }: { canActivate: boolean; onImported: () => void; onError: (e: unknown) => boolean }) {
  const [format, setFormat] = useState<Format>("toml");
  const [content, setContent] = useState("");
  const [activate, setActivate] = useState(false);
  const [message, setMessage] = useState("");
  const [plan, setPlan] = useState<{ dry: boolean; flows: ImportedFlow[] } | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function run(dry: boolean) {
    setError(null);
    try {
      const result = await importFlows(format, content, dry, activate, message);
      setPlan({ dry: result.dry_run, flows: result.flows });
      if (!dry) onImported();
    } catch (e) {
      if (!onError(e)) setError(e instanceof ApiError ? e.message : String(e));
    }
  }

  return (
    <details className="card import">
      <summary>Import flows</summary>
      <div className="inline-form">
        <label>
          Format
          <select value={format} onChange={(e) => setFormat(e.target.value as Format)}>
            <option value="toml">TOML</option>
            <option value="json">JSON</option>
          </select>
        </label>
        <label>
          From a file
          <input
            type="file"
            accept=".toml,.json,text/plain,application/json"
            onChange={(e) => {
              const file = e.target.files?.[0];
              if (!file) return;
              if (file.name.endsWith(".json")) setFormat("json");
              file.text().then(setContent);
            }}
          />
        </label>
      </div>
      <label className="block">
        Flows to import
        <textarea rows={8} value={content} onChange={(e) => setContent(e.target.value)} placeholder={'[[flow]]\nname = "review-42"\n…'} spellCheck={false} />
      </label>
      <div className="inline-form">
        <label>
          Commit message
          <input value={message} onChange={(e) => setMessage(e.target.value)} placeholder="import" />
        </label>
        {canActivate && (
          <label className="inline">
            <input type="checkbox" checked={activate} onChange={(e) => setActivate(e.target.checked)} /> Activate the new versions
          </label>
        )}
        <button type="button" onClick={() => run(true)} disabled={!content.trim()}>
          Check
        </button>
        <button type="button" className="primary" onClick={() => run(false)} disabled={!content.trim()}>
          Import
        </button>
      </div>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {plan && (
        <table aria-label={plan.dry ? "Import plan" : "Imported"}>
          <thead>
            <tr>
              <th scope="col">Flow</th>
              <th scope="col">{plan.dry ? "Would be" : "Was"}</th>
              <th scope="col">Version</th>
              <th scope="col">Changes</th>
            </tr>
          </thead>
          <tbody>
            {plan.flows.map((f) => (
              <tr key={f.name}>
                <th scope="row">{f.name}</th>
                <td>
                  {ACTION[f.action]}
                  {f.activated && " and activated"}
                </td>
                <td>{f.version ?? "—"}</td>
                <td>
                  {[...f.change.fields.map((c) => c.path), ...f.change.nodes.added.map((n) => `+${n}`), ...f.change.nodes.removed.map((n) => `−${n}`), ...f.change.nodes.changed.map((n) => `~${n.name}`)].join(", ") || "—"}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </details>
  );
}
