import { useEffect, useId, useRef, useState } from "react";

/** A labelled text input over a parsed value: what the user types stays as typed (a half-written list
 * is not reformatted under the cursor), and a change from outside (a reload) replaces it. */
export function TextField<T>({
  label,
  value,
  format,
  parse,
  onChange,
  problem,
  hint,
  multiline = false,
  list,
  placeholder,
}: {
  label: string;
  value: T;
  format: (value: T) => string;
  /** The value of a text, or a reason it is not valid (then nothing changes). */
  parse: (text: string) => { value: T } | { problem: string };
  onChange: (value: T) => void;
  /** A problem the server reported for this field. */
  problem?: string;
  hint?: string;
  multiline?: boolean;
  list?: string;
  placeholder?: string;
}) {
  const id = useId();
  const [text, setText] = useState(() => format(value));
  const [invalid, setInvalid] = useState<string | null>(null);
  const last = useRef(JSON.stringify(value));
  useEffect(() => {
    const now = JSON.stringify(value);
    if (now !== last.current) {
      last.current = now;
      setText(format(value));
      setInvalid(null);
    }
  }, [value, format]);

  const change = (next: string) => {
    setText(next);
    const parsed = parse(next);
    if ("problem" in parsed) {
      setInvalid(parsed.problem);
      return;
    }
    setInvalid(null);
    last.current = JSON.stringify(parsed.value);
    onChange(parsed.value);
  };
  const message = invalid ?? problem;
  const described = [hint && `${id}-hint`, message && `${id}-problem`].filter(Boolean).join(" ") || undefined;
  const common = {
    id,
    value: text,
    "aria-invalid": message ? true : undefined,
    "aria-describedby": described,
    placeholder,
  };
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {multiline ? (
        <textarea {...common} rows={3} onChange={(e) => change(e.target.value)} />
      ) : (
        <input {...common} list={list} onChange={(e) => change(e.target.value)} />
      )}
      {hint && (
        <small id={`${id}-hint`} className="hint">
          {hint}
        </small>
      )}
      {message && (
        <small id={`${id}-problem`} className="error">
          {message}
        </small>
      )}
    </div>
  );
}

/** Text that may be left empty (then the key is left out and the default applies). */
export const optionalText = {
  format: (v: string | undefined) => v ?? "",
  parse: (t: string) => ({ value: t.trim() === "" ? undefined : t.trim() }),
};

/** A whole number that may be left empty. */
export const optionalNumber = {
  format: (v: number | undefined) => (v === undefined ? "" : String(v)),
  parse: (t: string): { value: number | undefined } | { problem: string } => {
    if (t.trim() === "") return { value: undefined };
    const n = Number(t.trim());
    return Number.isInteger(n) && n >= 0 ? { value: n } : { problem: "write a whole number" };
  },
};

/** A labelled select. */
export function SelectField<T extends string>({ label, value, options, onChange }: { label: string; value: T; options: { value: T; label: string }[]; onChange: (value: T) => void }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => onChange(e.target.value as T)}>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </div>
  );
}
