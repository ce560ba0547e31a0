// The automatic layout of a flow's DAG: dependencies left, dependants right (dagre), so a wake reads
// from left to right.

import dagre from "@dagrejs/dagre";

/** A node to place: its name and the nodes it waits for. */
export interface DagNode {
  name: string;
  after: string[];
}

/** Where a node goes (its top-left corner). */
export interface Placed {
  name: string;
  x: number;
  y: number;
}

/** The size of a node box. */
export const NODE_WIDTH = 180;
export const NODE_HEIGHT = 64;

/** Places `nodes` left to right by dependency; edges to unknown nodes are ignored. */
export function layout(nodes: DagNode[]): Placed[] {
  const graph = new dagre.graphlib.Graph();
  graph.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 64, marginx: 8, marginy: 8 });
  graph.setDefaultEdgeLabel(() => ({}));
  const names = new Set(nodes.map((n) => n.name));
  for (const node of nodes) graph.setNode(node.name, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const node of nodes) {
    for (const dependency of node.after) {
      if (names.has(dependency)) graph.setEdge(dependency, node.name);
    }
  }
  dagre.layout(graph);
  return nodes.map((n) => {
    const placed = graph.node(n.name);
    return { name: n.name, x: placed.x - NODE_WIDTH / 2, y: placed.y - NODE_HEIGHT / 2 };
  });
}
