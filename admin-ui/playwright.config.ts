import { defineConfig } from "@playwright/test";

// Browser tests of the dashboard against real TierKV processes the tests start themselves
// (tests/support.ts). Playwright drives Debian's Chromium: it never downloads a browser
// (install with PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1; scripts/check does).
const chromium = process.env.TIERKV_CHROMIUM ?? "/usr/bin/chromium";

export default defineConfig({
  testDir: "tests",
  // The cluster tests share their processes and run in order; two cores are not enough for
  // two clusters at once.
  workers: 1,
  fullyParallel: false,
  timeout: 90_000,
  expect: { timeout: 15_000 },
  reporter: [["list"]],
  outputDir: "test-results",
  use: {
    viewport: { width: 1280, height: 900 },
    actionTimeout: 15_000,
    trace: "off",
    launchOptions: {
      executablePath: chromium,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    },
  },
});
