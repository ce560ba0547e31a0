import { Background, Controls, type Edge, type Node, type NodeChange, Position, ReactFlow, useNodesState, useReactFlow } from "@xyflow/react";
import { useEffect, useMemo, useState } from "react";

import { layout } from "../layout";
import { nodesOf, type FlowSpec } from "./model";

/** Fits the graph into view whenever `on` changes (a node or an edge was added or removed). */
function Refit({ on }: { on: string }) {
  const { fitView } = useReactFlow();
  useEffect(() => {
    // After React Flow has measured the new nodes.
    const timer = window.setTimeout(() => fitView({ padding: 0.2, maxZoom: 1, duration: 150 }), 60);
    return () => window.clearTimeout(timer);
  }, [on, fitView]);
  return null;
}

/** The editable graph: the automatic layout places the nodes until the user moves one (**Arrange**
 * lays them out again); nodes can be selected; dragging from a node's right handle to another
 * node makes that node wait for it; a selected edge or node is removed with Delete or Backspace. */
export function Canvas({
  spec,
  selected,
  broken,
  readOnly,
  onSelect,
  onConnect,
  onDisconnect,
  onRemove,
}: {
  spec: FlowSpec;
  selected: string | null;
  /** Nodes with a problem. */
  broken: Set<string>;
  readOnly: boolean;
  onSelect: (name: string | null) => void;
  onConnect: (from: string, to: string) => void;
  onDisconnect: (from: string, to: string) => void;
  onRemove: (name: string) => void;
}) {
  const nodes = nodesOf(spec);
  const [flowNodes, setFlowNodes, onNodesChange] = useNodesState<Node>([]);
  const [moved, setMoved] = useState(false);
  const shape = useMemo(() => JSON.stringify(nodes.map((n) => [n.name, n.kind, n.after ?? []])) + spec.upstream, [nodes, spec.upstream]);

  // The automatic layout places every node until the user moves one; then only new nodes are placed.
  useEffect(() => {
    const placed = new Map(layout(nodes.map((n) => ({ name: n.name, after: n.after ?? [] }))).map((p) => [p.name, p]));
    setFlowNodes((previous) =>
      nodes.map((n) => {
        const before = previous.find((p) => p.id === n.name);
        return {
          id: n.name,
          position: (moved && before?.position) || { x: placed.get(n.name)?.x ?? 0, y: placed.get(n.name)?.y ?? 0 },
          measured: before?.measured,
          selected: n.name === selected,
          data: {
            label: (
              <div className="dag-node" role="group" aria-label={`node ${n.name} (${n.kind})`}>
                <strong>{n.name}</strong>
                <span>
                  <span className="tag">{n.kind}</span>
                  {n.name === spec.upstream && <span className="tag">upstream</span>}
                </span>
                {broken.has(n.name) && <small className="error">needs attention</small>}
              </div>
            ),
          },
          className: n.name === selected ? "selected-node" : broken.has(n.name) ? "state-failed" : undefined,
          sourcePosition: Position.Right,
          targetPosition: Position.Left,
        };
      }),
    );
    // `shape` covers what the nodes show; `nodes` itself changes identity on every edit.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape, selected, broken, moved, setFlowNodes]);

  const changed = (changes: NodeChange<Node>[]) => {
    if (changes.some((c) => c.type === "position" && c.dragging)) setMoved(true);
    onNodesChange(changes);
  };

  const edges: Edge[] = nodes.flatMap((n) => (n.after ?? []).map((a) => ({ id: `${a}->${n.name}`, source: a, target: n.name, ariaLabel: `edge ${a} to ${n.name}` })));

  return (
    <div className="dag editor-canvas" aria-label="Flow graph editor">
      {moved && (
        <button type="button" className="arrange" onClick={() => setMoved(false)}>
          Arrange
        </button>
      )}
      <ReactFlow
        nodes={flowNodes}
        edges={edges}
        onNodesChange={changed}
        onConnect={(c) => !readOnly && onConnect(c.source, c.target)}
        onEdgesDelete={(gone) => gone.forEach((e) => onDisconnect(e.source, e.target))}
        onNodesDelete={(gone) => gone.forEach((n) => onRemove(n.id))}
        onNodeClick={(_, n) => onSelect(n.id)}
        onPaneClick={() => onSelect(null)}
        nodesConnectable={!readOnly}
        elementsSelectable
        deleteKeyCode={readOnly ? null : ["Delete", "Backspace"]}
        fitView
        fitViewOptions={{ padding: 0.2, maxZoom: 1 }}
        proOptions={{ hideAttribution: true }}
      >
        <Background />
        <Controls showInteractive={false} />
        <Refit on={`${nodes.length}:${edges.length}:${moved}`} />
      </ReactFlow>
    </div>
  );
}
