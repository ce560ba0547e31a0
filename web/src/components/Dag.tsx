import { Background, Controls, type Edge, type Node, Position, ReactFlow, useNodesState } from "@xyflow/react";
import { useEffect, useMemo } from "react";

import { layout } from "../layout";

/** A node as the DAG shows it. */
export interface DagNodeView {
  name: string;
  kind: string;
  state: string;
  after: string[];
  /** What to show under the state (time to ready, failure reason). */
  note?: string;
}

/** A flow's DAG, laid out left to right, each node with its live state. */
export function Dag({ nodes, upstream }: { nodes: DagNodeView[]; upstream?: string }) {
  const built = useMemo(() => {
    const placed = new Map(layout(nodes).map((p) => [p.name, p]));
    const flowNodes: Node[] = nodes.map((n) => ({
      id: n.name,
      position: { x: placed.get(n.name)?.x ?? 0, y: placed.get(n.name)?.y ?? 0 },
      data: {
        label: (
          <div className="dag-node" role="group" aria-label={`node ${n.name}: ${n.state}`} data-state={n.state}>
            <strong>{n.name}</strong>
            {n.name === upstream && <span className="tag">upstream</span>}
            <span className={`badge state-${n.state}`}>{n.state}</span>
            {n.note && <small>{n.note}</small>}
          </div>
        ),
      },
      className: `state-${n.state}`,
      sourcePosition: Position.Right,
      targetPosition: Position.Left,
      draggable: false,
      connectable: false,
    }));
    const edges: Edge[] = nodes.flatMap((n) =>
      n.after.map((a) => ({ id: `${a}->${n.name}`, source: a, target: n.name, animated: n.state === "starting" })),
    );
    return { flowNodes, edges };
  }, [nodes, upstream]);
  // The graph keeps the sizes it measured: only the state of each node changes as a wake goes on.
  const [flowNodes, setFlowNodes, onNodesChange] = useNodesState<Node>(built.flowNodes);
  useEffect(() => {
    setFlowNodes((previous) => built.flowNodes.map((n) => ({ ...n, measured: previous.find((p) => p.id === n.id)?.measured })));
  }, [built, setFlowNodes]);

  return (
    <div className="dag" aria-label="Flow graph">
      <ReactFlow
        nodes={flowNodes}
        edges={built.edges}
        onNodesChange={onNodesChange}
        fitView
        fitViewOptions={{ padding: 0.15, maxZoom: 1.2 }}
        nodesDraggable={false}
        nodesConnectable={false}
        proOptions={{ hideAttribution: true }}
      >
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
