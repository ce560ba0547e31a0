import type { FieldChange, FlowDiff } from "../api";

const show = (value: unknown) => (value === null || value === undefined ? "—" : typeof value === "string" ? value : JSON.stringify(value));

function Fields({ fields, label }: { fields: FieldChange[]; label: string }) {
  return (
    <table aria-label={label}>
      <thead>
        <tr>
          <th scope="col">Field</th>
          <th scope="col">Before</th>
          <th scope="col">After</th>
        </tr>
      </thead>
      <tbody>
        {fields.map((f) => (
          <tr key={f.path}>
            <th scope="row">
              <code>{f.path}</code>
            </th>
            <td>{show(f.from)}</td>
            <td>{show(f.to)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** What changed between two definitions of a flow: settings by path, nodes and edges. */
export function DiffView({ diff, from, to }: { diff: FlowDiff; from: string; to: string }) {
  const empty =
    diff.fields.length + diff.nodes.added.length + diff.nodes.removed.length + diff.nodes.changed.length + diff.edges.added.length + diff.edges.removed.length === 0;
  return (
    <section aria-label={`Changes from ${from} to ${to}`} className="diff">
      <h3>
        Changes from {from} to {to}
      </h3>
      {empty && <p>No difference.</p>}
      {diff.fields.length > 0 && <Fields fields={diff.fields} label="Changed settings" />}
      {diff.nodes.added.length > 0 && <p>Nodes added: {diff.nodes.added.join(", ")}</p>}
      {diff.nodes.removed.length > 0 && <p>Nodes removed: {diff.nodes.removed.join(", ")}</p>}
      {diff.nodes.changed.map((n) => (
        <Fields key={n.name} fields={n.fields} label={`Changes of node ${n.name}`} />
      ))}
      {diff.edges.added.length > 0 && <p>Edges added: {diff.edges.added.map((e) => `${e.from} → ${e.to}`).join(", ")}</p>}
      {diff.edges.removed.length > 0 && <p>Edges removed: {diff.edges.removed.map((e) => `${e.from} → ${e.to}`).join(", ")}</p>}
    </section>
  );
}
