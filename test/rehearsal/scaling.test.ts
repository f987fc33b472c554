// Deploy rehearsal, scaling on paper: the GPU service's alarms and step policies exactly as the graph
// configures them, replayed minute by minute against the metrics SQS would publish, through a cold start.
//
// Model (the AWS behaviour it relies on):
// * SQS publishes ApproximateNumberOfMessagesVisible / …NotVisible once a minute for an active queue, with
//   or without consumers (the hourly keep-alive keeps it active).
// * A CloudWatch alarm evaluates every minute over its last `evaluationPeriods` points; missing points
//   count as `treatMissingData` says; metric math FILL(m, 0) turns a missing point into 0.
// * While an alarm is in ALARM, Application Auto Scaling runs its step policy every minute. ExactCapacity
//   sets the capacity; ChangeInCapacity adds, and within the cooldown after a scale-out only the part of a
//   new adjustment that exceeds the last one (AWS's documented step-scaling cooldown rule).
// * A task starts consuming `coldStartMinutes` after it is asked for, then works off `perTaskPerMinute`
//   predictions a minute (the in-flight ones count as backlog until done).
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runSstConfigUnderMocks, type MockRun } from "../../infra/mock-harness.ts";

interface Step {
  metricIntervalLowerBound?: string;
  metricIntervalUpperBound?: string;
  scalingAdjustment: number;
}
interface Policy {
  adjustmentType: "ExactCapacity" | "ChangeInCapacity";
  cooldown: number;
  stepAdjustments: Step[];
}
interface Alarm {
  name: string;
  comparisonOperator: string;
  threshold: number;
  evaluationPeriods: number;
  datapointsToAlarm?: number;
  treatMissingData: string;
  expression: string;
  policy: Policy;
}

let run: MockRun;
let alarms: Alarm[];
let limits: { min: number; max: number };

beforeAll(async () => {
  run = await runSstConfigUnderMocks({ stage: "rehearsal", env: { SST_SECRET_ApiKeys: "k", SST_SECRET_SecretKey: "k" } });
  const policies = new Map(run.byType("aws:appautoscaling/policy:Policy").map((p) => [p.state.arn, p.inputs.stepScalingPolicyConfiguration as Policy]));
  alarms = run.byType("aws:cloudwatch/metricAlarm:MetricAlarm").map((a) => {
    const [action] = a.inputs.alarmActions;
    const policy = policies.get(action);
    if (!policy) throw new Error(`alarm ${a.name} drives no step policy`);
    const expression = a.inputs.metricQueries.find((q: { returnData: boolean }) => q.returnData).expression;
    return { name: a.name, ...a.inputs, expression, policy };
  });
  const target = run.one("aws:appautoscaling/target:Target", "InferenceScaling").inputs;
  limits = { min: target.minCapacity, max: target.maxCapacity };
}, 240_000);
afterAll(async () => run?.close());

const breaches = (a: Alarm, v: number) =>
  ({
    GreaterThanOrEqualToThreshold: v >= a.threshold,
    GreaterThanThreshold: v > a.threshold,
    LessThanThreshold: v < a.threshold,
    LessThanOrEqualToThreshold: v <= a.threshold,
  })[a.comparisonOperator] ?? false;

/** The step whose interval holds (value − threshold): lower bound inclusive above the threshold, upper bound inclusive below. */
function stepFor(p: Policy, a: Alarm, value: number): Step | undefined {
  const d = value - a.threshold;
  return p.stepAdjustments.find((s) => {
    const lo = s.metricIntervalLowerBound === undefined ? -Infinity : Number(s.metricIntervalLowerBound);
    const hi = s.metricIntervalUpperBound === undefined ? Infinity : Number(s.metricIntervalUpperBound);
    return d >= 0 ? d >= lo && d < hi : d > lo && d <= hi;
  });
}

interface Scenario {
  /** Predictions arriving at each minute. */
  arrivals: Record<number, number>;
  minutes: number;
  coldStartMinutes: number;
  perTaskPerMinute: number;
  /** The queue's metrics as SQS publishes them (missing = no point that minute). */
  metricsMissingWhenIdle?: boolean;
}

function replay(s: Scenario, policyOverride?: (p: Policy) => Policy) {
  let waiting = 0;
  let desired = limits.min;
  const starting: number[] = []; // the minute each requested task starts consuming
  let running = limits.min;
  const series: { t: number; backlog: number; desired: number; running: number }[] = [];
  const points: (number | undefined)[] = [];
  const lastScaleOut = new Map<string, { at: number; adjustment: number }>();
  for (let t = 0; t < s.minutes; t++) {
    waiting += s.arrivals[t] ?? 0;
    while (starting.length && starting[0] <= t) {
      starting.shift();
      running++;
    }
    // Tasks work the backlog; a minute's work is in flight (NotVisible) during the minute.
    const capacity = running * s.perTaskPerMinute;
    const inFlight = Math.min(waiting, capacity);
    const backlog = waiting;
    points.push(backlog === 0 && s.metricsMissingWhenIdle ? undefined : backlog);
    waiting -= inFlight;
    for (const a of alarms) {
      const window = points.slice(-a.evaluationPeriods);
      if (window.length < a.evaluationPeriods) continue;
      // FILL(…, 0) in the alarm's expression: a missing point is an empty queue.
      const filled = window.map((v) => (v === undefined && a.expression.includes("FILL(") ? 0 : v));
      const breaching = filled.filter((v) => (v === undefined ? a.treatMissingData === "breaching" : breaches(a, v))).length;
      if (breaching < (a.datapointsToAlarm ?? a.evaluationPeriods)) continue;
      const latest = filled.at(-1) ?? 0;
      const p = policyOverride ? policyOverride(a.policy) : a.policy;
      const step = stepFor(p, a, latest);
      if (!step) continue;
      let next = desired;
      if (p.adjustmentType === "ExactCapacity") next = step.scalingAdjustment;
      else {
        const last = lastScaleOut.get(a.name);
        const inCooldown = last && (t - last.at) * 60 < p.cooldown;
        const add = inCooldown ? Math.max(0, step.scalingAdjustment - last.adjustment) : step.scalingAdjustment;
        next = desired + add;
        if (add > 0) lastScaleOut.set(a.name, { at: t, adjustment: step.scalingAdjustment });
      }
      next = Math.min(limits.max, Math.max(limits.min, next));
      // New tasks start after the cold start; fewer tasks stop (pending ones first).
      const total = running + starting.length;
      for (let i = total; i < next; i++) starting.push(t + s.coldStartMinutes);
      if (next < total) {
        const dropPending = Math.min(starting.length, total - next);
        starting.splice(starting.length - dropPending);
        running = Math.min(running, next);
      }
      desired = next;
    }
    series.push({ t, backlog, desired, running });
  }
  return series;
}

describe("queue-depth scaling, replayed", () => {
  // Idle → a burst while nothing runs (a 5-minute cold start, more arriving during it) → an hour idle.
  const burst: Scenario = { arrivals: { 30: 20, 32: 10 }, minutes: 30 + 5 + 60 + 40, coldStartMinutes: 5, perTaskPerMinute: 6, metricsMissingWhenIdle: true };

  test("the graph has one wake/grow alarm and one idle alarm, both on the queue's backlog", () => {
    expect(alarms.map((a) => a.name).sort()).toEqual(["InferenceQueueBacklog", "InferenceQueueIdleAlarm"]);
    for (const a of alarms) expect(a.expression).toBe("FILL(waiting, 0) + FILL(held, 0)");
  });

  test("from 0 tasks: the first minute with a backlog asks for a task, and never for more than the backlog needs", () => {
    const series = replay(burst);
    const backlogPerTask = Number(alarms.find((a) => a.name === "InferenceQueueBacklog")?.policy.stepAdjustments[0].metricIntervalUpperBound);
    expect(series.slice(0, 30).every((m) => m.desired === 0)).toBe(true);
    expect(series.find((m) => m.t === 30)?.desired).toBeGreaterThanOrEqual(1);
    const peak = Math.max(...series.map((m) => m.backlog));
    for (const m of series) {
      expect(m.desired, `minute ${m.t}`).toBeLessThanOrEqual(Math.ceil(peak / backlogPerTask));
      expect(m.desired).toBeLessThanOrEqual(limits.max);
    }
    // Through the whole cold start the backlog waits on the tasks already asked for: no second wave.
    const during = series.filter((m) => m.t >= 30 && m.t < 35).map((m) => m.desired);
    expect(Math.max(...during)).toBe(Math.min(...during.filter((d) => d > 0)));
  });

  test("the backlog is worked off and, after the idle period, desired capacity returns to 0 and stays there", () => {
    const series = replay(burst);
    const lastBusy = Math.max(...series.filter((m) => m.backlog > 0).map((m) => m.t));
    const idle = alarms.find((a) => a.name === "InferenceQueueIdleAlarm")?.evaluationPeriods ?? NaN;
    expect(lastBusy).toBeLessThan(45);
    const back = series.find((m) => m.t > lastBusy && m.desired === 0)?.t;
    expect(back).toBeDefined();
    expect((back ?? Infinity) - lastBusy).toBeLessThanOrEqual(idle + 1);
    expect(series.filter((m) => m.t >= (back ?? Infinity)).every((m) => m.desired === 0)).toBe(true);
  });

  test("the replay can tell: a '+1 per alarm' policy would overshoot through the same cold start", () => {
    const plusOne = (): Policy => ({ adjustmentType: "ChangeInCapacity", cooldown: 60, stepAdjustments: [{ metricIntervalLowerBound: "0", scalingAdjustment: 1 }] });
    const series = replay(burst, (p) => (p.stepAdjustments[0].metricIntervalUpperBound === "0" ? p : plusOne()));
    expect(Math.max(...series.map((m) => m.desired))).toBe(limits.max);
  });
});
