import type { FlowDiff } from "../api";
import { nodesOf, type FlowSpec } from "../editor/model";
import { Dag, type DagNodeView } from "./Dag";

/** How a node fares from one definition to the other. */
export type NodeMark = "added" | "removed" | "changed" | "unchanged";

/** The nodes of one side of a diff, each marked: the old side shows what was removed or changed, the new
 * side what was added or changed. */
export function markedNodes(spec: FlowSpec, diff: FlowDiff, side: "from" | "to"): DagNodeView[] {
  const changed = new Set(diff.nodes.changed.map((n) => n.name));
  const gone = new Set(side === "from" ? diff.nodes.removed : diff.nodes.added);
  const edges = new Set((side === "from" ? diff.edges.removed : diff.edges.added).map((e) => e.to));
  return nodesOf(spec).map((n) => {
    const mark: NodeMark = gone.has(n.name) ? (side === "from" ? "removed" : "added") : changed.has(n.name) || edges.has(n.name) ? "changed" : "unchanged";
    return { name: n.name, kind: n.kind, after: n.after ?? [], state: mark };
  });
}

/** Two definitions side by side as graphs, nodes coloured by what changed. */
export function DiffDag({ from, to, diff, fromLabel, toLabel }: { from: FlowSpec; to: FlowSpec; diff: FlowDiff; fromLabel: string; toLabel: string }) {
  return (
    <div className="side-by-side">
      <figure aria-label={`Graph of ${fromLabel}`}>
        <figcaption>{fromLabel}</figcaption>
        <Dag nodes={markedNodes(from, diff, "from")} upstream={from.upstream} />
      </figure>
      <figure aria-label={`Graph of ${toLabel}`}>
        <figcaption>{toLabel}</figcaption>
        <Dag nodes={markedNodes(to, diff, "to")} upstream={to.upstream} />
      </figure>
    </div>
  );
}
