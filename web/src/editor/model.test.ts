import { describe, expect, it } from "vitest";

import {
  addNode,
  connect,
  disconnect,
  formatKeepWarm,
  joinCommand,
  nameProblem,
  parseEnv,
  parseKeepWarm,
  removeNode,
  renameNode,
  splitCommand,
  type FlowSpec,
} from "./model";

const empty: FlowSpec = { hosts: ["shop.test"], upstream: "" };

function chain(): FlowSpec {
  let spec = empty;
  for (const kind of ["process", "process", "process"] as const) spec = addNode(spec, kind).spec;
  for (const [from, to] of [
    ["process-1", "process-2"],
    ["process-2", "process-3"],
  ]) {
    const r = connect(spec, from, to);
    if ("problem" in r) throw new Error(r.problem);
    spec = r.spec;
  }
  return spec;
}

describe("the editor model", () => {
  it("names new nodes uniquely and makes the first one the upstream", () => {
    const one = addNode(empty, "process");
    const two = addNode(one.spec, "process");
    expect([one.name, two.name]).toEqual(["process-1", "process-2"]);
    expect(two.spec.upstream).toBe("process-1");
    expect(two.spec.hosts).toEqual(["shop.test"]);
  });

  it("connects nodes and refuses a cycle, saying why", () => {
    const spec = chain();
    expect(spec.node?.map((n) => n.after ?? [])).toEqual([[], ["process-1"], ["process-2"]]);
    const cycle = connect(spec, "process-3", "process-1");
    expect(cycle).toEqual({ problem: expect.stringContaining("cycle") });
    expect(connect(spec, "process-1", "process-1")).toEqual({ problem: "process-1 cannot wait for itself" });
    const same = connect(spec, "process-1", "process-2");
    expect("spec" in same && same.spec.node?.[1].after).toEqual(["process-1"]);
  });

  it("removes an edge and drops an empty after list", () => {
    const spec = disconnect(chain(), "process-1", "process-2");
    expect(spec.node?.[1]).toEqual({ name: "process-2", kind: "process" });
  });

  it("renames a node everywhere it is named and removes one with its edges", () => {
    const renamed = renameNode(chain(), "process-1", "db");
    expect(renamed.upstream).toBe("db");
    expect(renamed.node?.[1].after).toEqual(["db"]);
    const removed = removeNode(renamed, "process-2");
    expect(removed.node?.map((n) => n.name)).toEqual(["db", "process-3"]);
    expect(removed.node?.[1].after).toBeUndefined();
    expect(removeNode(renamed, "db").upstream).toBe("");
  });

  it("checks node names", () => {
    expect(nameProblem(chain(), "process-1", "process-2")).toBe("another node is named process-2");
    expect(nameProblem(chain(), "process-1", "a b")).toMatch(/letters/);
    expect(nameProblem(chain(), "process-1", "process-1")).toBeNull();
  });

  it("keeps keys it does not know", () => {
    const spec = { ...empty, ignore: { paths: ["/healthz"] } };
    expect(addNode(spec, "deployment").spec.ignore).toEqual({ paths: ["/healthz"] });
  });

  it("splits and joins command lines", () => {
    expect(splitCommand(`demo --name "my app" --msg 'it''s' a\\ b ""`)).toEqual(["demo", "--name", "my app", "--msg", "its", "a b", ""]);
    const args = ["/usr/bin/app", "--label", "two words", "it's", ""];
    expect(splitCommand(joinCommand(args))).toEqual(args);
    expect(joinCommand(["a", "b=c"])).toBe("a b=c");
  });

  it("reads environment lines and reports a bad one", () => {
    expect(parseEnv("A=1\n\nB = x=y")).toEqual({ env: { A: "1", B: " x=y" } });
    expect(parseEnv("A=1\nnope")).toEqual({ problem: "line 2: write KEY=VALUE" });
  });

  it("reads and writes keep-warm windows a line each", () => {
    const text = "0 8 * * 1-5 for 10h in Europe/Berlin\n\n@hourly for 5m ahead 30s";
    const parsed = parseKeepWarm(text);
    expect(parsed).toEqual({
      value: [
        { cron: "0 8 * * 1-5", for: "10h", tz: "Europe/Berlin" },
        { cron: "@hourly", for: "5m", ahead: "30s" },
      ],
    });
    if ("value" in parsed) expect(formatKeepWarm(parsed.value)).toBe("0 8 * * 1-5 for 10h in Europe/Berlin\n@hourly for 5m ahead 30s");
    expect(parseKeepWarm("0 8 * * *")).toEqual({ problem: expect.stringContaining("line 1: write CRON for DURATION") });
    expect(parseKeepWarm("0 8 * * * for 1h at noon")).toEqual({ problem: expect.stringContaining("only \"in ZONE\" and \"ahead DURATION\"") });
    expect(parseKeepWarm("")).toEqual({ value: [] });
  });
});
