import { useState } from "react";

/** A secret shown once: selectable text (works without JavaScript) and, with it, a copy button. */
export function ShownOnce({ label, value }: { label: string; value: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <div className="notice" role="status">
      <p>
        <strong>{label}</strong> — shown once; copy it now.
      </p>
      <div className="secret">
        <code data-testid="shown-once">{value}</code>
        <button
          type="button"
          className="secondary"
          onClick={() => {
            navigator.clipboard?.writeText(value).then(
              () => setCopied(true),
              () => setCopied(false),
            );
          }}
        >
          {copied ? "Copied" : "Copy"}
        </button>
      </div>
    </div>
  );
}
