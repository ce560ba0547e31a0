import { useState } from "react";

import { ApiError, createRoute, type RouteInput } from "../api";

/** Webhook payload shapes (docs/operations.md lists each). */
const FORMATS = [
  "generic",
  "google_chat",
  "webex",
  "mattermost",
  "rocket_chat",
  "zulip",
  "pagerduty",
  "opsgenie",
  "grafana_oncall",
  "servicenow",
  "jira_service_management",
  "datadog",
  "splunk_hec",
  "new_relic",
  "elastic",
  "sumo_logic",
  "n8n",
  "zapier",
  "workato",
  "mulesoft",
];

/** The form that creates a route through the API. The URL and key are typed into password fields and
 * never shown again. */
export function NewRoute({ events, onCreated, onError }: { events: string[]; onCreated: () => void; onError: (e: unknown) => boolean }) {
  const [name, setName] = useState("");
  const [kind, setKind] = useState<RouteInput["kind"]>("slack");
  const [format, setFormat] = useState("generic");
  const [url, setUrl] = useState("");
  const [key, setKey] = useState("");
  const [chosen, setChosen] = useState<string[]>([]);
  const [flows, setFlows] = useState("");
  const [problem, setProblem] = useState<string | null>(null);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const route: RouteInput = { name: name.trim(), kind, url: url.trim() };
    if (kind === "webhook") route.format = format;
    if (kind === "webhook" && format === "pagerduty") route.routing_key = key.trim();
    if (chosen.length) route.events = chosen;
    const flowList = flows.split(",").map((f) => f.trim()).filter(Boolean);
    if (flowList.length) route.flows = flowList;
    try {
      await createRoute(route);
      setName("");
      setUrl("");
      setKey("");
      setChosen([]);
      setFlows("");
      setProblem(null);
      onCreated();
    } catch (err) {
      if (!onError(err)) setProblem(err instanceof ApiError ? err.message : String(err));
    }
  }

  return (
    <form className="stacked-form" aria-labelledby="new-route-title" onSubmit={submit}>
      <h3 id="new-route-title">New route</h3>
      <label>
        Route name
        <input required value={name} onChange={(e) => setName(e.target.value)} placeholder="ops-slack" />
      </label>
      <label>
        Kind
        <select value={kind} onChange={(e) => setKind(e.target.value as RouteInput["kind"])}>
          <option value="slack">Slack</option>
          <option value="teams">Microsoft Teams</option>
          <option value="webhook">Webhook</option>
        </select>
      </label>
      {kind === "webhook" && (
        <label>
          Payload format
          <select value={format} onChange={(e) => setFormat(e.target.value)}>
            {FORMATS.map((f) => (
              <option key={f} value={f}>
                {f}
              </option>
            ))}
          </select>
        </label>
      )}
      <label>
        Webhook URL (write-only)
        <input required type="password" autoComplete="off" value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://hooks.slack.com/services/…" />
      </label>
      {kind === "webhook" && format === "pagerduty" && (
        <label>
          Routing key (write-only)
          <input required type="password" autoComplete="off" value={key} onChange={(e) => setKey(e.target.value)} />
        </label>
      )}
      <fieldset>
        <legend>Events (none checked: all)</legend>
        {events.map((ev) => (
          <label key={ev} className="check">
            <input
              type="checkbox"
              checked={chosen.includes(ev)}
              onChange={(e) => setChosen((c) => (e.target.checked ? [...c, ev] : c.filter((x) => x !== ev)))}
            />
            {ev}
          </label>
        ))}
      </fieldset>
      <label>
        Flows (comma-separated; empty: all)
        <input value={flows} onChange={(e) => setFlows(e.target.value)} placeholder="shop, blog" />
      </label>
      {problem && (
        <p role="alert" className="error">
          {problem}
        </p>
      )}
      <button type="submit" className="primary">
        Create route
      </button>
    </form>
  );
}
