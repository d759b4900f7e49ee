/** Parses `30d`, `12h`, `90m`, `45s` (or plain seconds) into seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d{1,9})([smhd]?)$/.exec(text.trim());
  if (!match) throw new Error(`"${text}" is not a duration: use e.g. 30d, 12h, 90m or 3600s`);
  const unit = { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as "" | "s" | "m" | "h" | "d"];
  const seconds = Number(match[1]) * unit;
  if (seconds <= 0) throw new Error("a duration must be positive");
  return seconds;
}
