/** Seeds as the API takes them: "0-7" stays a range, "1, 5, 9" becomes a list. */
export function parseSeeds(text: string): number[] | string {
  const t = text.trim();
  if (/^\d+-\d+$/.test(t)) return t;
  return t.split(/[\s,]+/).filter(Boolean).map(Number);
}
