import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";

import { DiffView } from "./DiffView";

describe("DiffView", () => {
  it("shows changed settings by path, node changes and edges", () => {
    render(
      <DiffView
        from="1"
        to="2"
        diff={{
          fields: [{ path: "/upstream", from: "blue", to: "green" }],
          nodes: { added: ["cache"], removed: [], changed: [{ name: "web", fields: [{ path: "/port", from: 80, to: null }] }] },
          edges: { added: [{ from: "db", to: "cache" }], removed: [] },
        }}
      />,
    );
    const settings = screen.getByRole("table", { name: "Changed settings" });
    const row = within(settings).getByRole("row", { name: /upstream/ });
    expect(within(row).getAllByRole("cell").map((c) => c.textContent)).toEqual(["blue", "green"]);
    const web = screen.getByRole("table", { name: "Changes of node web" });
    expect(within(web).getAllByRole("cell").map((c) => c.textContent)).toEqual(["80", "—"]);
    expect(screen.getByText("Nodes added: cache")).toBeTruthy();
    expect(screen.getByText("Edges added: db → cache")).toBeTruthy();
  });

  it("says so when nothing differs", () => {
    render(<DiffView from="2" to="3" diff={{ fields: [], nodes: { added: [], removed: [], changed: [] }, edges: { added: [], removed: [] } }} />);
    expect(screen.getByText("No difference.")).toBeTruthy();
  });
});
