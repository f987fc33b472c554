import { SubmitJobCommand } from "@aws-sdk/client-batch";
import { describe, expect, it } from "vitest";
import { BatchLauncher, submitJobInput } from "../src/jobs/launcher.ts";
import { checkWebhookTarget, isPrivateAddress, sign, verify } from "../src/jobs/webhook.ts";

describe("AWS Batch launcher", () => {
  const opts = {
    jobQueue: "arn:aws:batch:us-east-1:123456789012:job-queue/ganserve-finetune",
    jobDefinition: "arn:aws:batch:us-east-1:123456789012:job-definition/ganserve-finetune:3",
  };

  it("builds a SubmitJob request that names the queue, the definition and the job", () => {
    expect(submitJobInput("ft_abcDEF0123456789abcd", { ...opts, environment: { GANSERVE_LOG_LEVEL: "debug" } })).toEqual({
      jobName: "ganserve-ft_abcDEF0123456789abcd",
      jobQueue: opts.jobQueue,
      jobDefinition: opts.jobDefinition,
      containerOverrides: {
        environment: [
          { name: "GANSERVE_JOB_ID", value: "ft_abcDEF0123456789abcd" },
          { name: "GANSERVE_LOG_LEVEL", value: "debug" },
        ],
      },
      tags: { "ganserve:job": "ft_abcDEF0123456789abcd" },
      propagateTags: true,
    });
  });

  it("sends exactly that request through the Batch client", async () => {
    const sent: unknown[] = [];
    const launcher = new BatchLauncher({ ...opts, client: {
        send: async (cmd: unknown) => {
          sent.push(cmd);
          return {};
        },
      } as never });
    await launcher.launch("ft_abcDEF0123456789abcd");
    expect(sent).toHaveLength(1);
    expect(sent[0]).toBeInstanceOf(SubmitJobCommand);
    expect((sent[0] as SubmitJobCommand).input).toEqual(submitJobInput("ft_abcDEF0123456789abcd", opts));
    expect(await launcher.adopt()).toEqual([]);
  });
});

describe("webhooks", () => {
  it("signs so that only the right secret, body and a fresh timestamp verify", () => {
    const header = sign("s3cret-key-0123456789", '{"a":1}', 1_700_000_000);
    expect(verify("s3cret-key-0123456789", '{"a":1}', header, 300, 1_700_000_100)).toBe(true);
    expect(verify("s3cret-key-0123456789", '{"a":2}', header, 300, 1_700_000_100)).toBe(false);
    expect(verify("other-key-0123456789", '{"a":1}', header, 300, 1_700_000_100)).toBe(false);
    expect(verify("s3cret-key-0123456789", '{"a":1}', header, 300, 1_700_001_000)).toBe(false);
  });

  it("classifies private, loopback and link-local addresses", () => {
    for (const ip of ["10.1.2.3", "127.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "0.0.0.0", "::1", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "100.64.0.1"])
      expect(isPrivateAddress(ip), ip).toBe(true);
    for (const ip of ["8.8.8.8", "172.32.0.1", "1.1.1.1", "2606:4700::1111"]) expect(isPrivateAddress(ip), ip).toBe(false);
  });

  it("refuses plain http and internal targets in production, allows them locally", async () => {
    await expect(checkWebhookTarget("http://example.com/hook", true)).rejects.toMatchObject({ code: "validation_failed" });
    await expect(checkWebhookTarget("https://127.0.0.1/hook", true)).rejects.toMatchObject({ code: "validation_failed" });
    await expect(checkWebhookTarget("https://[::1]/hook", true)).rejects.toMatchObject({ code: "validation_failed" });
    await expect(checkWebhookTarget("https://169.254.169.254/latest/meta-data", true)).rejects.toMatchObject({ code: "validation_failed" });
    await expect(checkWebhookTarget("ftp://example.com/x", false)).rejects.toMatchObject({ code: "validation_failed" });
    await expect(checkWebhookTarget("http://127.0.0.1:9999/hook", false)).resolves.toBeUndefined();
  });
});
