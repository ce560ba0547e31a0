// Light and dark themes: the system's by default, switchable, remembered in this browser.

/** A theme choice. */
export type Theme = "light" | "dark";

const KEY = "leannodes.theme";

/** The theme to show: the one chosen here, else the system's. */
export function initialTheme(): Theme {
  const saved = localStorage.getItem(KEY);
  if (saved === "light" || saved === "dark") return saved;
  return window.matchMedia?.("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

/** Shows `theme` and remembers it. */
export function applyTheme(theme: Theme): void {
  document.documentElement.dataset.theme = theme;
  localStorage.setItem(KEY, theme);
}
