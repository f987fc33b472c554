// Small IAM helpers shared by the GPU stacks. Policies are written inline and scoped by hand because the
// AWS-managed task policies grant Resource "*" on ECR and CloudWatch Logs.

export interface Statement {
  Effect?: "Allow" | "Deny";
  Action: string[];
  Resource: $util.Input<$util.Input<string>[]>;
  Condition?: Record<string, Record<string, string | string[]>>;
}

export function policy(statements: Statement[]) {
  return $jsonStringify({
    Version: "2012-10-17",
    Statement: statements.map((s) => ({ Effect: s.Effect ?? "Allow", ...s })),
  });
}

export function serviceRole(name: string, service: string, statements: Statement[]) {
  const role = new aws.iam.Role(name, {
    assumeRolePolicy: aws.iam.assumeRolePolicyForPrincipal({ Service: service }),
  });
  if (statements.length > 0) {
    new aws.iam.RolePolicy(`${name}Policy`, { role: role.id, policy: policy(statements) });
  }
  return role;
}

/**
 * Role + instance profile for ECS container instances (the ECS ASG and the Batch compute environment).
 * The ECS agent needs AmazonEC2ContainerServiceforEC2Role; AWS documents no narrower policy for it.
 */
export function ecsInstanceProfile(name: string) {
  const role = new aws.iam.Role(`${name}Role`, {
    assumeRolePolicy: aws.iam.assumeRolePolicyForPrincipal({ Service: "ec2.amazonaws.com" }),
  });
  new aws.iam.RolePolicyAttachment(`${name}EcsAgent`, {
    role: role.name,
    policyArn: "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role",
  });
  return new aws.iam.InstanceProfile(`${name}Profile`, { role: role.name });
}
