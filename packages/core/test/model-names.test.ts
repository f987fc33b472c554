/**
 * Model names stay owned (issue 21, claim 4): the first claim of a name writes `models/<name>/owner.json`
 * with If-None-Match: *, so of concurrent claims exactly one wins; every publish checks the owner again; names
 * published before owner records existed belong to the tenant of their latest version; the operator's names
 * (tenant null: demos, `ganserve import`) are not a tenant's to take, nor a tenant's the operator's.
 * Runs against the embedded store on a temporary folder.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PerKeySerial } from "../src/limits/per-key-serial.ts";
import { ModelRegistry, type PublishInput } from "../src/models/registry.ts";
import { modelKeys } from "../src/storage/keys.ts";
import type { Storage } from "../src/storage/storage.ts";
import { startEmbeddedStore, type EmbeddedStore } from "./helpers/embedded-store.ts";

let embedded: EmbeddedStore;
let storage: Storage;
let registry: ModelRegistry;

const quiet = { info() {}, warn() {}, error() {}, debug() {} } as never;

beforeAll(async () => {
  embedded = await startEmbeddedStore({ name: "names", bucket: "names", logger: quiet, maxAttempts: 1 });
  storage = embedded.storage;
  registry = new ModelRegistry(storage, 0);
});
afterAll(() => embedded?.close());

const input = (name: string, tenant?: string): PublishInput => ({
  name,
  family: "stylegan2",
  config: { z_dim: 4 },
  weights: new Uint8Array([1, 2, 3, 4]),
  dtype: "float32",
  extra: tenant === undefined ? {} : { tenant },
});
const taken = { code: "conflict", status: 409, details: { reason: "model_name_taken" } };

describe("Storage.putIfAbsent", () => {
  it("writes once; a second write to the key returns false and changes nothing", async () => {
    expect(await storage.putIfAbsent("x/once.json", '{"n":1}')).toBe(true);
    expect(await storage.putIfAbsent("x/once.json", '{"n":2}')).toBe(false);
    expect(await storage.getText("x/once.json")).toBe('{"n":1}');
  });
});

describe("model name ownership", () => {
  it("the first claim owns the name; another tenant gets 409 model_name_taken, the owner can claim again", async () => {
    await registry.claim("first-come", "alice");
    expect(await registry.owner("first-come")).toBe("alice");
    await expect(registry.claim("first-come", "bob")).rejects.toMatchObject(taken);
    await expect(registry.claim("first-come", undefined)).rejects.toMatchObject(taken);
    await registry.claim("first-come", "alice");
    expect(await storage.getJson(modelKeys.owner("first-come"))).toMatchObject({ name: "first-come", tenant: "alice" });
  });

  it("of 12 tenants claiming one new name at once exactly one wins, and the record names that one", async () => {
    const tenants = Array.from({ length: 12 }, (_, i) => `t${i}`);
    const results = await Promise.allSettled(tenants.map((t) => registry.claim("raced-name", t)));
    const won = tenants.filter((_, i) => results[i].status === "fulfilled");
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toMatchObject(taken);
    expect(await registry.owner("raced-name")).toBe(won[0]);
  });

  it("publish checks the owner: a tenant that does not own the name publishes nothing", async () => {
    await registry.claim("alice-only", "alice");
    await expect(registry.publish(input("alice-only", "bob"))).rejects.toMatchObject(taken);
    expect(await storage.list(modelKeys.prefix("alice-only"))).toEqual([expect.objectContaining({ key: modelKeys.owner("alice-only") })]);
    const v1 = await registry.publish(input("alice-only", "alice"));
    expect(v1.version).toBe("v1");
    await expect(registry.publish(input("alice-only", "bob"))).rejects.toMatchObject(taken);
    expect(await registry.versions("alice-only")).toEqual(["v1"]);
  });

  it("a publish of a name nobody claimed claims it for the publisher", async () => {
    await registry.publish(input("published-first", "carol"));
    expect(await storage.getJson(modelKeys.owner("published-first"))).toMatchObject({ tenant: "carol" });
    await expect(registry.claim("published-first", "dave")).rejects.toMatchObject(taken);
  });

  it("operator names (no tenant: demos, imports) are not a tenant's, and a tenant's name is not the operator's", async () => {
    await registry.publish(input("shared-demo"));
    expect(await registry.owner("shared-demo")).toBeNull();
    await expect(registry.claim("shared-demo", "alice")).rejects.toMatchObject(taken);
    expect((await registry.publish(input("shared-demo"))).version).toBe("v2");
    await registry.claim("tenant-name", "alice");
    await expect(registry.publish(input("tenant-name"))).rejects.toMatchObject(taken);
  });

  it("a name published before owner records existed belongs to the tenant of its latest version", async () => {
    // As an older release left it: a version record with a tenant, no owner.json.
    const legacy = await registry.publish(input("legacy-name", "erin"));
    await storage.delete(modelKeys.owner("legacy-name"));
    expect(legacy.tenant).toBe("erin");
    expect(await registry.owner("legacy-name")).toBe("erin");
    await expect(registry.claim("legacy-name", "frank")).rejects.toMatchObject(taken);
    expect(await storage.exists(modelKeys.owner("legacy-name"))).toBe(false);
    await registry.claim("legacy-name", "erin");
    expect(await storage.getJson(modelKeys.owner("legacy-name"))).toMatchObject({ tenant: "erin" });
    // A legacy shared model (no tenant on its record) is the operator's.
    await registry.publish(input("legacy-shared"));
    await storage.delete(modelKeys.owner("legacy-shared"));
    await expect(registry.claim("legacy-shared", "erin")).rejects.toMatchObject(taken);
  });

  it("an unreadable owner record refuses every claim instead of guessing an owner", async () => {
    await storage.put(modelKeys.owner("torn-owner"), "{not json");
    await expect(registry.claim("torn-owner", "alice")).rejects.toThrow();
    await storage.put(modelKeys.owner("odd-owner"), '{"tenant":3}');
    await expect(registry.claim("odd-owner", "alice")).rejects.toMatchObject({ code: "internal" });
  });

  it("a claimed but unpublished name is not listed and has no versions", async () => {
    await registry.claim("reserved-only", "alice");
    expect(await registry.versions("reserved-only")).toEqual([]);
    expect((await registry.list()).map((m) => m.name)).not.toContain("reserved-only");
    await expect(registry.resolve("reserved-only", "latest", "alice")).rejects.toMatchObject({ code: "model_not_found" });
  });
});

describe("PerKeySerial", () => {
  it("runs one task at a time per key, keys in parallel, and a failure does not block the next", async () => {
    const serial = new PerKeySerial();
    let inA = 0;
    let maxA = 0;
    const order: string[] = [];
    const task = (key: string, i: number, fail = false) => () =>
      (async () => {
        if (key === "a") maxA = Math.max(maxA, ++inA);
        await new Promise((r) => setTimeout(r, 5));
        order.push(`${key}${i}`);
        if (key === "a") inA--;
        if (fail) throw new Error("boom");
        return i;
      })();
    const runs = [
      serial.run("a", task("a", 1)),
      serial.run("a", task("a", 2, true)),
      serial.run("b", task("b", 1)),
      serial.run("a", task("a", 3)),
    ];
    const settled = await Promise.allSettled(runs);
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "fulfilled", "fulfilled"]);
    expect(maxA).toBe(1);
    expect(order.filter((o) => o.startsWith("a"))).toEqual(["a1", "a2", "a3"]);
    // b did not wait behind the whole a chain.
    expect(order.indexOf("b1")).toBeLessThan(order.indexOf("a3"));
  });
});
