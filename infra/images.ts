import * as path from "node:path";

// sst.aws.Service would build and push for us, but it is Fargate-only, so the GPU images get their own ECR
// repositories and are built by the same @pulumi/docker-build provider that SST uses internally.

export async function containerImage(name: string, dockerfile: string) {
  // Imported here, not at the top: `sst install` evaluates this config before it has installed the
  // platform's packages, and a top-level import of a provider would fail on a fresh clone.
  const dockerbuild = await import("@pulumi/docker-build");
  const repo = new aws.ecr.Repository(`${name}Repo`, {
    forceDelete: $app.removal === "remove",
    imageScanningConfiguration: { scanOnPush: true },
  });
  // CUDA images are several GB; keep a short history so rollbacks work without paying for every build.
  new aws.ecr.LifecyclePolicy(`${name}RepoLifecycle`, {
    repository: repo.name,
    policy: JSON.stringify({
      rules: [
        {
          rulePriority: 1,
          description: "keep the last 10 images",
          selection: { tagStatus: "any", countType: "imageCountMoreThan", countNumber: 10 },
          action: { type: "expire" },
        },
      ],
    }),
  });
  const auth = aws.ecr.getAuthorizationTokenOutput({ registryId: repo.registryId });
  const image = new dockerbuild.Image(`${name}Image`, {
    // The build context is the repository root: the image installs the npm workspace from the lockfile.
    context: { location: $cli.paths.root },
    dockerfile: { location: path.join($cli.paths.root, dockerfile) },
    platforms: ["linux/amd64"],
    tags: [$interpolate`${repo.repositoryUrl}:${$app.stage}`],
    push: true,
    registries: [{ address: repo.repositoryUrl, username: auth.userName, password: auth.password }],
    cacheFrom: [{ registry: { ref: $interpolate`${repo.repositoryUrl}:cache` } }],
    cacheTo: [{ registry: { ref: $interpolate`${repo.repositoryUrl}:cache`, imageManifest: true, ociMediaTypes: true, mode: "max" } }],
  });
  // `ref` carries the digest, so a task or job definition changes exactly when the image does.
  return { repo, image, ref: image.ref };
}
