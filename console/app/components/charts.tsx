import type { DayBucket } from "../utils/charts";

const colours = { completed: "#1a7f37", failed: "#cf222e", cancelled: "#6e7781" } as const;

/** Stacked bars of finished jobs per day; the numbers are also in a table for screen readers. */
export function JobsPerDayChart({ days }: { days: DayBucket[] }) {
  const max = Math.max(1, ...days.map((day) => day.completed + day.failed + day.cancelled));
  const width = 28;
  const gap = 8;
  const height = 120;
  return (
    <figure className="chart">
      <svg
        viewBox={`0 0 ${days.length * (width + gap)} ${height + 20}`}
        role="img"
        aria-labelledby="jobs-per-day-title"
      >
        <title id="jobs-per-day-title">Finished jobs per day by outcome</title>
        {days.map((day, index) => {
          let y = height;
          return (
            <g key={day.day} transform={`translate(${index * (width + gap)},0)`}>
              {(["completed", "failed", "cancelled"] as const).map((outcome) => {
                const h = (day[outcome] / max) * height;
                y -= h;
                return h > 0 ? (
                  <rect key={outcome} x={0} y={y} width={width} height={h} fill={colours[outcome]} />
                ) : null;
              })}
              <text x={width / 2} y={height + 14} textAnchor="middle" fontSize="10" fill="currentColor">
                {day.day.slice(5)}
              </text>
            </g>
          );
        })}
      </svg>
      <figcaption>
        <span className="legend" style={{ color: colours.completed }}>
          ■
        </span>{" "}
        completed{" "}
        <span className="legend" style={{ color: colours.failed }}>
          ■
        </span>{" "}
        failed{" "}
        <span className="legend" style={{ color: colours.cancelled }}>
          ■
        </span>{" "}
        cancelled
      </figcaption>
      {/* A hidden table sizes to its content whatever its width says: the wrapper clips it, so a narrow
          screen never scrolls sideways for it. */}
      <div className="visually-hidden">
        <table>
          <caption>Finished jobs per day</caption>
          <thead>
            <tr>
              <th scope="col">Day</th>
              <th scope="col">Completed</th>
              <th scope="col">Failed</th>
              <th scope="col">Cancelled</th>
            </tr>
          </thead>
          <tbody>
            {days.map((day) => (
              <tr key={day.day}>
                <th scope="row">{day.day}</th>
                <td>{day.completed}</td>
                <td>{day.failed}</td>
                <td>{day.cancelled}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </figure>
  );
}

/** A labelled horizontal meter (CPU, memory, disk). */
export function Meter({
  label,
  of,
  percent,
}: {
  label: string;
  of?: string;
  percent: number | null | undefined;
}) {
  const value = percent === null || percent === undefined ? null : Math.max(0, Math.min(100, percent));
  return (
    <div className="meter">
      <span className="meter-label">{label}</span>
      <meter
        className="meter-bar"
        min={0}
        max={100}
        high={85}
        optimum={0}
        value={value ?? 0}
        aria-label={of ? `${label} of ${of}` : label}
        aria-valuetext={value === null ? "no figure yet" : `${value.toFixed(0)}%`}
      />
      <span className="meter-value">{value === null ? "–" : `${value.toFixed(0)}%`}</span>
    </div>
  );
}
