import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";
import { afterEach, describe, expect, it } from "vitest";

import { optionalNumber, TextField } from "./fields";

function Port({ seen }: { seen: (number | undefined)[] }) {
  const [port, setPort] = useState<number | undefined>(8080);
  return (
    <>
      <TextField
        label="Port"
        value={port}
        {...optionalNumber}
        onChange={(v) => {
          seen.push(v);
          setPort(v);
        }}
      />
      <button type="button" onClick={() => setPort(9090)}>
        reload
      </button>
    </>
  );
}

afterEach(cleanup);

describe("TextField", () => {
  it("keeps what was typed when it is not valid yet, says why, and changes nothing", () => {
    const seen: (number | undefined)[] = [];
    render(<Port seen={seen} />);
    const input = screen.getByLabelText("Port") as HTMLInputElement;
    fireEvent.change(input, { target: { value: "80a" } });
    expect(input.value).toBe("80a");
    expect(input.getAttribute("aria-invalid")).toBe("true");
    expect(screen.getByText("write a whole number")).toBeTruthy();
    expect(seen).toEqual([]);
    fireEvent.change(input, { target: { value: "8081" } });
    expect(seen).toEqual([8081]);
    expect(input.getAttribute("aria-invalid")).toBeNull();
  });

  it("shows a value changed from outside", () => {
    render(<Port seen={[]} />);
    fireEvent.click(screen.getByRole("button", { name: "reload" }));
    expect((screen.getByLabelText("Port") as HTMLInputElement).value).toBe("9090");
  });
});
