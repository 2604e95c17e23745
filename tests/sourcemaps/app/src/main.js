import * as Sentry from "@sentry/node";
import { computeTotal } from "./cart.js";

function checkout(cart) {
  return computeTotal(cart);
}

async function main() {
  Sentry.init({ dsn: process.env.SENTRY_DSN, release: process.env.SENTRY_RELEASE, defaultIntegrations: false, integrations: [] });
  try {
    checkout([{ price: { amount: 1 } }, { price: null }]);
  } catch (e) {
    Sentry.captureException(e);
  }
  await Sentry.flush(5000);
}
main();
