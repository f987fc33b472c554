/**
 * junyanz `lambda_rule` in steps instead of epochs: constant until `decayStart`, then linear towards zero, with
 * upstream's +1 in the denominator so the last step still moves.
 */
export function linearDecayFactor(step: number, totalSteps: number, decayStart: number): number {
  if (step < decayStart) return 1;
  return 1 - (step - decayStart) / (totalSteps - decayStart + 1);
}
