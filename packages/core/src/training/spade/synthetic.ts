/**
 * Procedural paired data for SPADE: exact label maps and images rendered from them, for tests and small demo
 * models where no labelled dataset can be downloaded. Classes: 0 sky, 1 ground, 2 sun disc, 3 house box.
 */
import type { TrainImage } from "../types.ts";

export const SYNTHETIC_PALETTE: readonly (readonly [number, number, number])[] = [
  [60, 120, 200],
  [40, 160, 60],
  [200, 180, 90],
  [150, 60, 40],
];

/** Scene `i` (any integer gives a different layout) at size x size; colours carry a little diagonal texture. */
export function syntheticScene(i: number, size = 48): { image: TrainImage; labels: Int32Array } {
  const labels = new Int32Array(size * size);
  const data = new Uint8Array(size * size * 3);
  const u = size / 48;
  const horizon = Math.floor(size * (0.55 + 0.05 * (i % 3)));
  const [sx, sy, sr] = [(8 + ((i * 9) % 30)) * u, (8 + (i % 4)) * u, (4 + (i % 3)) * u];
  const [hx, hw] = [(6 + ((i * 13) % 24)) * u, (10 + (i % 4)) * u];
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      let c = y >= horizon ? 1 : 0;
      if ((x - sx) ** 2 + (y - sy) ** 2 <= sr * sr) c = 2;
      if (x >= hx && x < hx + hw && y >= horizon - 9 * u && y < horizon + 2 * u) c = 3;
      labels[y * size + x] = c;
      const shade = ((x + 2 * y) % 7) * 3;
      data.set(SYNTHETIC_PALETTE[c].map((v) => Math.min(255, v + shade)), (y * size + x) * 3);
    }
  return { image: { data, width: size, height: size }, labels };
}
