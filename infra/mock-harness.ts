// Test-only: runs the real sst.config.ts offline under Pulumi mocks (not imported by sst.config.ts).
//
// It bundles sst.config.ts the way the SST CLI does (esbuild, the platform's run shim, the `aws`/`sst` globals),
// answers the two CLI RPCs SST components make (Provider.Aws.Bootstrap, Runtime.Build) from a tiny local HTTP
// server, and records every resource registration and provider-function call. Everything it loads comes from
// .sst/platform, so the mocks and the bundle share one @pulumi/pulumi instance.
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

export const ROOT = path.resolve(import.meta.dirname, "..");
export const PLATFORM = path.join(ROOT, ".sst", "platform");

export const MOCK_ACCOUNT = "123456789012";
export const MOCK_REGION = "us-east-1";
export const MOCK_GPU_AMI = "ami-0a1b2c3d4e5f6al2023gpu";

export interface Registered {
  type: string;
  name: string;
  inputs: any;
  state: any;
}
export interface Call {
  token: string;
  inputs: any;
}
export interface RpcCall {
  method: string;
  args: any;
}
export interface MockRun {
  resources: Registered[];
  calls: Call[];
  rpcCalls: RpcCall[];
  outputs: any;
  /** The `$config(...)` object of sst.config.ts, so app() can be evaluated per stage. */
  config: any;
  byType(type: string): Registered[];
  /** The single resource of `type` whose logical name is `name` (SST prefixes child names with the parent's). */
  one(type: string, name: string): Registered;
  /** Stops the fake CLI server and restores process.env. */
  close(): Promise<void>;
}

export function assertPlatformInstalled() {
  if (!fs.existsSync(path.join(PLATFORM, "src", "auto", "run.ts")) || !fs.existsSync(path.join(PLATFORM, "node_modules", "@pulumi", "aws"))) {
    throw new Error(
      "The SST platform (.sst/platform) is not installed, so the infrastructure cannot be evaluated. " +
        "Run `npm run sst:install` (offline-safe, ~45 s) and re-run the tests.",
    );
  }
}

// Realistic ARNs make the IAM assertions meaningful (bucket ARN + prefix, queue and job-definition ARNs).
function arnFor(type: string, name: string, inputs: any): string {
  const acct = MOCK_ACCOUNT, region = MOCK_REGION;
  switch (type) {
    case "aws:s3/bucket:Bucket":
      return `arn:aws:s3:::${inputs.bucket ?? name.toLowerCase()}`;
    case "aws:batch/jobQueue:JobQueue":
      return `arn:aws:batch:${region}:${acct}:job-queue/${inputs.name ?? name}`;
    case "aws:batch/jobDefinition:JobDefinition":
      return `arn:aws:batch:${region}:${acct}:job-definition/${inputs.name ?? name}:1`;
    case "aws:batch/computeEnvironment:ComputeEnvironment":
      return `arn:aws:batch:${region}:${acct}:compute-environment/${name}`;
    case "aws:iam/role:Role":
      return `arn:aws:iam::${acct}:role/${name}`;
    case "aws:iam/instanceProfile:InstanceProfile":
      return `arn:aws:iam::${acct}:instance-profile/${name}`;
    case "aws:lb/loadBalancer:LoadBalancer":
      return `arn:aws:elasticloadbalancing:${region}:${acct}:loadbalancer/app/${name}/50dc6c495c0c9188`;
    case "aws:lb/targetGroup:TargetGroup":
      return `arn:aws:elasticloadbalancing:${region}:${acct}:targetgroup/${name}/73e2d6bc24d8a067`;
    case "aws:lb/listener:Listener":
      return `arn:aws:elasticloadbalancing:${region}:${acct}:listener/app/${name}/50dc6c495c0c9188/f2f7dc8efc522ab2`;
    case "aws:ecr/repository:Repository":
      return `arn:aws:ecr:${region}:${acct}:repository/${name.toLowerCase()}`;
    case "aws:ssm/parameter:Parameter":
      return `arn:aws:ssm:${region}:${acct}:parameter${inputs.name ?? `/${name}`}`;
    case "aws:sqs/queue:Queue":
      return `arn:aws:sqs:${region}:${acct}:${name}`;
    case "aws:appautoscaling/policy:Policy":
      return `arn:aws:autoscaling:${region}:${acct}:scalingPolicy:${name}`;
    case "aws:cloudwatch/logGroup:LogGroup":
      return `arn:aws:logs:${region}:${acct}:log-group:${inputs.name ?? name}`;
    default:
      return `arn:aws:mock:${region}:${acct}:${name}`;
  }
}

function renderPolicyDocument(inputs: any) {
  const statements = (inputs.statements ?? []).map((st: any) => ({
    Effect: st.effect ?? "Allow",
    Action: st.actions,
    Resource: st.resources,
    ...(st.principals ? { Principal: Object.fromEntries(st.principals.map((p: any) => [p.type, p.identifiers])) } : {}),
    ...(st.conditions?.length
      ? { Condition: Object.fromEntries(st.conditions.map((c: any) => [c.test, { [c.variable]: c.values }])) }
      : {}),
  }));
  return JSON.stringify({ Version: "2012-10-17", Statement: statements });
}

export async function runSstConfigUnderMocks(
  opts: {
    stage?: string;
    env?: Record<string, string>;
    /** Origin of the SQS queue URLs the graph hands out (the SDK sends each call to its queue's URL). */
    sqsOrigin?: string;
  } = {},
): Promise<MockRun> {
  assertPlatformInstalled();
  const stage = opts.stage ?? "test";
  const preq = createRequire(path.join(PLATFORM, "package.json"));
  const pulumi = preq("@pulumi/pulumi");
  const esbuild = preq("esbuild");

  const resources: Registered[] = [];
  const calls: Call[] = [];
  const rpcCalls: RpcCall[] = [];

  const out = fs.mkdtempSync(path.join(os.tmpdir(), "ganserve-fn-"));
  fs.writeFileSync(path.join(out, "index.mjs"), "export const handler = async () => ({});\n");
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const { method, params } = JSON.parse(body);
      if (process.env.GANSERVE_HARNESS_DEBUG) console.error("rpc", method, Date.now());
      rpcCalls.push({ method, args: params?.[0] });
      const results: Record<string, unknown> = {
        "Provider.Aws.Bootstrap": { asset: "sst-asset-test", assetEcrRegistryId: MOCK_ACCOUNT, assetEcrUrl: "sst-asset-ecr", state: "sst-state" },
        "Runtime.Build": { handler: "index.handler", out, errors: [], sourcemaps: [] },
      };
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ result: results[method] ?? {}, error: null, id: 0 }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const savedEnv = { ...process.env };
  const addr = server.address() as { port: number };
  process.env.SST_SERVER = `http://127.0.0.1:${addr.port}`;
  Object.assign(process.env, opts.env ?? {});

  await pulumi.runtime.setMocks(
    {
      newResource: (a: any) => {
        const inputs = a.inputs ?? {};
        const state: any = { ...inputs, arn: arnFor(a.type, a.name, inputs), name: inputs.name ?? a.name, id: `${a.name}-id` };
        switch (a.type) {
          case "aws:s3/bucket:Bucket":
            state.bucket = inputs.bucket ?? a.name.toLowerCase();
            break;
          case "aws:lb/loadBalancer:LoadBalancer":
            state.dnsName = `internal-${a.name.toLowerCase()}.${MOCK_REGION}.elb.amazonaws.com`;
            state.arnSuffix = `app/${a.name}/50dc6c495c0c9188`;
            break;
          case "aws:lb/targetGroup:TargetGroup":
            state.arnSuffix = `targetgroup/${a.name}/73e2d6bc24d8a067`;
            break;
          case "aws:ecr/repository:Repository":
            state.repositoryUrl = `${MOCK_ACCOUNT}.dkr.ecr.${MOCK_REGION}.amazonaws.com/${a.name.toLowerCase()}`;
            state.registryId = MOCK_ACCOUNT;
            break;
          case "docker-build:index:Image": {
            // The provider would build and push; the mock returns the digest-pinned ref it would report.
            const tag = String(inputs.tags?.[0] ?? a.name);
            state.digest = `sha256:${"ab".repeat(32)}`;
            state.ref = `${tag.split(":")[0]}@${state.digest}`;
            break;
          }
          case "aws:ec2/launchTemplate:LaunchTemplate":
            state.latestVersion = 1;
            break;
          case "aws:apigatewayv2/api:Api":
            state.apiEndpoint = `https://${a.name.toLowerCase()}.execute-api.${MOCK_REGION}.amazonaws.com`;
            state.executionArn = `arn:aws:execute-api:${MOCK_REGION}:${MOCK_ACCOUNT}:${a.name}`;
            break;
          case "random:index/randomBytes:RandomBytes": {
            // SST's function encryption key (SST_KEY): real bytes, so resource.enc can be made and opened.
            const bytes = crypto.randomBytes(inputs.length ?? 32);
            state.base64 = bytes.toString("base64");
            state.hex = bytes.toString("hex");
            break;
          }
          case "aws:batch/jobDefinition:JobDefinition":
            state.arnPrefix = state.arn.replace(/:\d+$/, "");
            break;
          case "aws:sqs/queue:Queue":
            state.url = `${opts.sqsOrigin ?? `https://sqs.${MOCK_REGION}.amazonaws.com`}/${MOCK_ACCOUNT}/${a.name}`;
            break;
          case "aws:lambda/functionUrl:FunctionUrl":
            state.functionUrl = "https://fn.lambda-url.test/";
            break;
        }
        resources.push({ type: a.type, name: a.name, inputs, state });
        return { id: `${a.name}-id`, state };
      },
      call: (a: any) => {
        calls.push({ token: a.token, inputs: a.inputs });
        switch (a.token) {
          case "aws:index/getRegion:getRegion":
            return { name: MOCK_REGION, region: MOCK_REGION, id: MOCK_REGION };
          case "aws:index/getCallerIdentity:getCallerIdentity":
            return { accountId: MOCK_ACCOUNT, arn: `arn:aws:iam::${MOCK_ACCOUNT}:user/test`, userId: "test" };
          case "aws:index/getPartition:getPartition":
            return { partition: "aws", dnsSuffix: "amazonaws.com" };
          case "aws:index/getAvailabilityZones:getAvailabilityZones":
            return { names: ["us-east-1a", "us-east-1b"], zoneIds: ["use1-az1", "use1-az2"] };
          case "aws:ssm/getParameter:getParameter":
            // Only the AL2023 GPU parameter yields the GPU AMI, so a wrong parameter shows up in the launch template.
            return {
              ...a.inputs,
              type: "String",
              value: a.inputs.name === "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id" ? MOCK_GPU_AMI : "ami-not-the-gpu-al2023-one",
            };
          case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return { ...a.inputs, userName: "AWS", password: "mock-token", proxyEndpoint: `https://${MOCK_ACCOUNT}.dkr.ecr.${MOCK_REGION}.amazonaws.com` };
          case "aws:ec2/getAmi:getAmi":
            return { ...a.inputs, id: "ami-nat", imageId: "ami-nat" };
          case "aws:iam/getPolicyDocument:getPolicyDocument":
            // SST reads `.statements` back from the result: echo the inputs and render the JSON.
            return { ...a.inputs, json: renderPolicyDocument(a.inputs) };
          default:
            return a.inputs;
        }
      },
    },
    "ganserve",
    stage,
    false,
  );

  const app = { name: "ganserve", stage, removal: "remove", protect: false, home: "aws", providers: { aws: { region: MOCK_REGION } } };
  const cli = { command: "deploy", dev: false, paths: { home: os.tmpdir(), root: ROOT, work: path.join(ROOT, ".sst"), platform: PLATFORM }, state: { version: {} } };
  const outfile = path.join(PLATFORM, `sst.config.test.${process.pid}.${Date.now()}.mjs`);
  let outputs: any, config: any;
  const deadline = Date.now() + 60_000;
  try {
    await esbuild.build({
      logLevel: "error",
      format: "esm",
      platform: "node",
      bundle: true,
      write: true,
      outfile,
      mainFields: ["module", "main"],
      stdin: {
        contents: `import { run } from ${JSON.stringify(path.join(PLATFORM, "src/auto/run.ts"))};\nimport mod from ${JSON.stringify(path.join(ROOT, "sst.config.ts"))};\nexport { run, mod };`,
        resolveDir: ROOT,
        sourcefile: "eval.ts",
        loader: "ts",
      },
      banner: { js: `import { createRequire as __cr } from 'module';\nconst require = __cr(import.meta.url);` },
      nodePaths: [path.join(PLATFORM, "node_modules")],
      external: ["@pulumi/*", "@pulumiverse/*", "@sst-provider/*", "@aws-sdk/*", "esbuild", "archiver", "glob", "undici", "vite"],
      define: { $app: JSON.stringify(app), $cli: JSON.stringify(cli), $dev: "false" },
      inject: [path.join(PLATFORM, "src/shim/run.js")],
      plugins: [
        {
          name: "sst-globals",
          setup(b: any) {
            // The CLI prepends these imports to every user file; infra/*.ts relies on the `aws` and `sst` globals.
            b.onLoad({ filter: /\.(ts|js)$/ }, (args: any) => {
              if (args.path.includes(`${path.sep}.sst${path.sep}`) || args.path.includes("node_modules")) return undefined;
              const globals = `import * as aws from "@pulumi/aws";\nimport * as sst from ${JSON.stringify(path.join(PLATFORM, "src/components"))};\n`;
              return { contents: globals + fs.readFileSync(args.path, "utf8"), loader: "ts" };
            });
          },
        },
      ],
    });
    const m = await import(/* @vite-ignore */ pathToFileURL(outfile).href);
    config = m.mod;
    const stackOutputs = await pulumi.runtime.runInPulumiStack(() => m.run(m.mod.run));
    // Registrations made inside apply() callbacks (SST's Function after its Runtime.Build RPC, for one) land
    // later; on a loaded machine much later. Wait until nothing new has registered for a second.
    for (let seen = -1, quiet = 0; quiet < 4 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 250));
      quiet = resources.length === seen ? quiet + 1 : 0;
      seen = resources.length;
    }
    outputs = await new Promise((r) => pulumi.output(stackOutputs).apply(r));
  } finally {
    fs.rmSync(outfile, { force: true });
  }
  // Keep the fake CLI up until the caller is done: SST components can still be mid-RPC after the stack resolves.
  const close = async () => {
    await new Promise((r) => setTimeout(r, 200));
    server.closeAllConnections();
    await new Promise((r) => server.close(() => r(undefined)));
    fs.rmSync(out, { recursive: true, force: true });
    process.env = savedEnv;
  };

  const byType = (type: string) => resources.filter((r) => r.type === type);
  const one = (type: string, name: string) => {
    const found = byType(type).filter((r) => r.name === name || r.name.endsWith(name));
    if (found.length !== 1) throw new Error(`expected exactly one ${type} named ${name}, found ${found.map((r) => r.name).join(", ") || "none"}`);
    return found[0];
  };
  return { resources, calls, rpcCalls, outputs, config, byType, one, close };
}

// ---- what each runtime gets from the graph (the deploy rehearsal, test/rehearsal/) ----------------------

export interface PolicyStatement {
  Effect: "Allow" | "Deny";
  Action: string[];
  Resource: string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);
const parsed = (v: unknown) => (typeof v === "string" ? JSON.parse(v) : v);

/** Inline statements per role name: `aws.iam.RolePolicy`s plus `Role.inlinePolicies` (where SST puts link grants). */
export function rolePolicies(run: MockRun): Map<string, PolicyStatement[]> {
  const out = new Map<string, PolicyStatement[]>();
  const add = (role: string, doc: unknown) => {
    const statements = out.get(role) ?? [];
    for (const s of parsed(doc).Statement) {
      statements.push({ Effect: s.Effect ?? "Allow", Action: list(s.Action), Resource: list(s.Resource), ...(s.Condition ? { Condition: s.Condition } : {}) });
    }
    out.set(role, statements);
  };
  for (const rp of run.byType("aws:iam/rolePolicy:RolePolicy")) add(String(rp.inputs.role).replace(/-id$/, ""), rp.inputs.policy);
  for (const r of run.byType("aws:iam/role:Role")) for (const ip of r.inputs.inlinePolicies ?? []) add(r.name, ip.policy);
  return out;
}

/** The role name behind an ARN the graph hands out (`arn:aws:iam::<acct>:role/<name>`). */
export const roleName = (arn: string) => arn.replace(/^arn:aws:iam::\d+:role\//, "");

export interface ContainerRuntime {
  role: string;
  /** environment plus the secrets ECS/Batch would inject (SSM parameter values resolved from the graph). */
  env: Record<string, string>;
  image: string;
  definition: any;
}

function secretValue(run: MockRun, arn: string): string {
  const param = run.byType("aws:ssm/parameter:Parameter").find((p) => p.state.arn === arn);
  if (!param) throw new Error(`no SSM parameter ${arn} in the graph`);
  const v = param.inputs.value;
  return String(v && typeof v === "object" && "value" in v ? v.value : v);
}

function containerRuntime(run: MockRun, def: any, roleArn: string): ContainerRuntime {
  const env: Record<string, string> = {};
  for (const e of def.environment ?? []) env[e.name] = e.value;
  for (const s of def.secrets ?? []) env[s.name] = secretValue(run, s.valueFrom);
  return { role: roleName(roleArn), env, image: def.image, definition: def };
}

/** The GPU worker: its task definition's only container, with the task role. */
export function gpuTask(run: MockRun): ContainerRuntime {
  const td = run.one("aws:ecs/taskDefinition:TaskDefinition", "InferenceTask").inputs;
  return containerRuntime(run, parsed(td.containerDefinitions)[0], td.taskRoleArn);
}

/** The fine-tune worker: the Batch job definition's container, with the job role. */
export function fineTuneJob(run: MockRun): ContainerRuntime {
  const props = parsed(run.one("aws:batch/jobDefinition:JobDefinition", "FineTuneJob").inputs.containerProperties);
  return containerRuntime(run, props, props.jobRoleArn);
}

export interface LambdaRuntime {
  role: string;
  /** Exactly the function's environment variables (SST_KEY, SST_KEY_FILE, SST_RESOURCE_App, …). */
  env: Record<string, string>;
  /** What the CLI would encrypt into resource.enc: each link's properties (and type), by name. */
  links: Record<string, Record<string, unknown>>;
  handler: string;
  /** SST's `nodejs` properties of the function (install, …). */
  nodejs: { install?: Record<string, string> };
  timeoutSeconds: number;
}

export function apiLambda(run: MockRun): LambdaRuntime {
  const fns = run.byType("aws:lambda/function:Function");
  if (fns.length !== 1) throw new Error(`expected one Lambda function, found ${fns.length}`);
  const builds = run.rpcCalls.filter((c) => c.method === "Runtime.Build");
  if (builds.length !== 1) throw new Error(`expected one Runtime.Build, found ${builds.length}`);
  const fn = fns[0].inputs;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(fn.environment?.variables ?? {})) env[k] = String(v && typeof v === "object" && "value" in (v as object) ? (v as { value: unknown }).value : v);
  return {
    role: roleName(fn.role),
    env,
    links: builds[0].args.links,
    handler: builds[0].args.handler,
    nodejs: builds[0].args.properties ?? {},
    timeoutSeconds: fn.timeout,
  };
}
