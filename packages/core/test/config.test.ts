import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadSettings, SettingsError, settingsTable } from "../src/config.ts";

describe("settings", () => {
  it("has defaults that need nothing set", () => {
    const s = loadSettings({});
    expect(s.PORT).toBe(3000);
    expect(s.GANSERVE_DATA_DIR).toBe("./.ganserve");
    expect(s.GANSERVE_S3_ENDPOINT).toBeUndefined();
  });

  it("names the bad variable", () => {
    expect(() => loadSettings({ PORT: "abc" })).toThrow(SettingsError);
    expect(() => loadSettings({ PORT: "abc" })).toThrow(/PORT/);
    expect(() => loadSettings({ GANSERVE_S3_BUCKET: "Not_A_Bucket" })).toThrow(/GANSERVE_S3_BUCKET/);
    expect(() => loadSettings({ GANSERVE_BACKEND: "gpu" })).toThrow(/GANSERVE_BACKEND/);
  });

  it("prefers SST links when they are present", () => {
    const s = loadSettings({
      SST_RESOURCE_App: '{"name":"ganserve","stage":"prod"}',
      SST_RESOURCE_Storage: '{"name":"ganserve-prod-data","type":"sst.sst.Linkable"}',
      SST_RESOURCE_ApiKeys: '{"value":"k1,k2","type":"sst.sst.Secret"}',
    });
    expect(s.GANSERVE_S3_BUCKET).toBe("ganserve-prod-data");
    expect(s.GANSERVE_EMBEDDED_S3).toBe(false);
    expect(s.GANSERVE_API_KEYS).toBe("k1,k2");
    expect(s.GANSERVE_PRODUCTION).toBe(true);
  });

  it("is documented in the README exactly as the schema says", () => {
    const readme = fs.readFileSync(path.resolve(import.meta.dirname, "../../../README.md"), "utf8");
    const table = /<!-- config:start -->\n([\s\S]*?)\n<!-- config:end -->/.exec(readme)?.[1];
    expect(table).toBe(settingsTable());
  });
});
