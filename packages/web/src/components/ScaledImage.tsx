import { useState } from "react";

/**
 * A model output as it really is: small images (32×32, 64×64) are drawn scaled up by a whole factor with
 * nearest-neighbour (`image-rendering: pixelated`, set in styles.css) so pixels stay sharp instead of blurry,
 * beside a link that downloads the file at 1:1.
 */
export function ScaledImage({ src, alt, testId, target = 256, name = "ganserve.png" }: { src: string; alt: string; testId?: string; target?: number; name?: string }) {
  const [size, setSize] = useState<[number, number]>();
  const scale = size ? Math.max(1, Math.floor(target / Math.max(size[0], size[1]))) : 1;
  return (
    <span className="scaled">
      <img
        data-testid={testId}
        src={src}
        alt={alt}
        onLoad={(e) => setSize([e.currentTarget.naturalWidth, e.currentTarget.naturalHeight])}
        style={size ? { width: size[0] * scale, height: size[1] * scale } : { visibility: "hidden" }}
      />
      {size && (
        <a className="download" href={src} download={name}>
          download {size[0]}×{size[1]}
          {scale > 1 ? ` (shown ${scale}×)` : ""}
        </a>
      )}
    </span>
  );
}
