// The same sst.config.ts evaluated with non-default knobs (a warm floor of 1 task, no warm pool, Spot, g6;
// see docs/deploy.md), plus the validation of those knobs.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { runSstConfigUnderMocks, type MockRun } from "../infra/mock-harness.ts";
import { loadConfig } from "../infra/config.ts";

let run: MockRun;
beforeAll(async () => {
  run = await runSstConfigUnderMocks({
    env: {
      SST_SECRET_ApiKeys: "k",
      SST_SECRET_SecretKey: "k",
      GANSERVE_GPU_MIN_TASKS: "1",
      GANSERVE_GPU_WARM_POOL: "0",
      GANSERVE_GPU_IDLE_MINUTES: "30",
      GANSERVE_GPU_MAX_TASKS: "2",
      GANSERVE_GPU_INSTANCE_TYPE: "g6.xlarge",
      GANSERVE_FT_SPOT: "1",
      GANSERVE_FT_INSTANCE_TYPES: "g6.xlarge,g6.2xlarge",
      GANSERVE_FT_MAX_VCPUS: "8",
    },
  });
}, 180_000);
afterAll(async () => run?.close());

describe("knobs", () => {
  test("min tasks, max tasks and the warm pool follow their settings", () => {
    expect(run.one("aws:ecs/service:Service", "InferenceService").inputs.desiredCount).toBe(1);
    expect(run.one("aws:appautoscaling/target:Target", "InferenceScaling").inputs).toMatchObject({ minCapacity: 1, maxCapacity: 2 });
    expect(run.one("aws:autoscaling/group:Group", "GpuAsg").inputs).toMatchObject({ minSize: 0, maxSize: 3 });
    // GANSERVE_GPU_WARM_POOL=0: no warm pool at all (not an empty one).
    expect(run.one("aws:autoscaling/group:Group", "GpuAsg").inputs.warmPool).toBeUndefined();
  });

  test("the idle policy returns to min tasks after the configured idle minutes", () => {
    const idle = run.one("aws:cloudwatch/metricAlarm:MetricAlarm", "InferenceQueueIdleAlarm").inputs;
    expect(idle).toMatchObject({ evaluationPeriods: 30, datapointsToAlarm: 30, treatMissingData: "breaching" });
    const policy = run.one("aws:appautoscaling/policy:Policy", "InferenceQueueIdle").inputs.stepScalingPolicyConfiguration;
    expect(policy.stepAdjustments).toEqual([{ metricIntervalUpperBound: "0", scalingAdjustment: 1 }]);
  });

  test("instance type and Batch Spot knobs flow through", () => {
    expect(run.one("aws:ec2/launchTemplate:LaunchTemplate", "GpuLaunchTemplate").inputs.instanceType).toBe("g6.xlarge");
    const cr = run.byType("aws:batch/computeEnvironment:ComputeEnvironment")[0].inputs.computeResources;
    expect(cr).toMatchObject({
      type: "SPOT",
      allocationStrategy: "SPOT_PRICE_CAPACITY_OPTIMIZED",
      instanceTypes: ["g6.xlarge", "g6.2xlarge"],
      minVcpus: 0,
      maxVcpus: 8,
      ec2Configurations: [{ imageType: "ECS_AL2023_NVIDIA" }],
    });
  });
});

describe("config validation", () => {
  test("defaults", () => {
    const c = loadConfig({});
    expect(c.inference).toMatchObject({ instanceType: "g5.xlarge", minTasks: 0, maxTasks: 4, warmPoolSize: 1, idleMinutes: 15 });
    expect(c.fineTune).toMatchObject({ instanceTypes: ["g5.xlarge", "g5.2xlarge"], maxVcpus: 16, spot: false });
    expect(c.storage.outputsTtlDays).toBe(7);
  });

  test("rejects non-GPU instances and impossible bounds", () => {
    expect(() => loadConfig({ GANSERVE_GPU_INSTANCE_TYPE: "m5.xlarge" })).toThrow(/GPU instance type/);
    expect(() => loadConfig({ GANSERVE_FT_INSTANCE_TYPES: "g5.xlarge,c6i.large" })).toThrow(/GPU instance type/);
    expect(() => loadConfig({ GANSERVE_GPU_MIN_TASKS: "3", GANSERVE_GPU_MAX_TASKS: "2" })).toThrow(/MAX_TASKS/);
    expect(() => loadConfig({ GANSERVE_GPU_MIN_TASKS: "-1" })).toThrow(/>= 0/);
    expect(() => loadConfig({ GANSERVE_FT_MAX_VCPUS: "2" })).toThrow(/cannot fit/);
    expect(() => loadConfig({ GANSERVE_NAT: "none" })).toThrow(/GANSERVE_NAT/);
  });
});
