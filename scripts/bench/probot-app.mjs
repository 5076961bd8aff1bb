// The Probot peer of scripts/bench.sh: a minimal Probot 14 app that verifies each delivery's
// X-Hub-Signature-256 (Probot's own webhook middleware) and acknowledges it with a no-op handler.
// Probot stores nothing and enqueues nothing.
//   PROBOT_DIR=.tools/probot WEBHOOK_SECRET=... PRIVATE_KEY_PATH=key.pem PORT=... node probot-app.mjs
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import path from "node:path";

const dir = process.env.PROBOT_DIR;
const { Probot, createNodeMiddleware } = await import(
  pathToFileURL(path.join(dir, "node_modules", "probot", "lib", "index.js")).href
);
const probot = new Probot({
  appId: 1,
  // Probot wants an App key even though this app never calls GitHub; the script generates a throwaway one.
  privateKey: readFileSync(process.env.PRIVATE_KEY_PATH, "utf8"),
  secret: process.env.WEBHOOK_SECRET,
  logLevel: "warn",
});
const app = (bot) => {
  bot.on("workflow_run.completed", async () => {});
};
const middleware = await createNodeMiddleware(app, { probot, webhooksPath: "/webhooks/github" });
createServer((req, res) => {
  middleware(req, res, () => {
    res.writeHead(404).end();
  });
}).listen(Number(process.env.PORT), "127.0.0.1", () => {
  console.log(`probot ${process.env.PORT} listening`);
});
