import { cleanup, render, screen } from "@testing-library/react";
import { MemoryRouter } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";

import { LoginPage, returnPath } from "./Login";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("the sign-in page", () => {
  it("returns only to a path of the dashboard", () => {
    expect(returnPath("/flows/shop")).toBe("/flows/shop");
    expect(returnPath(null)).toBe("/");
    for (const elsewhere of ["//evil.example", "/\\evil.example", "https://evil.example/", "/login", "/login?next=/x", "flows"]) {
      expect(returnPath(elsewhere), elsewhere).toBe("/");
    }
  });

  it("offers the single-sign-on providers, returning to the page asked for", async () => {
    vi.stubGlobal("fetch", async () =>
      new Response(JSON.stringify({ mode: "password", setup_required: false, sso: [{ kind: "oidc", name: "corp", label: "Corp SSO", start_url: "/api/v1/auth/oidc/corp/start" }] }), {
        status: 200,
        headers: { "content-type": "application/json" },
      }),
    );
    render(
      <MemoryRouter initialEntries={["/login?next=%2Fflows%2Fshop"]}>
        <LoginPage onSignedIn={() => {}} />
      </MemoryRouter>,
    );
    const link = await screen.findByRole("link", { name: "Sign in with Corp SSO" });
    expect(link.getAttribute("href")).toBe("/api/v1/auth/oidc/corp/start?return_to=%2Fflows%2Fshop");
  });
});
