import { roles } from "../api";
import { useLoad } from "../useLoad";

/** Roles and what each may do. */
export function Roles({ onError }: { onError: (e: unknown) => boolean }) {
  const { data, error } = useLoad(roles, onError);
  if (!data) return error ? <p role="alert" className="error">{error}</p> : <p>Loading…</p>;
  return (
    <section aria-labelledby="roles-title">
      <h2 id="roles-title">Roles</h2>
      <table aria-labelledby="roles-title">
        <thead>
          <tr>
            <th scope="col">Role</th>
            <th scope="col">What it is for</th>
            <th scope="col">Permissions</th>
          </tr>
        </thead>
        <tbody>
          {data.roles.map((r) => (
            <tr key={r.name}>
              <th scope="row">
                {r.name} {r.built_in && <span className="tag">built in</span>}
              </th>
              <td>{r.description}</td>
              <td>
                {r.permissions.map((p) => (
                  <code key={p} className="tag">
                    {p}
                  </code>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
