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

/**
 * An SST secret as an SSM SecureString: ECS and Batch inject it into the container at start (through its
 * execution role), so the value never appears in a task or job definition.
 */
export function secretParameter(name: string, path: string, secret: sst.Secret) {
  return new aws.ssm.Parameter(name, {
    name: `/${$app.name}/${$app.stage}/${path}`,
    type: "SecureString",
    value: $jsonStringify({ value: secret.value, type: "sst.sst.Secret" }),
  });
}

/** The role the ECS agent starts a container with: pull its image, write its log group, read its secrets. */
export function executionRole(name: string, repo: aws.ecr.Repository, logGroup: aws.cloudwatch.LogGroup, secrets: aws.ssm.Parameter[]) {
  return serviceRole(name, "ecs-tasks.amazonaws.com", [
    // GetAuthorizationToken has no resource-level permissions; AWS requires Resource "*" for it.
    { Action: ["ecr:GetAuthorizationToken"], Resource: ["*"] },
    { Action: ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], Resource: [repo.arn] },
    { Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: [$interpolate`${logGroup.arn}:*`] },
    { Action: ["ssm:GetParameters"], Resource: secrets.map((p) => p.arn) },
  ]);
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
