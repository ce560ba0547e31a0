import { describe, expect, it } from "vitest";

import type { FlowDiff } from "../api";
import type { FlowSpec } from "../editor/model";
import { markedNodes } from "./DiffDag";

const before: FlowSpec = {
  hosts: ["a.test"],
  upstream: "web",
  node: [
    { name: "db", kind: "process" },
    { name: "cache", kind: "process", after: ["db"] },
    { name: "web", kind: "process", after: ["db"] },
  ],
};
const after: FlowSpec = {
  hosts: ["a.test"],
  upstream: "web",
  node: [
    { name: "db", kind: "process", port: 5433 },
    { name: "search", kind: "process", after: ["db"] },
    { name: "web", kind: "process", after: ["db", "search"] },
  ],
};
const diff: FlowDiff = {
  fields: [],
  nodes: { added: ["search"], removed: ["cache"], changed: [{ name: "db", fields: [{ path: "/port", from: null, to: 5433 }] }] },
  edges: { added: [{ from: "search", to: "web" }], removed: [] },
};

describe("the side-by-side graph diff", () => {
  it("marks removed and changed nodes on the old side", () => {
    expect(markedNodes(before, diff, "from").map((n) => [n.name, n.state])).toEqual([
      ["db", "changed"],
      ["cache", "removed"],
      ["web", "unchanged"],
    ]);
  });
  it("marks added nodes and nodes with new edges on the new side", () => {
    expect(markedNodes(after, diff, "to").map((n) => [n.name, n.state, n.after])).toEqual([
      ["db", "changed", []],
      ["search", "added", ["db"]],
      ["web", "changed", ["db", "search"]],
    ]);
  });
});
