// Scenarios for the real JavaScript SDK (@sentry/node), run by the server's integration tests:
// `node scenarios.mjs SCENARIO DSN`. Each flushes before it exits.
import * as Sentry from "@sentry/node";

const [scenario, dsn] = process.argv.slice(2);

const scenarios = {
  // captureMessage with a stack trace: the SDK sends a synthetic exception.
  "message-with-stack": async () => {
    Sentry.init({ dsn, attachStacktrace: true, release: "shop@1.2.3", environment: "production" });
    for (const order of [17, 18]) {
      Sentry.captureMessage(`Order ${order} could not be paid`, "warning");
    }
  },
  // Spans streamed as `span` items (the default trace lifecycle of SDK 11).
  spans: async () => {
    Sentry.init({ dsn, tracesSampleRate: 1.0, release: "shop@1.2.3", environment: "production" });
    await Sentry.startSpan({ name: "GET /orders", op: "http.server" }, async () => {
      for (const id of [1, 2, 3]) {
        await Sentry.startSpan(
          { name: `SELECT * FROM orders WHERE id = ${id}`, op: "db", attributes: { "db.system": "postgresql" } },
          () => new Promise((r) => setTimeout(r, 5)),
        );
      }
      Sentry.captureException(new Error("order export failed"));
    });
  },
  // User feedback about an error, and feedback on its own.
  feedback: async () => {
    Sentry.init({ dsn, release: "shop@1.2.3", environment: "production" });
    const eventId = Sentry.captureException(new Error("checkout broke"));
    Sentry.captureFeedback({ message: "The pay button does nothing", name: "Alice", email: "alice@example.com", associatedEventId: eventId });
    Sentry.captureFeedback({ message: "Love the new cart", name: "Bob" });
  },
  // Structured logs with the SDK's logger: a template with a parameter, attributes, three levels.
  logs: async () => {
    Sentry.init({ dsn, enableLogs: true, release: "shop@1.2.3", environment: "production" });
    Sentry.logger.info(Sentry.logger.fmt`Order ${42} shipped`, { carrier: "ups" });
    Sentry.logger.warn("Stock low", { sku: "A-1" });
    Sentry.logger.error("Payment failed", { order_id: 43 });
  },
  // A cron monitor: one run that succeeds, one that throws (check-ins in_progress, then ok / error).
  monitor: async () => {
    Sentry.init({ dsn, release: "shop@1.2.3", environment: "production" });
    const config = { schedule: { type: "crontab", value: "*/5 * * * *" }, checkinMargin: 2, maxRuntime: 10, timezone: "Europe/Vienna" };
    await Sentry.withMonitor("js-report", () => new Promise((r) => setTimeout(r, 20)), config);
    try {
      Sentry.withMonitor("js-report", () => { throw new Error("report failed"); }, config);
    } catch {
      // The job's own error: the monitor records it as a failed run.
    }
  },
};

if (!scenarios[scenario]) {
  console.error(`usage: node scenarios.mjs {${Object.keys(scenarios).join(",")}} DSN`);
  process.exit(2);
}
await scenarios[scenario]();
await Sentry.flush(5000);
