import { isRouteErrorResponse, useRouteError } from "@remix-run/react";

export function ErrorBoundary() {
  return <ErrorPage error={useRouteError()} />;
}

/** Readable errors: 403, 404 and faults as a message, never a stack trace. */
export function ErrorPage({ error }: { error: unknown }) {
  if (isRouteErrorResponse(error)) {
    const message =
      typeof error.data === "object" && error.data !== null && "message" in error.data
        ? String((error.data as { message: unknown }).message)
        : typeof error.data === "string"
          ? error.data
          : error.statusText;
    const title =
      error.status === 403
        ? "You do not have access to this page"
        : error.status === 404
          ? "Not found"
          : `Something went wrong (${error.status})`;
    return (
      <section className="error-page" aria-labelledby="error-title">
        <h1 id="error-title">{title}</h1>
        <p>{message}</p>
        <p>
          <a href="/console/">Back to the overview</a>
        </p>
      </section>
    );
  }
  return (
    <section className="error-page" aria-labelledby="error-title">
      <h1 id="error-title">Something went wrong</h1>
      <p>
        The console could not show this page. Try again; if it keeps failing, the server log has the details.
      </p>
      <p>
        <a href="/console/">Back to the overview</a>
      </p>
    </section>
  );
}
