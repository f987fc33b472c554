// Decides AWS calls against one role's inline policy with @cloud-copilot/iam-simulate, records every decision,
// and says which grants no recorded call used. The request contexts are the ones AWS would send (HeadBucket:
// s3:ListBucket with no s3:prefix; tags on SubmitJob: batch:TagResource with aws:RequestTag/…).
import { runSimulation } from "@cloud-copilot/iam-simulate";
import { MOCK_ACCOUNT, type PolicyStatement } from "../../infra/mock-harness.ts";

export interface Request {
  action: string;
  resource: string;
  context?: Record<string, string | string[]>;
}

export interface Decision extends Request {
  role: string;
  allowed: boolean;
  /** What the code did, e.g. "HEAD /bucket" or "SQS SendMessage". */
  call: string;
}

async function evaluate(role: string, statements: PolicyStatement[], req: Request): Promise<boolean> {
  const result = await runSimulation(
    {
      identityPolicies: [{ name: role, policy: { Version: "2012-10-17", Statement: statements } }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: {
        action: req.action,
        principal: `arn:aws:sts::${MOCK_ACCOUNT}:assumed-role/${role}/rehearsal`,
        resource: { resource: req.resource, accountId: MOCK_ACCOUNT },
        contextVariables: req.context ?? {},
      },
    },
    {},
  );
  if (result.resultType === "error") throw new Error(`iam-simulate: ${result.errors.message} for ${JSON.stringify(req)}`);
  return result.overallResult === "Allowed";
}

export class RoleGate {
  readonly decisions: Decision[] = [];

  constructor(
    readonly role: string,
    readonly statements: PolicyStatement[],
  ) {
    if (statements.length === 0) throw new Error(`role ${role} has no inline policy in the graph`);
  }

  /** Decides every request of one call: the call is allowed only if all of them are. */
  async decide(call: string, ...requests: Request[]): Promise<boolean> {
    let all = true;
    for (const req of requests) {
      const allowed = await evaluate(this.role, this.statements, req);
      this.decisions.push({ ...req, role: this.role, allowed, call });
      all &&= allowed;
    }
    return all;
  }

  denied(): Decision[] {
    return this.decisions.filter((d) => !d.allowed);
  }

  /**
   * Grants no allowed decision needed: each (statement, action, resource) cell of the policy is tried alone
   * against the recorded requests of that action. `ignore` names actions this rehearsal does not drive.
   */
  async unused(ignore: (action: string) => boolean = () => false): Promise<string[]> {
    const out: string[] = [];
    for (const s of this.statements) {
      for (const action of s.Action) {
        if (ignore(action)) continue;
        for (const resource of s.Resource) {
          const cell: PolicyStatement = { ...s, Action: [action], Resource: [resource] };
          const tried = this.decisions.filter((d) => d.allowed && d.action === action);
          let used = false;
          for (const d of tried) {
            if (await evaluate(this.role, [cell], d)) {
              used = true;
              break;
            }
          }
          if (!used) out.push(`${action} on ${resource}${s.Condition ? ` if ${JSON.stringify(s.Condition)}` : ""}`);
        }
      }
    }
    return out;
  }
}
