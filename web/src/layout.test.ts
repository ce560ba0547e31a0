import { describe, expect, it } from "vitest";

import { layout, NODE_WIDTH } from "./layout";

describe("layout", () => {
  it("places dependencies left of the nodes that wait for them, siblings apart", () => {
    const placed = layout([
      { name: "web", after: ["cache", "search"] },
      { name: "db", after: [] },
      { name: "cache", after: ["db"] },
      { name: "search", after: ["db"] },
    ]);
    const at = Object.fromEntries(placed.map((p) => [p.name, p]));
    expect(at.db.x + NODE_WIDTH).toBeLessThan(at.cache.x);
    expect(at.cache.x).toBe(at.search.x);
    expect(at.cache.y).not.toBe(at.search.y);
    expect(at.search.x + NODE_WIDTH).toBeLessThan(at.web.x);
  });

  it("ignores edges to nodes that do not exist", () => {
    expect(layout([{ name: "web", after: ["ghost"] }])).toHaveLength(1);
  });
});
