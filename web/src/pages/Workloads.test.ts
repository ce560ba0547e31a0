import { describe, expect, it } from "vitest";

import { scalers } from "./Workloads";

const workload = (warnings: string[]) => ({ id: "deployment/shop/web", kind: "deployment", used_by: ["shop/web"], running: false, replicas: 0, ready_replicas: 0, warnings });

describe("the workload badges", () => {
  it("name the other scalers a workload has", () => {
    expect(scalers(workload([]))).toEqual([]);
    expect(scalers(workload(["HorizontalPodAutoscaler shop/web also scales deployment web: …"]))).toEqual(["HPA"]);
    expect(scalers(workload(["HorizontalPodAutoscaler shop/a …", "KEDA ScaledObject shop/b also scales …"]))).toEqual(["HPA", "KEDA"]);
  });
});
