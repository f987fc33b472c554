// Stands in for the Lambda Node runtime: imports the built handler once (init), then runs one event per
// IPC message. It is started with exactly the function's environment and the bundle folder as cwd.
const [entry, exportName] = process.argv.slice(2);
const started = Date.now();
let handler;
try {
  handler = (await import(entry))[exportName];
  if (typeof handler !== "function") throw new Error(`${exportName} is not exported by ${entry}`);
  process.send({ init: "ok", ms: Date.now() - started });
} catch (e) {
  process.send({ init: "failed", error: String(e?.stack ?? e) });
  process.exit(1);
}
process.on("message", async ({ id, event, timeoutMs }) => {
  const deadline = Date.now() + timeoutMs;
  try {
    const result = await handler(event, { awsRequestId: id, getRemainingTimeInMillis: () => deadline - Date.now() });
    process.send({ id, result });
  } catch (e) {
    process.send({ id, error: String(e?.stack ?? e) });
  }
});
