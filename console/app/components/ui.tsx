import { useRevalidator } from "@remix-run/react";
import { type ReactNode, useEffect } from "react";

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge badge-${status}`}>{status.replace(/_/g, " ")}</span>;
}

/** Re-runs the page's loaders every `ms` while the tab is visible (no full reload). */
export function usePolling(ms: number, enabled = true) {
  const revalidator = useRevalidator();
  useEffect(() => {
    if (!enabled) return;
    const timer = setInterval(() => {
      if (document.visibilityState === "visible" && revalidator.state === "idle") revalidator.revalidate();
    }, ms);
    return () => clearInterval(timer);
  }, [ms, enabled, revalidator]);
}

export function PageHeader({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <header className="page-header">
      <h1>{title}</h1>
      {children ? <div className="page-actions">{children}</div> : null}
    </header>
  );
}

/** Form-level errors from a Conform submission, announced to screen readers. */
export function FormErrors({ errors, id }: { errors?: string[]; id?: string }) {
  if (!errors || errors.length === 0) return null;
  return (
    <div className="form-errors" role="alert" id={id}>
      {errors.map((error) => (
        <p key={error}>{error}</p>
      ))}
    </div>
  );
}

export function FieldError({ id, errors }: { id: string; errors?: string[] }) {
  return errors && errors.length > 0 ? (
    <p className="field-error" id={id}>
      {errors.join(" ")}
    </p>
  ) : null;
}

/** The hidden CSRF field every state-changing form carries (the server adapter checks it). */
export function Csrf({ token }: { token: string }) {
  return <input type="hidden" name="_csrf" value={token} />;
}
