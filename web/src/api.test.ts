import { afterEach, describe, expect, it, vi } from "vitest";

import openapi from "../../docs/openapi.json";
import { ApiError, exportFlows, listFlows, login, operate, PATHS, saveDraft } from "./api";

function answer(status: number, body: unknown) {
  return new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

afterEach(() => vi.unstubAllGlobals());

describe("the API client", () => {
  it("calls only paths of the committed OpenAPI document", () => {
    for (const path of Object.values(PATHS)) {
      const concrete = path.replace("{operation}", "drain");
      expect(Object.keys(openapi.paths), path).toContain(concrete);
    }
  });

  it("sends the CSRF token of the sign-in with unsafe requests", async () => {
    const calls: { url: string; init: RequestInit }[] = [];
    vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
      calls.push({ url, init });
      if (url.endsWith("/auth/login")) return answer(200, { user: { id: "u", email: "a@b.c" }, csrf_token: "t0k" });
      if (url.endsWith("/auth/me")) return answer(200, { user: { id: "u", email: "a@b.c" }, permissions: [], csrf_token: "t0k" });
      return answer(200, { state: "asleep", pinned: false, disabled: false });
    });
    await login("a@b.c", "pw");
    await operate("shop/x", "drain");
    const post = calls.at(-1)!;
    expect(post.url).toBe("/api/v1/flows/shop%2Fx/drain");
    expect((post.init.headers as Record<string, string>)["x-csrf-token"]).toBe("t0k");
  });

  it("turns error answers and an unreachable server into ApiError", async () => {
    vi.stubGlobal("fetch", async () => answer(401, { error: "unauthenticated", message: "sign in first", details: {} }));
    await expect(listFlows()).rejects.toMatchObject({ status: 401, code: "unauthenticated", message: "sign in first" });
    vi.stubGlobal("fetch", async () => {
      throw new TypeError("Failed to fetch");
    });
    const e = await listFlows().catch((e: unknown) => e);
    expect(e).toBeInstanceOf(ApiError);
    expect(e).toMatchObject({ status: 0, code: "unreachable" });
  });

  it("saves a draft with If-Match on the version read, and a 409 keeps its code and details", async () => {
    const calls: RequestInit[] = [];
    vi.stubGlobal("fetch", async (_url: string, init: RequestInit) => {
      calls.push(init);
      return answer(409, { error: "version_conflict", message: "someone saved since", details: { current: 8 } });
    });
    const e = await saveDraft("shop", { hosts: ["a.test"], upstream: "web" }, 7).catch((e: unknown) => e);
    expect(e).toMatchObject({ status: 409, code: "version_conflict", details: { current: 8 } });
    expect((calls[0].headers as Record<string, string>)["if-match"]).toBe("7");
    expect(JSON.parse(calls[0].body as string)).toEqual({ spec: { hosts: ["a.test"], upstream: "web" } });
  });

  it("returns an export that is not JSON as its text", async () => {
    vi.stubGlobal("fetch", async () => new Response('[[flow]]\nname = "blog"\n', { status: 200, headers: { "content-type": "application/toml" } }));
    expect(await exportFlows("toml")).toBe('[[flow]]\nname = "blog"\n');
  });
});
